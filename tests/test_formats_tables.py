"""Labelled data in the formats people have: TSV, CSV, JSON, JSONL, Parquet, each also compressed."""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from bertkit.common.errors import MissingDependency
from bertkit.tasks import get_task, read_conll, read_squad

from test_cli_inputs import classifier, one_error_line, run  # noqa: F401  (fixture and helpers)

ROWS = [{"sentence": "a gorgeous, witty film", "label": 1}, {"sentence": 'a "dull" mess, frankly', "label": 0},
        {"sentence": "fine\tenough", "label": 1}, {"sentence": "리뷰 없음", "label": 0}]
COMPRESS = {"": lambda b: b, ".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
            ".zst": lambda b: zstandard.ZstdCompressor().compress(b)}


def table_bytes(kind: str) -> bytes:
    """ROWS written as a .tsv, .csv, .jsonl, .json (array) or .parquet file."""
    if kind == "parquet":
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(ROWS), sink)
        return sink.getvalue()
    if kind == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()
    if kind == "json":
        return json.dumps(ROWS, ensure_ascii=False, indent=1).encode()
    text = io.StringIO()
    if kind == "csv":
        writer = csv.DictWriter(text, fieldnames=["sentence", "label"])
        writer.writeheader()
        writer.writerows(ROWS)
    else:                                          # TSV: no quoting, so no tab inside a text
        text.write("sentence\tlabel\n" + "".join(f"{r['sentence'].replace(chr(9), ' ')}\t{r['label']}\n" for r in ROWS))
    return text.getvalue().encode()


def write(folder, kind: str, suffix: str = ""):
    path = folder / f"data.{kind}{suffix}"
    path.write_bytes(COMPRESS[suffix](table_bytes(kind)))
    return path


def expected(kind: str) -> list[tuple[str, str]]:
    return [(r["sentence"].replace("\t", " ") if kind == "tsv" else r["sentence"], str(r["label"])) for r in ROWS]


@pytest.mark.parametrize("kind, suffix", [(k, s) for k in ("tsv", "csv", "jsonl", "json") for s in COMPRESS]
                         + [("parquet", "")])       # Parquet compresses inside the file
def test_every_format_reads_the_same_examples(kind, suffix, tmp_path):
    examples = get_task("sst2").read(write(tmp_path, kind, suffix))
    assert [(ex.text, ex.label) for ex in examples] == expected(kind)
    assert examples.report.num_skipped() == 0


def test_places_point_at_lines_items_and_rows(tmp_path):
    bad = [{"sentence": "ok", "label": 1}, {"text": "no sentence field", "label": 0}]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in bad).encode()))
    (tmp_path / "a.json").write_text(json.dumps(bad))
    pq.write_table(pa.Table.from_pylist([{"sentence": "ok", "label": 1}, {"sentence": "x", "label": None}]),
                   tmp_path / "a.parquet")
    assert "line 2 of" in get_task("sst2").read(tmp_path / "a.jsonl.gz").report.summary()
    assert "item 2" in get_task("sst2").read(tmp_path / "a.json").report.summary()
    report = get_task("sst2").read(tmp_path / "a.parquet").report.summary()
    assert "row 2" in report and "kept unlabelled" in report


def test_conll_and_squad_read_compressed(tmp_path):
    conll = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
    (tmp_path / "t.txt").write_text(conll)
    (tmp_path / "t.txt.xz").write_bytes(lzma.compress(conll.encode()))
    plain, packed = read_conll(tmp_path / "t.txt"), read_conll(tmp_path / "t.txt.xz")
    assert [(e.words, e.tags) for e in packed] == [(e.words, e.tags) for e in plain] and len(packed) == 2
    squad = {"data": [{"title": "t", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "q1", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]}]}]}]}
    (tmp_path / "s.json.gz").write_bytes(gzip.compress(json.dumps(squad).encode()))
    [example] = read_squad(tmp_path / "s.json.gz")
    assert example.answers[0]["text"] == "France" and example.answer_ok == [True]


# ------------------------------------------------------------------ through the command line
def test_eval_and_predict_read_parquet_and_jsonl_gz_like_tsv(capsys, classifier, tmp_path):  # noqa: F811
    scores = {}
    for kind, suffix in (("tsv", ""), ("parquet", ""), ("jsonl", ".gz"), ("csv", ".zst")):
        code, out, err = run(capsys, "eval", "--model", classifier, "--data", write(tmp_path, kind, suffix), "--json")
        assert code == 0, err
        scores[kind] = json.loads(out)
    assert scores["parquet"]["examples"] == 4 and all(s == scores["parquet"] for s in scores.values())
    code, out, err = run(capsys, "predict", "--model", classifier, "--file", write(tmp_path, "parquet"), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["line"] for r in rows] == [1, 2, 3, 4] and [r["gold"] for r in rows] == \
        ["positive", "negative", "positive", "negative"]


def test_a_bad_parquet_file_is_one_line(capsys, classifier, tmp_path):  # noqa: F811
    bad = tmp_path / "dev.parquet"
    bad.write_bytes(b"sentence\tlabel\nnot parquet at all\t1\n")
    code, _, err = run(capsys, "eval", "--model", classifier, "--data", bad)
    line = one_error_line(err)
    assert code == 2 and str(bad) in line and "not a readable Parquet file" in line
    pq.write_table(pa.Table.from_pylist([{"review": "x", "label": 1}]), bad)
    code, _, err = run(capsys, "eval", "--model", classifier, "--data", bad)
    line = one_error_line(err)
    assert code == 2 and "'sentence'" in line and "['review', 'label']" in line


def test_a_truncated_gzip_table_is_one_line(capsys, classifier, tmp_path):  # noqa: F811
    bad = tmp_path / "dev.jsonl.gz"
    bad.write_bytes(write(tmp_path, "jsonl", ".gz").read_bytes()[:30])
    code, _, err = run(capsys, "eval", "--model", classifier, "--data", bad)
    line = one_error_line(err)
    assert code == 2 and str(bad) in line and "not a readable gzip file" in line


def test_parquet_without_pyarrow_names_the_pip_command(tmp_path, monkeypatch):
    path = write(tmp_path, "parquet")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)        # as if pyarrow were not installed
    with pytest.raises(MissingDependency, match=r"pip install 'bertkit\[data\]' \(or pip install pyarrow\)"):
        get_task("sst2").read(path)
