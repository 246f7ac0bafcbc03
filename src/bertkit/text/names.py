"""One name per concept: the BasicTokenizer switches, and their retired aliases.

The text floor names each of BERT's text switches once, with the name Hugging Face
and google-research/bert use, everywhere (tokenizer, vocab trainer, word counter,
saved tokenizer_config.json):

    do_lower_case            lowercase the text (uncased models)           was: lowercase
    strip_accents            drop accents after NFD; None = follow do_lower_case
    tokenize_chinese_chars   every CJK ideograph is a word of its own      was: split_cjk

Functions that once took an old name still accept it, through `renamed`, with a
DeprecationWarning that names the new one.
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
    """Decorator: accept each old keyword as an alias of its new name, with a DeprecationWarning.

        @renamed(lowercase="do_lower_case")
        def train_vocab(files, do_lower_case=True): ...

        train_vocab(f, lowercase=False)   # works, warns "use do_lower_case"
    """
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise InputError(f"{fn.__name__}() got both {old}= and {new}=; {old} is the old name "
                                         f"of {new}, pass only {new}=")
                    warnings.warn(f"{fn.__name__}({old}=...) is deprecated; use {new}=...",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate
