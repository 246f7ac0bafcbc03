"""torch.compile captures the whole encoder (no graph breaks) and gives the eager numbers."""
import pytest
import torch

from test_train import RandomPretrainingData
from test_train_switches import model, ragged_collate

from bertkit import BertConfig, BertForSequenceClassification
from bertkit.training.settings import TrainingSettings
from bertkit.training.trainer import Trainer


def test_compiled_model_matches_eager_without_graph_breaks():
    dynamo = pytest.importorskip("torch._dynamo")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=32, num_labels=3)
    model = BertForSequenceClassification(config).eval()
    ids = torch.randint(1, 100, (3, 12))
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0                                       # padding: eager would take the unpadded path
    explanation = dynamo.explain(model.bert)(ids, mask)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(model, dynamic=False)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(ids, attention_mask=mask).logits,
                                   model(ids, attention_mask=mask).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("per_sequence", [False, True])
def test_a_training_run_makes_one_graph_per_bucket_and_no_graph_break(tmp_path, per_sequence):
    """20 steps of ragged batches through the Trainer, the model under torch.compile (dynamo + AOT
    autograd, without Inductor's code generation, to stay fast on a CPU): with rows and MLM positions
    rounded up to 16 there is one graph per (rows, masked positions) bucket the feed makes, and no
    graph break (no host sync, no data-dependent shape in the step).  With `per_sequence_attention`
    too: on a CPU the recorded graph takes the padded attention (one varlen call on a GPU)."""
    dynamo = pytest.importorskip("torch._dynamo")
    from torch._dynamo.utils import counters
    cfg = TrainingSettings(device="cpu", learning_rate=2e-3, steps=20, batch_size=8, save_every=0, log_every=5,
                           progress=False, seed=3, unpad_multiple=16)
    net = model(0.0)
    net.bert.per_sequence_attention = per_sequence
    trainer = Trainer(net, RandomPretrainingData(), ragged_collate, cfg, tmp_path)
    feed = trainer.feed()
    buckets = {(i.batch["unpad"].index.numel(), i.batch["masked_positions"].numel()) for i in (next(feed) for _ in range(20))}
    feed.close()
    dynamo.reset()
    counters.clear()
    trainer.model = torch.compile(trainer.model, backend="aot_eager", dynamic=False)
    trainer.train()
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert 1 <= counters["stats"]["unique_graphs"] <= len(buckets) <= 6, (dict(counters["stats"]), buckets)
