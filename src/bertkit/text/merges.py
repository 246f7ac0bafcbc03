"""Learning WordPiece pieces by merges: which adjacent pair of pieces becomes a new piece.

Every word starts as characters, the first plain, the others with "##"
("hug" → h ##u ##g). Then, again and again, one adjacent pair is merged into a new
piece everywhere it occurs (##u + ##g → ##ug; h + ##ug → hug) and the piece joins
the vocab. Two rules pick the pair (`algorithm`):

frequency   the pair that occurs most often: count(ab).  This is what Hugging Face's
            `tokenizers` WordPiece trainer does (BPE's rule, with the "##" prefix).

likelihood  the pair whose merge most raises the likelihood of the training data
            under a unigram model of pieces (the original WordPiece, Schuster &
            Nakajima 2012):  score(a, b) = count(ab) / (count(a) · count(b)).
            A pair of pieces that nearly always occur together wins over a pair
            that is merely frequent because its parts are frequent everywhere:
            in "hug×10 pug×5 pun×12 bun×4 hugs×5", frequency merges ##u ##g first
            (20 times), likelihood merges ##g ##s (5 / (20·5) = 1/20 beats every
            ##u pair, each 1/36).

Counting again after every merge would cost a pass over all words per merge.
Instead `MergeState` keeps, for every pair, its count and the words it occurs in;
a merge updates only the words that contained the merged pair (their
neighbouring pairs lose or gain counts).  A heap gives the best pair; entries
whose score went down are fixed when they surface ("lazy" heap).  The likelihood
score of a pair also goes *up* when one of its pieces gets rarer, so after merging
a + b every pair that contains a or b is scored again and pushed (`pairs_with`).
"""
from __future__ import annotations

import heapq
from collections import Counter
from typing import Iterator, Sequence

from bertkit.common.errors import InputError

PREFIX = "##"
ALGORITHMS = ("frequency", "likelihood")

Pair = tuple[int, int]


def check_algorithm(algorithm: str) -> str:
    """`algorithm`, if it is one of ALGORITHMS; else an InputError that says what each one does."""
    if algorithm not in ALGORITHMS:
        raise InputError(f"algorithm={algorithm!r} is not one of {ALGORITHMS}: 'frequency' merges the most "
                         "frequent pair, 'likelihood' the pair of best count(ab) / (count(a)·count(b))")
    return algorithm


def choose_alphabet(word_counts: Counter, limit_alphabet: int | None) -> list[str]:
    """The `limit_alphabet` most frequent characters (ties broken by character), most frequent first."""
    chars: Counter = Counter()
    for word, count in word_counts.items():
        for ch in word:
            chars[ch] += count
    ranked = sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))
    if limit_alphabet is not None:
        ranked = ranked[:limit_alphabet]
    return [ch for ch, _ in ranked]


class MergeState:
    """Words as lists of piece ids, piece and pair counts, and where each pair occurs.

    Counts are weighted by how often each word occurs.  `pairs_with[p]` (kept only
    when `index_pieces`) holds the pairs that contain piece p, some perhaps with count 0.
    """

    def __init__(self, word_counts: Counter, alphabet: Sequence[str], index_pieces: bool = False):
        allowed = set(alphabet)
        self.pieces: list[str] = []               # id → piece string
        self.piece_id: dict[str, int] = {}
        self.piece_count: list[int] = []          # id → occurrences in the current segmentation
        self.words: list[list[int]] = []
        self.counts: list[int] = []
        for word, count in word_counts.items():
            if word and all(ch in allowed for ch in word):
                self.words.append([self.intern(word[0])] + [self.intern(PREFIX + ch) for ch in word[1:]])
                self.counts.append(count)
        self.pair_count: dict[Pair, int] = {}
        self.where: dict[Pair, set[int]] = {}
        for w, symbols in enumerate(self.words):
            c = self.counts[w]
            for s in symbols:
                self.piece_count[s] += c
            for pair in zip(symbols, symbols[1:]):
                self.pair_count[pair] = self.pair_count.get(pair, 0) + c
                self.where.setdefault(pair, set()).add(w)
        self.pairs_with: dict[int, set[Pair]] | None = None
        if index_pieces:
            self.pairs_with = {}
            for a, b in self.pair_count:
                self.pairs_with.setdefault(a, set()).add((a, b))
                self.pairs_with.setdefault(b, set()).add((a, b))

    def intern(self, piece: str) -> int:
        i = self.piece_id.get(piece)
        if i is None:
            i = self.piece_id[piece] = len(self.pieces)
            self.pieces.append(piece)
            self.piece_count.append(0)
        return i

    def merge(self, pair: Pair) -> tuple[int, set[Pair]]:
        """Merge every occurrence of `pair`; return the new piece id and the pairs that gained counts."""
        a, b = pair
        new = self.intern(self.pieces[a] + self.pieces[b][len(PREFIX):])
        gained: set[Pair] = set()
        counts, pair_count, where, piece_count = self.counts, self.pair_count, self.where, self.piece_count

        def add(p: Pair, delta: int, w: int) -> None:
            pair_count[p] = pair_count.get(p, 0) + delta
            if delta > 0:
                where.setdefault(p, set()).add(w)
                gained.add(p)

        for w in where.pop(pair, ()):
            symbols, c, i = self.words[w], counts[w], 0
            while i < len(symbols) - 1:
                if symbols[i] != a or symbols[i + 1] != b:
                    i += 1
                    continue
                if i > 0:
                    add((symbols[i - 1], a), -c, w)
                if i + 2 < len(symbols):
                    add((b, symbols[i + 2]), -c, w)
                symbols[i:i + 2] = [new]
                piece_count[a] -= c
                piece_count[b] -= c
                piece_count[new] += c
                if i > 0:
                    add((symbols[i - 1], new), c, w)
                if i + 1 < len(symbols):
                    add((new, symbols[i + 1]), c, w)
                i += 1
        pair_count.pop(pair, None)
        if self.pairs_with is not None:
            for p in gained:
                self.pairs_with.setdefault(p[0], set()).add(p)
                self.pairs_with.setdefault(p[1], set()).add(p)
        return new, gained

    def likelihood_score(self, pair: Pair) -> float:
        """count(ab) / (count(a) · count(b)): how much more often a and b meet than chance says."""
        a, b = pair
        return self.pair_count[pair] / (self.piece_count[a] * self.piece_count[b])

    def touching(self, pieces: Sequence[int], min_count: int = 1) -> set[Pair]:
        """The pairs seen at least `min_count` times that contain one of `pieces`.

        The others are dropped from `pairs_with` for good: the count of an existing pair
        never grows (only pairs with a newly merged piece gain, and `merge` adds those back).
        """
        out: set[Pair] = set()
        count = self.pair_count.get
        for piece in pieces:
            pairs = self.pairs_with.get(piece)
            if pairs:
                keep = {p for p in pairs if count(p, 0) >= min_count}
                self.pairs_with[piece] = keep
                out |= keep
        return out


# ---------------------------------------------------------------- the two rules

def frequency_merges(state: MergeState, min_frequency: int) -> Iterator[int]:
    """Merge the most frequent pair (ties: the smaller piece ids) until none occurs min_frequency times."""
    heap = [(-c, p) for p, c in state.pair_count.items()]
    heapq.heapify(heap)
    while heap:
        neg, pair = heapq.heappop(heap)
        current = state.pair_count.get(pair, 0)
        if current != -neg:                   # stale entry: the count went down since it was pushed
            if current > 0:
                heapq.heappush(heap, (-current, pair))
            continue
        if current < min_frequency:
            return
        new, gained = state.merge(pair)
        yield new
        for p in gained:
            if p != pair and state.pair_count.get(p, 0) > 0:
                heapq.heappush(heap, (-state.pair_count[p], p))


def likelihood_merges(state: MergeState, min_frequency: int) -> Iterator[int]:
    """Merge the pair of best count(ab) / (count(a)·count(b)) among those seen min_frequency times.

    Ties go to the smaller piece ids.  Pair counts never grow back (only pairs with
    the new piece gain), so a pair below min_frequency is dropped for good.
    """
    score = state.likelihood_score
    heap = [(-score(p), p) for p, c in state.pair_count.items() if c >= min_frequency]
    heapq.heapify(heap)
    while heap:
        neg, pair = heapq.heappop(heap)
        if state.pair_count.get(pair, 0) < min_frequency:
            continue
        current = score(pair)
        if current != -neg:                   # stale: went down → re-push; went up → a newer entry exists
            if current < -neg:
                heapq.heappush(heap, (-current, pair))
            continue
        new, gained = state.merge(pair)
        yield new
        count = state.pair_count.get
        for p in state.touching(pair, min_frequency) | gained:
            if count(p, 0) >= min_frequency:
                heapq.heappush(heap, (-score(p), p))
