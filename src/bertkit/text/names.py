"""One name per concept: the BasicTokenizer switches, and their retired aliases.

The text floor names each of BERT's text switches once, with the name Hugging Face
and google-research/bert use, everywhere (tokenizer, vocab trainer, word counter,
saved tokenizer_config.json):

    do_lower_case            lowercase the text (uncased models)           was: lowercase
    strip_accents            drop accents after NFD; None = follow do_lower_case
    tokenize_chinese_chars   every CJK ideograph is a word of its own      was: split_cjk

Functions that once took an old name still accept it, through `renamed`, with a
DeprecationWarning that names the new one.  `renamed` is used for every retired keyword
in bertkit, not only the text switches (tasks' `encode(max_length=)`, `QATask(n_best=)`,
the QA pipeline's reference names `max_seq_len=` ...).
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable, TypeVar

from bertkit.common.errors import InputError

F = TypeVar("F", bound=Callable)

#: retired keyword → the name to use now
OLD_NAMES = {"lowercase": "do_lower_case", "split_cjk": "tokenize_chinese_chars"}


def renamed(**old_to_new: str) -> Callable[[F], F]:
    """Decorator: accept each old keyword as an alias of its new name, with one DeprecationWarning.

        @renamed(lowercase="do_lower_case")
        def train_vocab(files, do_lower_case=True): ...

        train_vocab(f, lowercase=False)   # works, warns "train_vocab: lowercase= is deprecated, use do_lower_case="

    This is bertkit's one mechanism for a retired keyword (a retired command-line flag is an
    `aliases=` of its settings field, or a second flag of its one declaration).  Both names at
    once must agree; a name that is neither is refused by Python itself (TypeError).
    """
    def decorate(fn: F) -> F:
        where = fn.__qualname__.removesuffix(".__init__").removesuffix(".__call__")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                warnings.warn(f"{where}: {old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=2)
                value = kwargs.pop(old)
                if new in kwargs and kwargs[new] != value:
                    raise InputError(f"{where}: {new}={kwargs[new]!r} and its old name {old}={value!r} disagree; "
                                     f"pass only {new}=")
                kwargs[new] = value
            return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate
