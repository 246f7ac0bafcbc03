"""--dataset NAME[:CONFIG] (finetune, eval, pretrain) through the `datasets` library, and --report-to tensorboard.

No test reaches a network: names resolve offline (HF_DATASETS_OFFLINE=1, HF_HOME in a temporary
folder, a socket guard) to local folders laid out like Hub repos (Parquet files, a README with
configs), or to folders written by `save_to_disk`."""
from __future__ import annotations

import csv
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bertkit.common.errors import MissingDependency
from bertkit.data.named import EVAL_SPLITS, open_split

from conftest import data_file
from hub_server import guard_network
from test_cli_inputs import classifier, one_error_line, run  # noqa: F401  (fixture and helpers)

WORDS = ["good", "bad", "fine", "dull", "witty", "mess", "film", "plot"]


def rows(n: int, seed: int) -> list[dict]:
    return [{"sentence": f"{WORDS[(i * seed) % 8]} {WORDS[(i + seed) % 8]} {i}", "label": (i * seed) % 2, "idx": i}
            for i in range(n)]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A working folder holding glue/ (config sst2) and nsmc/ like Hub repos; datasets offline, no sockets."""
    for name, config, columns in (("glue", "sst2", None), ("nsmc", None, ("id", "document", "label"))):
        folder = tmp_path / name / (config or "")
        folder.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", 40), ("validation" if config else "test", 10)):
            data = rows(n, 3 if split == "train" else 5)
            if columns:
                data = [{"id": str(r["idx"]), "document": r["sentence"], "label": r["label"]} for r in data]
            pq.write_table(pa.Table.from_pylist(data), folder / f"{split}-00000-of-00001.parquet")
    (tmp_path / "glue" / "README.md").write_text("---\nconfigs:\n- config_name: sst2\n  data_files:\n"
                                                 "  - split: train\n    path: sst2/train-*\n"
                                                 "  - split: validation\n    path: sst2/validation-*\n---\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets")
    blocked: list = []
    guard_network(monkeypatch, blocked)
    datasets.disable_progress_bars()          # "Generating train split: ..." would come before an error line
    yield tmp_path
    datasets.enable_progress_bars()
    assert blocked == []


def test_names_configs_and_splits_resolve_offline(offline):
    split = open_split("glue:sst2", "validation")
    assert split.source == "glue:sst2[validation]" and split.splits == ("train", "validation")
    assert [r["sentence"] for r in split.rows] == [r["sentence"] for r in rows(10, 5)]
    assert open_split("nsmc", None, fallbacks=EVAL_SPLITS).split == "test"        # no validation: test
    assert open_split("glue:sst2", None, fallbacks=("dev",)) is None               # none of them: carve


def test_finetune_on_a_dataset_trains_as_on_the_same_files(capsys, classifier, offline, tmp_path):  # noqa: F811
    for split, data in (("train", rows(40, 3)), ("dev", rows(10, 5))):
        (tmp_path / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(f"{r['sentence']}\t{r['label']}\n"
                                                                              for r in data))
    common = ["finetune", "--task", "sst2", "--model", classifier, "--epochs", "1", "--batch-size", "8", "--json"]
    code, out, err = run(capsys, *common, "--train", tmp_path / "train.tsv", "--eval", tmp_path / "dev.tsv",
                         "--out", tmp_path / "files")
    assert code == 0, err
    from_files = json.loads(out)
    code, out, err = run(capsys, *common, "--dataset", "glue:sst2", "--out", tmp_path / "named",
                         "--report-to", "tensorboard")
    assert code == 0, err
    named = json.loads(out)
    assert (named["train_examples"], named["eval_examples"]) == (40, 10) == \
        (from_files["train_examples"], from_files["eval_examples"])
    assert named["epochs"] == from_files["epochs"]
    trained = [load_file(tmp_path / run / "best" / "model.safetensors") for run in ("files", "named")]
    assert trained[0].keys() == trained[1].keys()
    assert all(torch.equal(trained[0][k], trained[1][k]) for k in trained[0])       # the same examples, same order
    events = EventAccumulator(str(tmp_path / "named" / "run" / "tb")).Reload()
    steps = [e.step for e in events.Scalars("train/loss")]
    assert steps[-1] == named["steps"] == 5 and len(steps) >= 2
    accuracy = events.Scalars("eval/accuracy")
    assert [e.step for e in accuracy] == [5] and accuracy[0].value == pytest.approx(named["best"]["accuracy"])
    assert not (tmp_path / "files" / "run" / "tb").exists()                     # only when asked


def test_eval_scores_a_datasets_validation_split(capsys, classifier, offline, tmp_path):  # noqa: F811
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"{r['sentence']}\t{r['label']}\n"
                                                                     for r in rows(10, 5)))
    code, out, err = run(capsys, "eval", "--model", classifier, "--dataset", "glue:sst2", "--json")
    assert code == 0, err
    code, out2, err = run(capsys, "eval", "--model", classifier, "--data", tmp_path / "dev.tsv", "--json")
    assert code == 0 and json.loads(out) == json.loads(out2) and json.loads(out)["examples"] == 10


@pytest.mark.parametrize("argv, words", [
    (["eval", "--dataset", "no_such_dataset"], ["--dataset no_such_dataset: cannot load it", "offline"]),
    (["eval", "--dataset", "glue:sst2", "--dataset-split", "tset"],
     ["has no split 'tset'; its splits are ['train', 'validation']", "--dataset-split"]),
    (["eval", "--dataset", "glue:nope"], ["cannot load it", "'nope' not found", "sst2"]),
    (["finetune", "--task", "classification", "--text-column", "review", "--dataset", "glue:sst2", "--out", "o"],
     ["glue:sst2[train] has no column 'review'; its columns are ['sentence', 'label', 'idx']"]),
    (["finetune", "--task", "sst2", "--dataset", "nsmc", "--out", "o"],
     ["nsmc[train] has no column 'sentence'; its columns are ['id', 'document', 'label']"]),
], ids=["unknown-name", "missing-split", "unknown-config", "unknown-column", "task-columns"])
def test_dataset_mistakes_are_one_line(argv, words, capsys, classifier, offline):  # noqa: F811
    code, _, err = run(capsys, *argv, "--model", classifier)
    line = one_error_line(err)
    assert code == 2 and all(w in line for w in words), line


def test_a_save_to_disk_folder_works_as_a_dataset(classifier, offline, tmp_path, capsys):  # noqa: F811
    features = datasets.Features({"sentence": datasets.Value("string"), "idx": datasets.Value("int32"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    data = datasets.DatasetDict(train=datasets.Dataset.from_list(rows(40, 3), features=features),
                                test=datasets.Dataset.from_list([{**r, "label": -1} for r in rows(4, 5)],
                                                                features=features))
    data.save_to_disk(tmp_path / "saved")
    examples = open_split(str(tmp_path / "saved"), "train")
    assert examples.label_names("label") == ["negative", "positive"]
    capsys.readouterr()                                   # (save_to_disk's progress bar)
    code, _, err = run(capsys, "eval", "--model", classifier, "--dataset", tmp_path / "saved")   # no validation: test
    assert code == 2 and "[test]: 4 examples" in err and "4 records without a label in 'label' (kept unlabelled)" in err
    assert "4 of 4 examples have no label, so they cannot be scored" in err.splitlines()[-1]
    code, out, err = run(capsys, "eval", "--model", classifier, "--dataset", tmp_path / "saved", "--dataset-split",
                         "train", "--json")
    assert code == 0 and json.loads(out)["examples"] == 40, err


def test_finetune_carves_an_evaluation_share_when_the_dataset_has_no_evaluation_split(offline, tmp_path):
    from bertkit.training.finetune import FinetuneSettings, read_splits
    from bertkit.tasks import get_task
    datasets.Dataset.from_list(rows(40, 3)).save_to_disk(tmp_path / "only_train")    # one split: train
    settings = FinetuneSettings(task="sst2", dataset=str(tmp_path / "only_train"), out=str(tmp_path / "o"))
    train, valid, reports = read_splits(get_task("sst2"), settings)
    assert (len(train), len(valid)) == (36, 4) and "eval" not in reports
    assert {ex.text for ex in train} | {ex.text for ex in valid} == {r["sentence"] for r in rows(40, 3)}


# ------------------------------------------------------------------ pretraining from a data set
PRETRAIN = ["--size", "tiny", "--steps", "6", "--max-seq-length", "32", "--batch-size", "8", "--vocab-size", "300",
            "--workers", "1", "--eval-every", "3", "--eval-batches", "1", "--save-every", "3"]


def test_pretrain_on_a_dataset_writes_one_document_per_row_and_logs_to_tensorboard(capsys, offline, tmp_path):
    lines = data_file("wikitext2", "valid.txt").read_text(encoding="utf-8").splitlines()[:400]
    datasets.Dataset.from_dict({"text": lines}).save_to_disk(tmp_path / "wiki")     # rows as wikitext's: lines
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "pretrain", "--dataset", tmp_path / "wiki", "--out", out, *PRETRAIN,
                            "--report-to", "tensorboard", "--json")
    assert code == 0, err
    corpus = (out / "corpus" / "corpus.txt").read_text(encoding="utf-8").splitlines()
    assert corpus == [" ".join(t.split()) for t in lines if t.strip()]
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert manifest["documents"] == len(corpus) and manifest["one_doc_per_line"]
    events = EventAccumulator(str(out / "run" / "tb")).Reload()
    assert [e.step for e in events.Scalars("eval/mlm_accuracy")] == [0, 3, 6]
    with open(out / "run" / "train_log.csv") as fh:           # the same numbers as the CSV log, row by row
        logged = [r for r in csv.DictReader(fh) if r["loss"] != "nan"]
    for tag, column in (("train/loss", "loss"), ("train/learning_rate", "lr"), ("train/tokens_per_s", "tokens_per_s")):
        scalars = events.Scalars(tag)
        assert [e.step for e in scalars] == [int(r["step"]) for r in logged] and scalars[-1].step == 6
        assert [e.value for e in scalars] == pytest.approx([float(r[column]) for r in logged], rel=1e-5)
    written = (out / "corpus" / "corpus.txt").stat().st_mtime_ns
    code, stdout, err = run(capsys, "pretrain", "--dataset", tmp_path / "wiki", "--out", out, *PRETRAIN,
                            "--steps", "9", "--report-to", "tensorboard", "--json")
    assert code == 0 and json.loads(stdout)["resumed"], err
    assert (out / "corpus" / "corpus.txt").stat().st_mtime_ns == written              # reused, not re-exported
    steps = [e.step for e in EventAccumulator(str(out / "run" / "tb")).Reload().Scalars("eval/mlm_accuracy")]
    assert steps == [0, 3, 6, 9]


def test_pretrain_dataset_column_and_corpus_mistakes(capsys, offline, tmp_path):
    datasets.Dataset.from_dict({"body": ["a b c"] * 60}).save_to_disk(tmp_path / "d")
    capsys.readouterr()                                   # (save_to_disk's progress bar)
    code, _, err = run(capsys, "pretrain", "--dataset", tmp_path / "d", "--out", tmp_path / "o", *PRETRAIN)
    line = one_error_line(err)
    assert code == 2 and "has no column 'text'; its columns are ['body']. Name the right column with --text-column" \
        in line
    code, _, err = run(capsys, "pretrain", "--out", tmp_path / "o")
    assert code == 2 and "text files" in one_error_line(err) and "--dataset" in err


def test_report_to_tensorboard_without_the_package_names_the_pip_command(monkeypatch, tmp_path):
    import sys

    from bertkit.training.pretrain import PretrainSettings, PretrainTraining
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)       # as if tensorboard were not installed
    with pytest.raises(MissingDependency, match=r"pip install 'bertkit\[tensorboard\]' \(or pip install tensorboard\)"):
        PretrainSettings(files=["c.txt"], out_dir=str(tmp_path), training=PretrainTraining(report_to="tensorboard"))


def test_tensorboard_after_a_resume_keeps_the_steps_up_to_the_checkpoint(tmp_path):
    from bertkit.training.progress import Logger
    logger = Logger(tmp_path, write=True, progress=False, total=6, initial=0, report_to="tensorboard")
    for step in range(1, 7):                               # steps 4-6 were never saved in a checkpoint
        logger.log({"step": step, "loss": float(step), "lr": 0.1, "tokens_per_s": 100.0})
    logger.close()
    logger = Logger(tmp_path, write=True, progress=False, total=6, initial=3, report_to="tensorboard")
    for step in (4, 5):                                    # resumed from step 3
        logger.log({"step": step, "loss": 10.0 * step, "lr": 0.1, "tokens_per_s": 100.0, "accuracy": 0.5})
    logger.close()
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0),
                                                                         (5, 50.0)]
    assert [e.step for e in events.Scalars("eval/accuracy")] == [4, 5]


# ------------------------------------------------------------------ tagging and QA rows
def test_tagging_rows_with_classlabel_tags_read_as_conll_files_do(tmp_path):
    from bertkit.data.named import DatasetSplit
    from bertkit.tasks import get_task, read_conll
    names = ["O", "B-PER", "I-PER", "B-ORG"]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    data = datasets.Dataset.from_dict({"tokens": [["Peter", "Blackburn", "visits", "EU"], []],
                                       "ner_tags": [[1, 2, 0, 3], []]}, features=features)
    examples = get_task("conll2003").read(DatasetSplit("conll2003", "train", data, ("train",)))
    (tmp_path / "t.txt").write_text("Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\nvisits VBZ B-VP O\n"
                                    "EU NNP B-NP B-ORG\n")
    [from_file] = read_conll(tmp_path / "t.txt")
    assert [(e.words, e.tags) for e in examples] == [(from_file.words, from_file.tags)]
    assert "row 2" in examples.report.summary()                        # the row without words, counted


def test_squad_rows_read_as_the_squad_file_does(tmp_path):
    from bertkit.data.named import DatasetSplit
    from bertkit.tasks import read_squad
    context = "Paris is the capital of France. It is on the Seine."
    rows_ = [{"id": "q1", "title": "Paris", "context": context, "question": "Capital of what?",
              "answers": {"text": ["France"], "answer_start": [24]}},
             {"id": "q2", "title": "Paris", "context": context, "question": "Which river?",
              "answers": {"text": ["Seine"], "answer_start": [3]}},                   # wrong start: corrected
             {"id": "q3", "title": "Paris", "context": context, "question": "Who?", "answers": {"text": [],
                                                                                              "answer_start": []}}]
    split = DatasetSplit("squad_v2", "validation", datasets.Dataset.from_list(rows_), ("validation",))
    squad = {"data": [{"title": "Paris", "paragraphs": [{"context": context, "qas": [
        {"id": r["id"], "question": r["question"], "is_impossible": not r["answers"]["text"],
         "answers": [{"text": t, "answer_start": s} for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])]}
        for r in rows_]}]}]}
    (tmp_path / "dev.json").write_text(json.dumps(squad))
    for v2 in (False, True):
        named, from_file = read_squad(split, v2), read_squad(tmp_path / "dev.json", v2)
        assert [(e.id, e.answers, e.answer_ok, e.is_impossible, e.article) for e in named] == \
            [(e.id, e.answers, e.answer_ok, e.is_impossible, e.article) for e in from_file]
        assert len(named) == (3 if v2 else 2) and named[1].answers[0]["answer_start"] == context.index("Seine") == 45


def test_without_the_datasets_package_the_error_names_the_pip_command(capsys, monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "datasets", None)                 # as if it were not installed
    with pytest.raises(MissingDependency, match=r"pip install 'bertkit\[datasets\]' \(or pip install datasets\)"):
        open_split("glue:sst2", "train")
    code, _, err = run(capsys, "finetune", "--task", "sst2", "--out", tmp_path / "o")
    assert code == 2 and "--train FILE or --dataset NAME[:CONFIG]" in one_error_line(err)
