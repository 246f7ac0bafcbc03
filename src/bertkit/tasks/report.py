"""ReadReport: what reading or encoding a data set did not take at face value.

Every reader, `task.encode` and `task.predict` returns its examples (or features, or
predictions) with a `ReadReport`.  A report counts, by reason, the rows it left out
(`skipped`) and the rows it kept but that are worth knowing about (`notes`: a label
outside the task's set, a text cut at max_seq_length ...), remembers the first few
places of each reason, and can say what to do about it (`hints`).  `summary()` is
written for the person who gave the file:

    train.tsv: 9,999 examples, 2 skipped
      skipped: 2 rows with fewer than 2 columns (lines 5, 9 of train.tsv)
      note: 23 texts longer than max_seq_length=128 tokens were cut (lines 24, 46, 48, … of train.tsv);
            raise --max-seq-length to keep more

Places are file line numbers (1-based, a header line counted, as an editor shows them)
when they are ints, ``(line, value)`` pairs to show the value found there (``5 ('2')``),
and are shown as given otherwise (``"id 6548850-0"``, ``"'wörd'"``).
Each reason is the plural wording; pass `one=` for the wording of a single case.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

SAMPLES_PER_REASON = 3


@dataclass
class ReadReport:
    """What happened while reading (or encoding) a data set.

    `skipped[reason]`  rows/examples left out, by reason;
    `notes[reason]`    rows kept but worth knowing about (unknown labels, truncation ...);
    `where[reason]`    the first few places of each reason (int = a line of `file`);
    `hints[reason]`    what the user can do about it;
    `file`             the file that the line numbers refer to (default: `source`).
    """

    source: str = ""
    examples: int = 0
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    where: dict = field(default_factory=dict)
    unit: str = "examples"           # what `examples` counts (QA encoding counts windows)
    file: str = ""
    hints: dict = field(default_factory=dict)
    singular: dict = field(default_factory=dict)

    def skip(self, reason: str, where: int | str | None = None, count: int = 1, *,
             hint: str | None = None, one: str | None = None) -> None:
        """Count `count` rows left out for `reason`, at `where` (a line number or a label)."""
        self.skipped[reason] += count
        self._remember(reason, where, hint, one)

    def note(self, reason: str, where: int | str | None = None, count: int = 1, *,
             hint: str | None = None, one: str | None = None) -> None:
        """Count `count` kept rows (or words, or tags) worth knowing about, at `where`."""
        self.notes[reason] += count
        self._remember(reason, where, hint, one)

    def _remember(self, reason: str, where, hint: str | None, one: str | None) -> None:
        places = self.where.setdefault(reason, [])
        if where not in (None, "") and len(places) < SAMPLES_PER_REASON:
            places.append(where)
        if hint:
            self.hints[reason] = hint
        if one:
            self.singular[reason] = one

    def num_skipped(self) -> int:
        """How many rows/examples were left out (all reasons together)."""
        return sum(self.skipped.values())

    def places(self, reason: str, count: int) -> str:
        """"lines 24, 46, 48, … of train.tsv" for the remembered places of `reason`."""
        items = self.where.get(reason, [])
        more = ", …" if count > len(items) else ""
        lines = [_line_place(p) for p in items if _is_line(p)]
        others = [str(p) for p in items if not _is_line(p)]
        parts = []
        if lines:
            of = f" of {self.file}" if self.file else ""
            parts.append(("line " if len(lines) == 1 and not more else "lines ") + ", ".join(lines) + more + of)
        if others:
            parts.append(", ".join(others) + ("" if lines else more))
        return "; ".join(parts)

    def describe(self, kind: str, reason: str, count: int) -> str:
        """One line: count, reason (singular for one), places, and what to do."""
        text = self.singular.get(reason, reason) if count == 1 else reason
        places = self.places(reason, count)
        hint = self.hints.get(reason)
        return (f"  {kind}: {count:,} {text}" + (f" ({places})" if places else "")
                + (f"; {hint}" if hint else ""))

    def summary(self) -> str:
        """Human-readable lines: one for the total, one per reason (with places and hints)."""
        unit = "example" if self.unit == "examples" and self.examples == 1 else self.unit
        lines = [f"{self.source}: {self.examples:,} {unit}"
                 + (f", {self.num_skipped():,} skipped" if self.skipped else "")]
        for kind, counter in (("skipped", self.skipped), ("note", self.notes)):
            for reason, n in counter.most_common():
                lines.append(self.describe(kind, reason, n))
        return "\n".join(lines)

    def has_news(self) -> bool:
        """True when something was skipped or noted (a report worth printing on its own)."""
        return bool(self.skipped or self.notes)

    def __str__(self) -> str:
        return self.summary()


def _is_line(place) -> bool:
    """A line number, or a (line number, value) pair."""
    return isinstance(place, int) or (isinstance(place, tuple) and len(place) == 2 and isinstance(place[0], int))


def _line_place(place) -> str:
    return str(place) if isinstance(place, int) else f"{place[0]} ({place[1]!r})"
