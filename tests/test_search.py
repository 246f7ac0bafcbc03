"""Semantic search: the index files, exact top-k, queries, the re-ranker, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline_fixtures import tiny_model_dir

from bertkit.common.errors import InputError, NotFoundError, OutputExistsError

PASSAGES = [
    "Paris is the capital and most populous city of France.",
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Up to eight players can live together on one island in the game.",
    "Boil 550 ml of water, add the noodles and the soup powder, cook for four minutes.",
    "The stock market fell sharply on Monday after the announcement.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "The immune system protects the organism from disease.",
    "A cat sat on the mat and watched the birds outside.",
]


@pytest.fixture(scope="module")
def index(tmp_path_factory, minilm_path):
    from bertkit.apps.search import build_index
    out = tmp_path_factory.mktemp("idx") / "index"
    build_index([{"id": f"p{i}", "text": t} for i, t in enumerate(PASSAGES)], minilm_path, out,
                batch_size=3, progress=False)
    return out


def test_index_files(index, minilm_path):
    from bertkit.apps.search import Index
    vectors = np.load(index / "vectors.npy")
    assert vectors.dtype == np.float32 and vectors.shape == (len(PASSAGES), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    lines = (index / "texts.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["text"] for x in lines] == PASSAGES
    meta = json.loads((index / "meta.json").read_text())
    assert meta["count"] == len(PASSAGES) and meta["dim"] == 384 and meta["normalized"] is True
    from bertkit import pipeline
    direct = pipeline("sentence-similarity", model=minilm_path).embed(PASSAGES[2:3])
    np.testing.assert_allclose(vectors[2:3], direct, atol=1e-5)
    assert len(Index.load(index)) == len(PASSAGES)


@pytest.mark.parametrize("query,expected", [
    ("What is the capital of France?", "p0"),
    ("How many people can live on an island?", "p2"),
    ("how do I cook ramen noodles", "p3"),
    ("What protects the body from illness?", "p6"),
])
def test_queries_find_the_right_passage(index, query, expected):
    from bertkit.apps.search import Index
    hits = Index.load(index).query(query, top_k=3)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["id"] == expected
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_top_k_capped_and_many_queries(index):
    from bertkit.apps.search import Index
    idx = Index.load(index)
    assert len(idx.query("anything", top_k=100)) == len(PASSAGES)
    many = idx.query_many(["capital of France", "a cat on a mat"], top_k=2)
    assert [m[0]["id"] for m in many] == ["p0", "p7"]
    with pytest.raises(InputError, match="empty"):
        idx.query("  ")
    with pytest.raises(InputError, match="top_k"):
        idx.query("x", top_k=0)


def test_chunked_exact_top_k_equals_brute_force(tmp_path):
    from bertkit.apps.search import Index
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(1000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    idx = Index(tmp_path, vectors, [{"id": str(i), "text": str(i)} for i in range(1000)], {"model": str(tmp_path)})
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    for chunk in (7, 100, 10_000):
        scores, rows = idx.search_vectors(queries, 10, chunk_rows=chunk)
        want = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
        np.testing.assert_array_equal(rows, want)
        np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, want, 1), rtol=1e-6)


def test_passage_files(tmp_path):
    from bertkit.apps.search import read_passages
    (tmp_path / "a.txt").write_text("first passage\n\nsecond passage\n", encoding="utf-8")
    assert [p["text"] for p in read_passages(tmp_path / "a.txt")] == ["first passage", "second passage"]
    (tmp_path / "b.jsonl").write_text('{"id": "x", "text": "one"}\n{"text": "two"}\n', encoding="utf-8")
    assert read_passages(tmp_path / "b.jsonl") == [{"id": "x", "text": "one", "line": 1},
                                                   {"id": "2", "text": "two", "line": 2}]
    (tmp_path / "c.jsonl").write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="no text"):
        read_passages(tmp_path / "c.jsonl")
    (tmp_path / "d.jsonl").write_text('{"text": \n', encoding="utf-8")
    with pytest.raises(InputError, match="d.jsonl:1"):
        read_passages(tmp_path / "d.jsonl")
    with pytest.raises(NotFoundError, match="one passage per line"):
        read_passages(tmp_path / "missing.txt")


def test_hits_are_numbered_by_their_line_in_the_file(tmp_path, minilm_path, capsys):
    """Blank lines count, numbers are 1-based (as `bertkit predict`); the header says what they mean."""
    from bertkit.apps.search import normalize_passages, read_passages
    from bertkit.cli import main
    docs = tmp_path / "docs.txt"
    docs.write_text("# my notes\n\n" + "\n\n".join(PASSAGES) + "\n", encoding="utf-8")
    lines = docs.read_text(encoding="utf-8").splitlines()
    passages = read_passages(docs)
    assert all(lines[p["line"] - 1] == p["text"] and p["id"] == str(p["line"]) for p in passages)
    assert [p["id"] for p in normalize_passages(["a", "b"])] == ["1", "2"]
    assert main(["search", "index", str(docs), "--model", str(minilm_path), "--out", str(tmp_path / "i"),
                 "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "query", "capital of France", "--index", str(tmp_path / "i"), "--top-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["rank", "score", "line", "text"] and "1-based" in out[0]
    rank, _, line, *text = out[1].split()
    assert rank == "1" and lines[int(line) - 1] == PASSAGES[0] == " ".join(text)


def test_index_refuses_to_overwrite_other_directories(tmp_path, minilm_path):
    from bertkit.apps.search import Index, build_index
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("do not delete")
    with pytest.raises(OutputExistsError, match="not a bertkit index") as refused:
        build_index(PASSAGES[:2], minilm_path, tmp_path / "precious", progress=False)
    assert isinstance(refused.value, FileExistsError)
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(OutputExistsError, match="not a bertkit index"):
        build_index(PASSAGES[:2], minilm_path, tmp_path / "a-file", progress=False)
    assert (tmp_path / "a-file").read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "precious"], "temporary directory left behind"
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "do not delete"
    with pytest.raises(NotFoundError, match="not a bertkit index"):
        Index.load(tmp_path / "precious")


def test_negative_sampling():
    from bertkit.apps.search import reranker_examples
    pairs = [(f"q{i}", f"passage {i}") for i in range(10)]
    examples = reranker_examples(pairs, negatives=3, seed=1)
    assert len(examples) == 40 and sum(label for *_, label in examples) == 10
    for q, p, label in examples:
        assert (p == f"passage {q[1:]}") == bool(label)
    assert reranker_examples(pairs, negatives=3, seed=1) == examples
    with pytest.raises(InputError, match="two different passages"):
        reranker_examples([("q", "p")], negatives=1)


def test_train_reranker_and_rerank(tmp_path, minilm_path):
    from bertkit.apps.search import CrossEncoder, rerank
    from bertkit.apps.search import train_reranker
    base = tiny_model_dir(tmp_path / "base", "BertModel", minilm_path)
    pairs = [("capital of france?", PASSAGES[0]), ("island players?", PASSAGES[2]), ("ramen?", PASSAGES[3])]
    out = train_reranker(pairs, base, tmp_path / "rr", negatives=2, max_steps=3, batch_size=4, progress=False)
    assert (out / "config.json").is_file() and (out / "reranker.json").is_file()
    assert not any(p.name.startswith("step-") for p in out.rglob("*"))      # no optimizer checkpoints left
    hits = [{"rank": i + 1, "score": 1.0 - i / 10, "id": str(i), "text": t} for i, t in enumerate(PASSAGES[:5])]
    ranked = rerank("capital of france?", hits, out)
    scores = CrossEncoder(out).score("capital of france?", PASSAGES[:5])
    assert [h["text"] for h in ranked] == [PASSAGES[i] for i in np.argsort(-scores, kind="stable")]
    assert [h["rank"] for h in ranked] == [1, 2, 3, 4, 5]
    assert {h["id"]: h["bi_score"] for h in ranked} == {h["id"]: h["score"] for h in hits}
    with pytest.raises(InputError, match="re-ranker"):
        CrossEncoder(tiny_model_dir(tmp_path / "three", "BertForSequenceClassification", minilm_path, num_labels=3))


def test_ranking_metrics_and_hold_out():
    from bertkit.apps.search import hold_out, ranking_metrics
    m = ranking_metrics([1, 2, 4, 20])
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 20) / 4)
    assert (m["hit@1"], m["hit@3"], m["hit@10"]) == (0.25, 0.5, 0.75)
    pairs = [(f"q{i}", f"p{i}") for i in range(7)]
    train, held = hold_out(pairs, 0.3, seed=0)
    assert len(held) == 2 and sorted(train + held) == pairs and not set(train) & set(held)
    assert hold_out(pairs[:2], 0.3) == (pairs[:2], [])                        # too few: nothing held out
    assert len(hold_out(pairs[:3], 0.2)[1]) == 1                              # at least one from 3 pairs on


SEVEN = [("What is the capital of France?", PASSAGES[0]), ("What is the Eiffel tower made of?", PASSAGES[1]),
         ("How many can live on the island?", PASSAGES[2]), ("How do I cook the noodles?", PASSAGES[3]),
         ("What did the stock market do?", PASSAGES[4]), ("What does photosynthesis make?", PASSAGES[5]),
         ("What does the immune system do?", PASSAGES[6])]


def test_train_reranker_says_when_it_does_not_help(tmp_path, minilm_path, capsys):
    """7 pairs, one step: the re-ranker is measured on held-out pairs against the bi-encoder alone,
    the report says it does not help, and a query that uses it warns."""
    from bertkit.cli import main
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"question": q, "passage": p}) + "\n" for q, p in SEVEN), encoding="utf-8")
    assert main(["search", "train-reranker", str(pairs), "--model", str(minilm_path), "--out", str(tmp_path / "rr"),
                 "--max-steps", "1", "--eval-share", "0.3", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    ev = meta["evaluation"]
    assert meta["pairs"] == 5 and ev["pairs"] == 2 and ev["passages"] == 7
    assert ev["bi_encoder"]["mrr"] >= ev["reranked"]["mrr"] and ev["helps"] is False
    assert json.loads((tmp_path / "rr" / "reranker.json").read_text())["evaluation"] == ev
    assert main(["search", "train-reranker", str(pairs), "--model", str(minilm_path), "--out", str(tmp_path / "rr"),
                 "--max-steps", "1", "--eval-share", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "re-ranker trained on 5 pairs" in out and "held-out evaluation: 2 question(s)" in out
    assert "bi-encoder alone  MRR" in out and "re-ranked         MRR" in out and "does NOT help" in out
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(PASSAGES), encoding="utf-8")
    assert main(["search", "index", str(docs), "--model", str(minilm_path), "--out", str(tmp_path / "i"),
                 "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "query", "capital of France", "--index", str(tmp_path / "i"),
                 "--rerank", str(tmp_path / "rr"), "--top-k", "3"]) == 0
    captured = capsys.readouterr()
    assert "did not beat the bi-encoder on its 2 held-out pair(s)" in captured.err and "rank" in captured.out


def test_reranker_report_when_it_helps_or_was_not_evaluated():
    from bertkit.cli.apps import reranker_report
    m = {"mrr": 0.5, "hit@1": 0.0, "hit@3": 1.0, "hit@10": 1.0}
    ev = {"pairs": 2, "passages": 9, "candidates": 10, "bi_encoder": m, "reranked": {**m, "mrr": 1.0}, "helps": True}
    assert "the re-ranker helps" in "\n".join(reranker_report({"pairs": 7, "evaluation": ev}, "rr"))
    assert "not evaluated" in "\n".join(reranker_report({"pairs": 2, "evaluation": None}, "rr"))


@pytest.mark.slow
def test_reranker_learns_relevance(tmp_path, minilm_path):
    from bertkit.apps.search import CrossEncoder, train_reranker
    pairs = [("What is the capital of France?", PASSAGES[0]), ("What is the Eiffel tower made of?", PASSAGES[1]),
             ("How many can live on the island?", PASSAGES[2]), ("How do I cook the noodles?", PASSAGES[3]),
             ("What did the stock market do?", PASSAGES[4]), ("What does photosynthesis make?", PASSAGES[5]),
             ("What does the immune system do?", PASSAGES[6]), ("Where did the cat sit?", PASSAGES[7])]
    out = train_reranker(pairs * 4, minilm_path, tmp_path / "rr", negatives=3, epochs=4, batch_size=16,
                         learning_rate=2e-4, progress=False)
    enc = CrossEncoder(out)
    pos = [enc.score(q, [p])[0] for q, p in pairs]
    neg = [enc.score(q, [PASSAGES[(i + 3) % 8]])[0] for i, (q, _) in enumerate(pairs)]
    assert np.mean(pos) > np.mean(neg) + 1.0
    assert sum(p > n for p, n in zip(pos, neg)) >= 7


def test_cli_index_and_query(tmp_path, minilm_path, capsys):
    from bertkit.cli import main
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(PASSAGES), encoding="utf-8")
    assert main(["search", "index", str(docs), "--model", str(minilm_path), "--out", str(tmp_path / "i"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == len(PASSAGES)
    assert main(["search", "query", "capital of France", "--index", str(tmp_path / "i"), "--top-k", "2",
                 "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and hits[0]["text"] == PASSAGES[0]
    assert main(["search", "query", "x", "--index", str(tmp_path / "nowhere")]) == 2
    assert "not a bertkit index" in capsys.readouterr().err
    assert main(["search", "index", str(docs), "--model", str(minilm_path), "--out", str(tmp_path / "w"),
                 "--window", "8", "--overlap", "2", "--int8", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["window"] == 8 and meta["quantize"] == "int8" and meta["vectors"] > len(PASSAGES)
    assert main(["search", "query", "capital of France", "--index", str(tmp_path / "w"), "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["text"] == PASSAGES[0] and hits[0]["window"] in PASSAGES[0]


def test_an_index_of_100k_passages_loads_and_searches_fast(tmp_path):
    """Storage and exact search at the 100k scale (vectors made up; the bench embeds real text)."""
    import time

    from bertkit.apps.search import Index, _write_index
    rng = np.random.default_rng(0)
    n, dim = 100_000, 384
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    passages = [{"id": str(i), "text": f"passage {i}"} for i in range(n)]
    _write_index(tmp_path / "big", vectors, passages, {"model": str(tmp_path), "count": n, "dim": dim})
    index = Index.load(tmp_path / "big")
    assert len(index) == n and isinstance(index.vectors, np.memmap)
    query = vectors[[12_345, 99_999]] + 0.01 * rng.standard_normal((2, dim), dtype=np.float32)
    start = time.perf_counter()
    scores, rows = index.search_vectors(query, 10)
    assert time.perf_counter() - start < 5.0
    assert rows[:, 0].tolist() == [12_345, 99_999] and scores.shape == (2, 10)


LONG = ("Bread needs flour, water, salt and yeast. The dough rests for an hour before it is shaped. "
        "Ovens should be hot when the loaf goes in. A crust forms in the first minutes of baking. "
        "The Eiffel Tower was built in Paris for the world's fair of 1889.")


def test_windows_cover_each_passage_with_overlap(tokenizer):
    from bertkit.apps.search import passage_windows
    texts = [LONG, "Cats sleep a lot.", ""]
    windows = passage_windows(texts, tokenizer, window=16, overlap=4, max_length=256)
    rows = windows[:, 0].tolist()
    assert rows == sorted(rows) and set(rows) == {0, 1, 2}        # every passage, in order
    long = windows[windows[:, 0] == 0]
    assert len(long) > 3 and long[0, 1] == 0 and long[-1, 2] == len(LONG)
    assert all(nxt_start < prev_end for (_, _, prev_end), (_, nxt_start, _) in zip(long[:-1], long[1:]))
    for _, start, end in long.tolist():                           # windows end at token boundaries
        assert len(tokenizer(LONG[start:end], add_special_tokens=False)["input_ids"]) <= 16
    with pytest.raises(InputError, match="window=300"):
        passage_windows(texts, tokenizer, window=300, overlap=4, max_length=256)
    with pytest.raises(InputError, match="overlap=16"):
        passage_windows(texts, tokenizer, window=16, overlap=16, max_length=256)


def test_windowed_index_scores_a_passage_by_its_best_window(tmp_path, minilm_path):
    from bertkit.apps.search import Index, build_index
    passages = [LONG, "Cats sleep for most of the day.", "The stock market fell on Monday."]
    build_index(passages, minilm_path, tmp_path / "idx", window=16, overlap=4, progress=False)
    index = Index.load(tmp_path / "idx")
    assert index.windows is not None and len(index.vectors) == len(index.windows) > len(passages)
    hits = index.query("In which city is the Eiffel Tower?", top_k=3)
    assert [h["id"] for h in hits][0] == "1" and len({h["id"] for h in hits}) == 3
    assert "Eiffel" in hits[0]["window"] and hits[0]["text"] == LONG
    start, end = hits[0]["window_span"]
    assert LONG[start:end] == hits[0]["window"]
    whole = build_index(passages, minilm_path, tmp_path / "whole", progress=False)
    assert whole.query("In which city is the Eiffel Tower?", top_k=1)[0]["score"] < hits[0]["score"]
