"""The examples that readers return, one kind per task family, and `ExampleList` (examples + their report).

    TextExample    text (+ text_pair) (+ label)      single-text / pair classification, regression
    TaggedExample  words (+ tags, one per word)      token tagging (NER)
    QAExample      question, context (+ answers)     extractive QA (SQuAD / KorQuAD)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from bertkit.common.errors import NotFoundError

from .report import ReadReport


# ----------------------------------------------------------------------------- lists
class ExampleList(list):
    """A list of examples with the `ReadReport` of how it was read (`.report`).

    A slice (`examples[:500]`) is an ExampleList too, whose fresh report still names the
    file, so that later reports can say "line 24 of train.tsv".
    """

    def __init__(self, items: Iterable = (), report: ReadReport | None = None):
        super().__init__(items)
        self.report = report if report is not None else ReadReport()

    def __getitem__(self, index):
        if isinstance(index, slice):
            return _part(self, list.__getitem__(self, index))
        return list.__getitem__(self, index)


# ---------------------------------------------------------------------------- examples
@dataclass
class TextExample:
    """One text (or text pair) with its label: a string, a float (regression) or None.

    `line` is where the example starts in its file (1-based, a header line counted: what
    an editor shows); None for texts that did not come from a file.  `guid` is the file's
    own id column (NSMC's id, RTE's index) when it has one.
    """

    text: str
    text_pair: str | None = None
    label: str | float | None = None
    guid: str = ""
    line: int | None = None


@dataclass
class TaggedExample:
    """A sentence as words with one tag per word (IOB2, e.g. B-PER I-PER O); tags None when unlabelled."""

    words: list[str]
    tags: list[str] | None = None
    guid: str = ""
    text: str = ""            # the raw sentence when the format has one (KMOU)
    line: int | None = None   # the sentence's first line in its file (None: not from a file)


@dataclass
class QAExample:
    """A SQuAD question: answers are dicts {"text", "answer_start"} (character index into context).

    `answer_ok[i]` says whether answers[i] really is `context[answer_start:answer_start+len(text)]`
    (after the reader's repair, see `read_squad`); only usable answers give training positions.
    SQuAD 2.0: `is_impossible=True` (then `answers` is empty) for a question the context does
    not answer; `plausible_answers` are the file's distractor spans, kept only to be looked at.
    """

    id: str
    question: str
    context: str
    answers: list[dict] = field(default_factory=list)
    answer_ok: list[bool] = field(default_factory=list)
    title: str = ""
    article: int = 0          # index of the article in the file: the unit of train/valid splits
    is_impossible: bool = False
    plausible_answers: list[dict] = field(default_factory=list)


def _part(examples, items: list) -> ExampleList:
    """A part of `examples` (same list type) whose fresh report still names the file of its lines."""
    parent = getattr(examples, "report", None)
    report = ReadReport(source=parent.source, file=parent.file) if parent is not None else ReadReport()
    report.examples = len(items)
    return (type(examples) if isinstance(examples, ExampleList) else ExampleList)(items, report)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise NotFoundError(f"data file not found: {path}")
