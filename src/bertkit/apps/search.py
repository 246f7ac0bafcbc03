"""Semantic search: find the passages closest in meaning to a query.

Two stages, the usual recipe:

1. **Bi-encoder retrieval.**  Every passage is embedded once (BERT, mean pooling,
   length 1 — see `bertkit.pipelines.similarity`) and stored as one row of a float32
   matrix.  A query is embedded the same way; its cosine similarity with every passage
   is one matrix-vector product, and the `top_k` largest win.  Fast: the passages were
   read by BERT ahead of time, a query costs one short BERT call plus a dot product.

2. **Cross-encoder re-ranking (optional).**  A `BertForSequenceClassification` reads
   ``[CLS] query [SEP] passage [SEP]`` *together* — every query word can attend to every
   passage word — and says how relevant the pair is.  Much more accurate, far too slow
   for all passages, so it only re-orders the bi-encoder's top hits.  `train_reranker`
   fine-tunes one from (question, passage) pairs: each true pair is a positive, the
   question with random other passages are negatives (negative sampling).

An index directory holds::

    vectors.npy   [N,H] float32, each row of length 1 (row i = passage i)
    texts.jsonl   one {"id": ..., "text": ...} per line, in the same order
    meta.json     model directory, pooling, dimension, count, max_length, build time
    windows.npy   (only with `window=`) [W,3] int64: passage row, char start, char end of
                  each window; vectors.npy then has one row per window, not per passage

Long passages: BERT reads at most `max_length` tokens, so a long passage embedded whole is
judged by its first few sentences only.  `window=128` cuts each passage into overlapping
windows of 128 tokens (`overlap` tokens shared by neighbours, as the notes' stride for long
QA documents), embeds every window, and scores a passage by its best window — which is
also handed to the re-ranker, so it reads the part that matched.

    >>> build_index(passages, model_dir, "runs/index")
    >>> Index.load("runs/index").query("how many people can live on the island?", top_k=5)
    [{'rank': 1, 'score': 0.71, 'id': '17', 'text': '...'}, ...]
"""
from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from bertkit.common.errors import InputError, NotFoundError, OutputExistsError
from bertkit.common.files import atomic_directory, atomic_write_text
from bertkit.modeling.heads import BertForSequenceClassification
from bertkit.pipelines import pipeline
from bertkit.pipelines.classify import TextClassificationPipeline
from bertkit.tasks.base import collate_inputs
from bertkit.text.tokenizer import BertTokenizer
from bertkit.training.settings import TrainingSettings
from bertkit.training.trainer import Trainer

VECTORS, TEXTS, META, WINDOWS = "vectors.npy", "texts.jsonl", "meta.json", "windows.npy"
RERANKER_META = "reranker.json"


# ----------------------------------------------------------------------------- reading passages

def read_passages(path: str | Path) -> list[dict]:
    """Passages from a file: `.jsonl` ({"text": ..., "id"?: ...} per line), `.json` (a list of
    strings or of such dicts), otherwise plain text with one passage per non-empty line.

    Each passage of a `.txt` or `.jsonl` file records its `line` in the file (1-based, blank
    lines counted, as `bertkit predict` numbers lines); its `id` defaults to that number."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"passage file not found: {path} — give a .txt (one passage per line) "
                            "or .jsonl ({\"text\": ...} per line) file")
    lines = list(enumerate(path.read_text(encoding="utf-8").splitlines(), 1))
    if path.suffix == ".jsonl":
        rows = []
        for n, line in lines:
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{n}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
                rows.append({"line": n, **row} if isinstance(row, dict) else row)
    elif path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise InputError(f"{path}: expected a JSON list of passages (strings or {{'text': ...}} objects)")
    else:
        rows = [{"line": n, "text": line.strip()} for n, line in lines if line.strip()]
    return normalize_passages(rows, source=str(path))


def normalize_passages(items: Iterable, source: str = "passages") -> list[dict]:
    """Strings or dicts → [{"id": str, "text": str}] (+ "line" when the passage has one).

    Ids default to the passage's line in its file, else to its 1-based position (#1 = the first)."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise InputError(f"{source}: passage #{i + 1} has no text: expected a string or a dict with a 'text' string")
        passage = {"id": str(item.get("id", item.get("line", i + 1))), "text": item["text"]}
        if isinstance(item.get("line"), int):
            passage["line"] = item["line"]
        out.append(passage)
    if not out:
        raise InputError(f"{source}: no passages to index")
    return out


# ----------------------------------------------------------------------------- building

def build_index(texts: Sequence, model_dir, out_dir, batch_size: int = 64, max_length: int = 256,
                progress: bool = True, device=None, quantize: str | None = None,
                window: int | None = None, overlap: int = 32) -> "Index":
    """Embed every passage with the model in `model_dir`; write the index to `out_dir`.

    `texts` are strings or {"text", "id"} dicts.  Passages are batched by length (little
    padding); the directory is written to a temporary sibling and renamed into place, so
    an interrupted build never leaves a half index behind.  `quantize="int8"` embeds with
    the int8 dynamic-quantized encoder (CPU; faster, vectors differ slightly — queries then
    use the same encoder, recorded in meta.json).
    """
    passages = normalize_passages(texts)
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    encoder = pipeline("sentence-similarity", model=model_dir, device=device, batch_size=batch_size,
                       max_length=max_length, quantize=quantize)
    start = time.perf_counter()
    windows = None
    if window:
        windows = passage_windows([p["text"] for p in passages], encoder.tokenizer, window, overlap,
                                  encoder.max_length)                                # [W,3]
        texts_to_embed = [passages[row]["text"][a:b] for row, a, b in windows.tolist()]
    else:
        texts_to_embed = [p["text"] for p in passages]
    vectors = encoder.embed(texts_to_embed, progress=progress)                      # [N,H] or [W,H]
    seconds = time.perf_counter() - start
    meta = {"model": str(model_dir.resolve()), "pooling": encoder.pooling, "normalized": True,
            "count": len(passages), "dim": int(vectors.shape[1]), "max_length": encoder.max_length,
            "quantize": quantize, "window": window, "overlap": overlap if window else None,
            "vectors": int(vectors.shape[0]),
            "build_seconds": round(seconds, 3), "passages_per_second": round(len(passages) / max(seconds, 1e-9), 1)}
    _write_index(out_dir, vectors, passages, meta, windows)
    index = Index(out_dir, vectors, passages, meta, windows=windows)
    index._encoder = encoder
    return index


def passage_windows(texts: Sequence[str], tokenizer, window: int, overlap: int, max_length: int) -> np.ndarray:
    """[W,3] (passage row, char start, char end) of overlapping token windows, in passage order.

    Every passage gets at least one window; windows start every `window - overlap` tokens
    and are cut at token boundaries (the tokenizer's offsets), so no word is split."""
    if not 0 < window <= max_length - 2:
        raise InputError(f"window={window} must be between 1 and max_length - 2 = {max_length - 2} tokens")
    if not 0 <= overlap < window:
        raise InputError(f"overlap={overlap} must be at least 0 and smaller than window={window}")
    with warnings.catch_warnings():           # whole passages may exceed the model's limit: that is
        warnings.simplefilter("ignore")       # why they are cut into windows here
        offsets = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    rows = []
    for row, spans in enumerate(offsets):
        if not spans:
            rows.append((row, 0, len(texts[row])))
            continue
        for first in range(0, max(1, len(spans) - overlap), window - overlap):
            last = min(first + window, len(spans)) - 1
            rows.append((row, spans[first][0], spans[last][1]))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _write_index(out_dir: Path, vectors: np.ndarray, passages: list[dict], meta: dict,
                 windows: np.ndarray | None = None) -> None:
    """Write the index files into a temporary sibling, then swap it in for `out_dir` whole.

    An existing index is replaced; any other non-empty path is refused, never deleted."""
    if out_dir.exists() and not (out_dir / META).is_file() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OutputExistsError(f"{out_dir} exists and is not a bertkit index; choose another --out")
    with atomic_directory(out_dir) as tmp:
        np.save(tmp / VECTORS, vectors.astype(np.float32, copy=False))
        if windows is not None:
            np.save(tmp / WINDOWS, windows)
        with open(tmp / TEXTS, "w", encoding="utf-8") as f:
            for p in passages:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
        (tmp / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")


# ----------------------------------------------------------------------------- querying

class Index:
    """A built index: `Index.load(dir)`, then `query(text, top_k)` or `query_many(texts, top_k)`."""

    def __init__(self, directory: Path, vectors: np.ndarray, passages: list[dict], meta: dict,
                 model_dir: str | Path | None = None, device=None, windows: np.ndarray | None = None):
        self.directory = Path(directory)
        self.vectors = vectors                      # [N,H] (or [W,H] with windows), rows of length 1
        self.windows = windows                      # None, or [W,3]: passage row, char start, char end
        # most windows any one passage has (how many window hits can hide a passage's best one)
        self.windows_per_passage = 1 if windows is None else int(np.bincount(windows[:, 0]).max())
        self.passages = passages
        self.meta = meta
        self.model_dir = Path(model_dir or meta["model"])
        self.device = device
        self._encoder = None

    @classmethod
    def load(cls, directory, model_dir=None, device=None, mmap: bool = True) -> "Index":
        """Open an index directory.  `model_dir` overrides the model recorded at build time
        (e.g. after moving the files); it must be the same model, or scores are meaningless."""
        directory = Path(directory)
        missing = [name for name in (VECTORS, TEXTS, META) if not (directory / name).is_file()]
        if missing:
            raise NotFoundError(f"{directory} is not a bertkit index (missing {', '.join(missing)}); "
                                "build one with `bertkit search index DOCS --model DIR --out DIR`")
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
        vectors = np.load(directory / VECTORS, mmap_mode="r" if mmap else None)
        with open(directory / TEXTS, encoding="utf-8") as f:
            passages = [json.loads(line) for line in f if line.strip()]
        windows = np.load(directory / WINDOWS) if (directory / WINDOWS).is_file() else None
        rows = len(windows) if windows is not None else len(passages)
        if rows != vectors.shape[0]:
            raise InputError(f"{directory}: {vectors.shape[0]} vectors but {rows} passages/windows — the index "
                             "is damaged; build it again")
        return cls(directory, vectors, passages, meta, model_dir=model_dir, device=device, windows=windows)

    def __len__(self) -> int:
        return len(self.passages)

    @property
    def encoder(self):
        """The bi-encoder (loaded on first use)."""
        if self._encoder is None:
            if not self.model_dir.is_dir():
                raise NotFoundError(f"the index was built with the model at {self.model_dir}, which is not "
                                    "there any more; pass model_dir= (CLI: --model) pointing to the same model")
            self._encoder = pipeline("sentence-similarity", model=self.model_dir, device=self.device,
                                     max_length=self.meta.get("max_length"), quantize=self.meta.get("quantize"))
            if self._encoder.model.config.hidden_size != self.vectors.shape[1]:
                raise InputError(f"model {self.model_dir} makes {self._encoder.model.config.hidden_size}-dim "
                                 f"vectors but the index holds {self.vectors.shape[1]}-dim ones: use the "
                                 "model the index was built with")
        return self._encoder

    def query(self, text: str, top_k: int = 10) -> list[dict]:
        """The `top_k` passages most similar to `text`: [{"rank", "score", "id", "text"}], best first."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the query is empty: give some text to search for")
        return self.query_many([text], top_k)[0]

    def query_many(self, texts: Sequence[str], top_k: int = 10, chunk_rows: int = 262_144) -> list[list[dict]]:
        if not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        queries = self.encoder.embed(list(texts))                       # [Q,H]
        top_k = min(top_k, len(self))
        if self.windows is None:
            scores, rows = self.search_vectors(queries, top_k, chunk_rows)
            return [[{"rank": r + 1, "score": float(s), **self.passages[int(i)]}
                     for r, (s, i) in enumerate(zip(score_row, row))] for score_row, row in zip(scores, rows)]
        # a passage scores as its best window: the top k passages are among the top
        # k x (most windows of one passage) windows, so that many are enough (exact)
        scores, rows = self.search_vectors(queries, min(top_k * self.windows_per_passage, len(self.vectors)),
                                           chunk_rows)
        return [self._best_window_hits(score_row, row, top_k) for score_row, row in zip(scores, rows)]

    def _best_window_hits(self, scores: np.ndarray, window_rows: np.ndarray, top_k: int) -> list[dict]:
        """Window hits (best first) -> the first `top_k` distinct passages, each with its best window."""
        hits, seen = [], set()
        for score, w in zip(scores, window_rows):
            row, start, end = (int(v) for v in self.windows[int(w)])
            if row in seen:
                continue
            seen.add(row)
            passage = self.passages[row]
            hits.append({"rank": len(hits) + 1, "score": float(score), **passage,
                         "window": passage["text"][start:end], "window_span": [start, end]})
            if len(hits) == top_k:
                break
        return hits

    def search_vectors(self, queries: np.ndarray, top_k: int, chunk_rows: int = 262_144):
        """Exact top-k by cosine over all passages, in chunks (bounded memory for big indexes).

        Returns (scores [Q,k], row indices [Q,k]), best first."""
        best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        best_rows = np.zeros((len(queries), 0), dtype=np.int64)
        for start in range(0, len(self.vectors), chunk_rows):
            block = np.asarray(self.vectors[start:start + chunk_rows])          # [C,H]
            sims = queries @ block.T                                            # [Q,C]
            k = min(top_k, sims.shape[1])
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            best_scores = np.concatenate([best_scores, np.take_along_axis(sims, part, 1)], axis=1)
            best_rows = np.concatenate([best_rows, part + start], axis=1)
            if best_scores.shape[1] > top_k:
                keep = np.argpartition(-best_scores, top_k - 1, axis=1)[:, :top_k]
                best_scores = np.take_along_axis(best_scores, keep, 1)
                best_rows = np.take_along_axis(best_rows, keep, 1)
        order = np.lexsort((best_rows, -best_scores), axis=1)                    # by score, then row
        return np.take_along_axis(best_scores, order, 1), np.take_along_axis(best_rows, order, 1)


# ----------------------------------------------------------------------------- re-ranking

class CrossEncoder:
    """A fine-tuned `BertForSequenceClassification` that scores (query, passage) pairs.

    score = logit(relevant) - logit(irrelevant): the log-odds that the passage answers the query.
    """

    def __init__(self, model_dir, device=None, batch_size: int = 32, max_length: int = 256):
        self.pipe = TextClassificationPipeline(model=Path(model_dir), device=device, batch_size=batch_size,
                                               max_length=max_length)
        if self.pipe.model.config.num_labels != 2:
            raise InputError(f"{model_dir} is not a re-ranker: its head has {self.pipe.model.config.num_labels} "
                             "outputs, a re-ranker has 2 (irrelevant, relevant); train one with train_reranker")

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        pipe = self.pipe
        out = []
        with torch.no_grad():
            for start in range(0, len(passages), pipe.batch_size):
                chunk = list(passages[start:start + pipe.batch_size])
                enc = pipe.encode([query] * len(chunk), chunk)
                logits = pipe.model(**pipe.model_inputs(enc)).logits.float()      # [B,2]
                out.append((logits[:, 1] - logits[:, 0]).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


_CROSS_ENCODERS: dict[str, CrossEncoder] = {}


def rerank(query: str, hits: list[dict], model_dir, top_k: int | None = None, device=None) -> list[dict]:
    """Re-order bi-encoder `hits` with a cross-encoder; each hit keeps its first-stage score as
    `bi_score`, gets `score` = the re-ranker's score and a new `rank`."""
    key = str(Path(model_dir).resolve())
    if key not in _CROSS_ENCODERS:
        _CROSS_ENCODERS.clear()                        # keep at most one re-ranker in memory
        _CROSS_ENCODERS[key] = CrossEncoder(model_dir, device=device)
    scores = _CROSS_ENCODERS[key].score(query, [h.get("window", h["text"]) for h in hits])
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    out = [{**hits[i], "bi_score": hits[i]["score"], "score": float(scores[i])} for i in order]
    for rank, hit in enumerate(out, 1):
        hit["rank"] = rank
    return out if top_k is None else out[:top_k]


def reranker_examples(pairs: Sequence[tuple[str, str]], negatives: int = 3, seed: int = 0,
                      pool: Sequence[str] | None = None) -> list[tuple[str, str, int]]:
    """(question, passage, label): each true pair (label 1) plus `negatives` random other
    passages from `pool` (default: all passages of `pairs`) for the same question (label 0)."""
    rng = random.Random(seed)
    pool = list(dict.fromkeys(pool if pool is not None else (p for _, p in pairs)))
    if negatives and len(pool) < 2:
        raise InputError("negative sampling needs at least two different passages")
    examples = []
    for question, positive in pairs:
        examples.append((question, positive, 1))
        drawn = 0
        while drawn < negatives:
            other = pool[rng.randrange(len(pool))]
            if other != positive:
                examples.append((question, other, 0))
                drawn += 1
    return examples


def train_reranker(pairs: Sequence[tuple[str, str]], model_dir, out_dir, negatives: int = 3,
                   epochs: float = 1.0, batch_size: int = 16, learning_rate: float = 3e-5,
                   max_length: int = 256, seed: int = 0, pool: Sequence[str] | None = None,
                   max_steps: int | None = None, device=None, progress: bool = True,
                   eval_pairs: Sequence[tuple[str, str]] | None = None, eval_share: float = 0.2,
                   candidates: int = 10) -> Path:
    """Fine-tune a cross-encoder from (question, positive passage) pairs with random negatives,
    then measure whether it helps.

    Starts from the encoder in `model_dir` (e.g. MiniLM) with a new 2-way head, trains with
    `bertkit.training.trainer.Trainer`, and saves a checkpoint directory usable by `rerank`.
    Evaluation: on `eval_pairs`, else on `eval_share` of `pairs` held out of training (see
    `evaluate_reranker`); the figures and the verdict ("helps") go to reranker.json.
    """
    if not pairs:
        raise InputError("train_reranker needs (question, passage) pairs")
    all_passages = [p for _, p in list(pairs) + list(eval_pairs or [])]
    if eval_pairs is None:
        pairs, eval_pairs = hold_out(pairs, eval_share, seed)
    pool = pool if pool is not None else all_passages
    out_dir = Path(out_dir)
    tok = BertTokenizer.from_pretrained(model_dir)
    examples = reranker_examples(pairs, negatives, seed, pool)
    enc = tok([q for q, _, _ in examples], text_pair=[p for _, p, _ in examples], truncation="only_second",
              max_length=max_length)
    features = [{"input_ids": ids, "token_type_ids": types, "label": label}
                for ids, types, (_, _, label) in zip(enc["input_ids"], enc["token_type_ids"], examples)]

    def collate(batch):
        out = collate_inputs(batch, tok.pad_token_id)
        out["labels"] = torch.tensor([f["label"] for f in batch])                   # [B]
        return out

    with warnings.catch_warnings():                    # the new head is expected to be untrained
        warnings.simplefilter("ignore")
        model = BertForSequenceClassification.from_pretrained(
            model_dir, num_labels=2, id2label={0: "irrelevant", 1: "relevant"},
            label2id={"irrelevant": 0, "relevant": 1}, problem_type="single_label_classification")
    scratch = Path(tempfile.mkdtemp(prefix="bertkit-reranker-"))   # optimizer checkpoints: not kept
    try:
        settings = TrainingSettings(learning_rate=learning_rate, epochs=epochs, steps=max_steps, batch_size=batch_size,
                                    seed=seed, progress=progress, warmup_ratio=0.1,
                                    device=None if device is None else str(device))
        Trainer(model, features, collate, settings, scratch).train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    model.eval().cpu()
    model.save_pretrained(out_dir, tokenizer=tok)
    evaluation = (evaluate_reranker(eval_pairs, out_dir, model_dir, pool, candidates, device)
                  if eval_pairs else None)
    atomic_write_text(out_dir / RERANKER_META, json.dumps(
        {"base_model": str(Path(model_dir).resolve()), "pairs": len(pairs), "negatives_per_pair": negatives,
         "examples": len(examples), "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size,
         "learning_rate": learning_rate, "max_length": max_length, "seed": seed, "evaluation": evaluation},
        indent=2))
    return out_dir


# ----------------------------------------------------------------------------- does the re-ranker help?

def hold_out(pairs: Sequence[tuple[str, str]], share: float, seed: int = 0):
    """(training pairs, held-out pairs): `share` of the pairs drawn at random for evaluation, at
    least one when there are 3 or more pairs, none below that (then nothing is evaluated)."""
    n_eval = max(1, round(len(pairs) * share)) if share > 0 and len(pairs) >= 3 else 0
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_eval])
    return ([p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held])


def ranking_metrics(ranks: Sequence[int]) -> dict:
    """MRR and hit@1/3/10 of the right passage's 1-based ranks (one per question)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return {"mrr": float(np.mean(1.0 / ranks)), **{f"hit@{k}": float(np.mean(ranks <= k)) for k in (1, 3, 10)}}


def evaluate_reranker(pairs, reranker_dir, bi_model_dir, pool: Sequence[str], candidates: int = 10,
                      device=None) -> dict:
    """Rank `pool` for each question of `pairs` with the bi-encoder alone (cosine of `bi_model_dir`'s
    sentence vectors), then re-rank its top `candidates` with the re-ranker, as `search query
    --rerank` does; compare where the right passage lands.  `helps`: the re-ranked MRR is higher."""
    pool = list(dict.fromkeys(list(pool) + [p for _, p in pairs]))
    encoder = pipeline("sentence-similarity", model=Path(bi_model_dir), device=device)
    sims = encoder.embed([q for q, _ in pairs]) @ encoder.embed(pool).T                   # [Q,N]
    cross = CrossEncoder(reranker_dir, device=device)
    bi_ranks, re_ranks = [], []
    for (question, passage), row in zip(pairs, sims):
        order = [pool[i] for i in np.argsort(-row, kind="stable")]
        bi_ranks.append(order.index(passage) + 1)
        top = order[:candidates]
        if passage in top:                             # else the re-ranker never sees it: rank unchanged
            scores = cross.score(question, top)
            re_ranks.append([top[i] for i in np.argsort(-scores, kind="stable")].index(passage) + 1)
        else:
            re_ranks.append(bi_ranks[-1])
    bi, re = ranking_metrics(bi_ranks), ranking_metrics(re_ranks)
    return {"pairs": len(pairs), "passages": len(pool), "candidates": candidates, "bi_encoder": bi,
            "reranked": re, "helps": re["mrr"] > bi["mrr"]}


def reranker_warning(reranker_dir) -> str | None:
    """What to say before using a re-ranker whose own evaluation found it no better than the bi-encoder."""
    meta = Path(reranker_dir) / RERANKER_META
    ev = json.loads(meta.read_text(encoding="utf-8")).get("evaluation") if meta.is_file() else None
    if not ev or ev["helps"]:
        return None
    return (f"warning: this re-ranker did not beat the bi-encoder on its {ev['pairs']} held-out pair(s) (MRR "
            f"{ev['reranked']['mrr']:.3f} vs {ev['bi_encoder']['mrr']:.3f}); its order may be worse than the "
            "plain search: query without --rerank, or train it on more pairs")
