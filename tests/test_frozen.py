"""The feature-based route: a frozen encoder (finetune --freeze-encoder) and a linear probe."""
from __future__ import annotations

import warnings

import torch

from bertkit.pipelines.linear_probe import LinearProbe, logistic_regression

POSITIVE = ["a wonderful, moving film", "great acting and a lovely story", "i loved every minute of it",
            "brilliant and funny", "a joy to watch", "beautiful and touching"]
NEGATIVE = ["a dull, tiresome mess", "terrible acting and a boring plot", "i hated every minute of it",
            "awful and stupid", "a waste of time", "ugly and pointless"]


def toy_sst2(folder, repeat: int):
    """An SST-2-format training file of the twelve sentences above, `repeat` times."""
    train = folder / "train.tsv"
    rows = [f"{t}\t1" for t in POSITIVE] + [f"{t}\t0" for t in NEGATIVE]
    train.write_text("sentence\tlabel\n" + "\n".join(rows * repeat) + "\n")
    return train


def test_logistic_regression_separates_separable_points():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(50, 4) + 3, torch.randn(50, 4) - 3])
    y = torch.tensor([0] * 50 + [1] * 50)
    layer = logistic_regression(x, y, 2)
    assert (layer(x).argmax(-1) == y).float().mean() == 1.0


def test_linear_probe_on_frozen_minilm_vectors(minilm_path):
    probe = LinearProbe(model=minilm_path, device="cpu").fit(POSITIVE + NEGATIVE, ["pos"] * 6 + ["neg"] * 6)
    assert probe.labels == ["neg", "pos"]
    assert probe.predict(["what a lovely, wonderful movie", "boring and awful"]) == ["pos", "neg"]
    assert probe.score(POSITIVE + NEGATIVE, ["pos"] * 6 + ["neg"] * 6) == 1.0


def test_freeze_encoder_trains_only_the_head(minilm_path, tmp_path):
    from bertkit.modeling import BertForSequenceClassification
    from bertkit.training.finetune import FinetuneSettings, FinetuneTraining, run_finetune

    train = toy_sst2(tmp_path, repeat=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_finetune(FinetuneSettings(task="sst2", model=str(minilm_path), train=str(train), out=str(tmp_path / "o"),
                                      eval_fraction=0.25, freeze_encoder=True,
                                      training=FinetuneTraining(epochs=1, batch_size=8, learning_rate=1e-2,
                                                                progress=False)))
        before = BertForSequenceClassification.from_pretrained(minilm_path, num_labels=2)
        after = BertForSequenceClassification.from_pretrained(tmp_path / "o" / "best")
    for (name, a), b in zip(before.bert.state_dict().items(), after.bert.state_dict().values()):
        assert torch.equal(a, b), f"{name} changed although the encoder was frozen"
