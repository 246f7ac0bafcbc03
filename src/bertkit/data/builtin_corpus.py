"""The built-in default corpus: English text that ships with Python itself.

A fresh machine with no downloads still has real prose to pretrain on: the
Python reference documentation bundled as `pydoc_data.topics` (~0.5 MB) and the
docstrings of the standard library's modules, classes and functions (several MB).
Each topic or docstring becomes one *document*; its paragraphs are split into
sentences, one per line, with a blank line between documents — the input format
of BERT's original `create_pretraining_data.py`.
"""
from __future__ import annotations

import ast
import re
import sysconfig
from pathlib import Path
from typing import Iterator

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_CODE_LINE = re.compile(r"^\s*(>>>|\.\.\.|\$ |[A-Za-z_][\w.]*\(.*\)\s*$|[-=*~^]{3,})")


def _prose_paragraphs(text: str) -> Iterator[str]:
    """Paragraphs of running text: code examples, headings and tables are dropped."""
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.splitlines() if ln.strip() and not _CODE_LINE.match(ln)]
        if not lines or lines[0].startswith("   "):        # indented block = code / grammar
            continue
        para = " ".join(ln.strip() for ln in lines)
        if len(para.split()) >= 6 and sum(c.isalpha() for c in para) > 0.6 * len(para):
            yield para


def split_sentences(paragraph: str) -> list[str]:
    """A simple English sentence splitter (period/!/? followed by a capital)."""
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if len(s.split()) >= 3]


def _documents_from(text: str) -> Iterator[list[str]]:
    sentences = [s for p in _prose_paragraphs(text) for s in split_sentences(p)]
    if sentences:
        yield sentences


def _pydoc_topics() -> Iterator[str]:
    from pydoc_data.topics import topics
    for key in sorted(topics):
        yield topics[key]


def _stdlib_docstrings() -> Iterator[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        parts = set(path.relative_to(stdlib).parts)
        if parts & {"test", "tests", "idle_test", "site-packages", "lib2to3", "__pycache__"}:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 200:
                    yield doc


def iter_documents(include_docstrings: bool = True) -> Iterator[list[str]]:
    """Documents (lists of sentences) of the built-in corpus, in a fixed order."""
    for text in _pydoc_topics():
        yield from _documents_from(text)
    if include_docstrings:
        for text in _stdlib_docstrings():
            yield from _documents_from(text)


def write_builtin_corpus(path: str | Path, include_docstrings: bool = True) -> dict:
    """Write the corpus as one sentence per line, documents separated by a blank line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    docs = sentences = 0
    with open(path, "w", encoding="utf-8") as fh:
        for doc in iter_documents(include_docstrings):
            fh.write("\n".join(doc) + "\n\n")
            docs += 1
            sentences += len(doc)
    return {"path": str(path), "documents": docs, "sentences": sentences, "bytes": path.stat().st_size}
