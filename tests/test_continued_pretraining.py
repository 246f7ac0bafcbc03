"""`bertkit pretrain --from CHECKPOINT`: continue MLM + NSP from a model with its own vocab."""
from __future__ import annotations

from pathlib import Path

import pytest

from bertkit.cli import main
from bertkit.data.builtin_corpus import iter_documents

COMMON = ["--steps", "8", "--max-seq-length", "32", "--batch-size", "8", "--workers", "1", "--lr", "1e-3",
          "--eval-every", "8", "--eval-batches", "2", "--save-every", "0", "--seed", "3", "--json"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpora")
    docs = ["\n".join(doc) for _, doc in zip(range(600), iter_documents()) if len(doc) > 2][:400]
    first, second = root / "general.txt", root / "domain.txt"
    first.write_text("\n\n".join(docs[:200]) + "\n", encoding="utf-8")
    second.write_text("\n\n".join(docs[200:]) + "\n", encoding="utf-8")
    return first, second


def run(capsys, *argv) -> dict:
    import json
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_continued_pretraining_starts_from_the_checkpoint_and_keeps_its_vocab(corpora, tmp_path, capsys):
    general, domain = corpora
    base = run(capsys, "pretrain", general, "--out", tmp_path / "base", "--size", "tiny", "--vocab-size", "500",
               *COMMON)
    fresh = run(capsys, "pretrain", domain, "--out", tmp_path / "fresh", "--size", "tiny",
                "--vocab", tmp_path / "base" / "model", *COMMON)
    cont = run(capsys, "pretrain", domain, "--out", tmp_path / "cont", "--from", base["model_dir"], *COMMON)
    assert not (tmp_path / "cont" / "vocab").exists()                       # the checkpoint's own vocab
    assert (Path(cont["model_dir"]) / "vocab.txt").read_text() == (Path(base["model_dir"]) / "vocab.txt").read_text()
    # step 0: the continued run starts where the base model is, not at a random init
    assert cont["first_eval"]["step"] == 0 and fresh["first_eval"]["step"] == 0
    assert cont["first_eval"]["mlm_loss"] < fresh["first_eval"]["mlm_loss"] - 0.1
    assert cont["mlm_loss"] < cont["first_eval"]["mlm_loss"]                  # and it learns on from there


def test_from_a_folder_that_is_not_a_model_is_one_line(corpora, tmp_path, capsys):
    assert main(["pretrain", str(corpora[1]), "--out", str(tmp_path / "x"), "--from", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_pack_fills_rows_of_short_documents_and_refuses_nsp(tmp_path, capsys):
    reviews = tmp_path / "reviews.txt"
    lines = [f"this film is {w} and the actors are {v} ." for w in ("good", "bad", "long", "short", "fine")
             for v in ("great", "awful", "young", "old", "funny", "dull")] * 5
    reviews.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = ["pretrain", reviews, "--one-doc-per-line", "--size", "tiny", "--vocab-size", "300", "--steps", "4",
            "--max-seq-length", "64", "--batch-size", "4", "--workers", "1", "--save-every", "0",
            "--eval-batches", "1"]
    assert main([str(a) for a in base + ["--out", tmp_path / "x", "--pack"]]) == 2
    assert "--no-nsp" in capsys.readouterr().err
    result = run(capsys, *base, "--out", tmp_path / "p", "--pack", "--no-nsp", "--json")
    assert result["steps"] == 4 and (tmp_path / "p" / "model" / "model.safetensors").is_file()
