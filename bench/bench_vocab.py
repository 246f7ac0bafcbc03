"""WordPiece vocab training: bertkit vs the reference trainer (HF `tokenizers`).

For English (WikiText-2 valid) and Korean (NSMC raw reviews), the lines are
shuffled with a fixed seed and cut 90/10 into train / held-out text. Both
trainers learn a vocab of the same size with the same settings (special-token
layout, lowercasing, min_frequency=2, limit_alphabet); then the SAME
encoder (bertkit.BertTokenizer) encodes the held-out text with each vocab:

    unk/word    share of held-out words that become [UNK]
    tok/word    WordPieces per word (fewer = the vocab covers words better)
    overlap     share of the learned (non-special) tokens both vocabs have

Run:  python bench/bench_vocab.py            (add --quick for a short run)
The reference trainer runs on 1 thread (RAYON_NUM_THREADS=1), like ours.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO  # noqa: E402  (one definition of where the data lives)

sys.path.insert(0, str(REPO / "src"))

from bertkit.text.tokenizer import BertTokenizer  # noqa: E402
from bertkit.text.vocab import count_words, special_token_layout, train_vocab  # noqa: E402

CORPORA = {
    # name: (file, do_lower_case, strip_accents)
    "english": (DATA / "wikitext2" / "valid.txt", True, None),
    "korean": (DATA / "ko_corpus" / "nsmc_raw_reviews_unlabeled.txt", True, False),
}


def split_lines(path: Path, work: Path, held_out: float = 0.1, seed: int = 0, max_lines: int | None = None):
    lines = [l for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    random.Random(seed).shuffle(lines)
    if max_lines:
        lines = lines[:max_lines]
    cut = int(len(lines) * (1 - held_out))
    train, test = work / f"{path.stem}.train.txt", work / f"{path.stem}.test.txt"
    train.write_text("\n".join(lines[:cut]) + "\n", encoding="utf-8")
    test.write_text("\n".join(lines[cut:]) + "\n", encoding="utf-8")
    return train, test


def train_reference(train: Path, vocab_size: int, do_lower_case: bool, strip_accents, specials: list[str],
                    limit_alphabet: int) -> list[str]:
    from tokenizers import BertWordPieceTokenizer
    ref = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents,
                                 lowercase=do_lower_case)     # HF's name for it
    ref.train([str(train)], vocab_size=vocab_size, min_frequency=2, limit_alphabet=limit_alphabet,
              special_tokens=specials, show_progress=False, wordpieces_prefix="##")
    vocab = ref.get_vocab()
    return [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def evaluate(tokens: list[str], test: Path, do_lower_case: bool, strip_accents) -> dict:
    tok = BertTokenizer(tokens, do_lower_case=do_lower_case, strip_accents=strip_accents)
    words = count_words([test], do_lower_case, strip_accents)
    n_words = sum(words.values())
    n_pieces = n_unk = 0
    for word, count in words.items():
        ids = tok.convert_tokens_to_ids(tok.tokenize(word))
        n_pieces += len(ids) * count
        n_unk += (ids == [tok.unk_token_id]) * count
    return {"unk/word": n_unk / n_words, "tok/word": n_pieces / n_words, "words": n_words}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only (smoke run)")
    args = parser.parse_args()
    # (corpus, vocab size, limit_alphabet); Korean uses ~2,000+ syllables, so 1,000 leaves words as [UNK]
    runs = [("english", 8000, 1000), ("korean", 8000, 1000), ("korean", 16000, 1000), ("korean", 16000, 2500)]
    if args.quick:
        runs = [("english", 4000, 1000), ("korean", 8000, 1000)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, size, limit in runs:
            path, lower, strip = CORPORA[name]
            if not path.exists():
                print(f"skip {name}: {path} not found (set BERTKIT_DATA)")
                continue
            train, test = split_lines(path, work, max_lines=40_000 if args.quick and name == "korean" else None)
            specials = special_token_layout(size)
            t0 = time.perf_counter()
            ours = train_vocab([train], size, do_lower_case=lower, strip_accents=strip, limit_alphabet=limit)
            t_ours = time.perf_counter() - t0
            ours_tokens = [ours.ids_to_tokens[i] for i in range(len(ours))]
            t0 = time.perf_counter()
            ref_tokens = train_reference(train, size, lower, strip, specials, limit)
            t_ref = time.perf_counter() - t0
            learned = lambda toks: set(toks[len(specials):])
            overlap = len(learned(ours_tokens) & learned(ref_tokens)) / max(1, len(learned(ref_tokens)))
            for who, toks, secs in (("bertkit", ours_tokens, t_ours), ("tokenizers", ref_tokens, t_ref)):
                m = evaluate(toks, test, lower, strip)
                rows.append((name, size, limit, who, len(toks), secs, m["unk/word"], m["tok/word"], overlap, m["words"],
                             train.stat().st_size / 1e6))
    print(f"{'corpus':8} {'size':>6} {'alpha':>5} {'trainer':11} {'vocab':>6} {'MB':>5} {'train s':>8} "
          f"{'unk/word':>9} {'tok/word':>9} {'overlap':>8} {'held-out words':>15}")
    for name, size, limit, who, n, secs, unk, tpw, ov, nw, mb in rows:
        print(f"{name:8} {size:6d} {limit:5d} {who:11} {n:6d} {mb:5.1f} {secs:8.2f} {unk:9.4%} {tpw:9.4f} "
              f"{ov:8.1%} {nw:15d}")
    for i in range(0, len(rows) - 1, 2):
        a, b = rows[i], rows[i + 1]
        print(f"{a[0]} {a[1]} alphabet {a[2]}: tok/word ratio bertkit/reference = {a[7] / b[7]:.4f}, "
              f"unk/word {a[6]:.4%} vs {b[6]:.4%}, train time ratio = {a[5] / b[5]:.2f}x")


if __name__ == "__main__":
    main()
