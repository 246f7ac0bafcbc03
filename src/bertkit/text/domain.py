"""Domain words into a published vocabulary, without changing its size.

BERT's vocab.txt reserves slots named [unused0], [unused1], ... (994 in bert-base-uncased)
for exactly this: a domain (medicine, law, a product) has words that the general vocab
cuts into meaningless pieces ("tocilizumab" → to ##ci ##li ##zu ##mab).  Writing a word
into an [unusedN] line makes it one token; the model's embedding table keeps its size,
so every weight still loads.  The new token's embedding row is the untrained [unusedN]
row, so continue pretraining on domain text (`bertkit pretrain --from MODEL`) to teach
the model what the word means — the lecture notes' domain-adaptation story.

    add_domain_words("runs/bio-bert", ["tocilizumab", "remdesivir"])
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from bertkit.common.errors import InputError, NotFoundError
from bertkit.text.tokenizer import BertTokenizer

UNUSED = re.compile(r"^\[unused\d+\]$")


def _check_one_word(word: str, tokenizer: BertTokenizer) -> str:
    """The word as the tokenizer sees it (lower-cased, accents stripped as configured); one word only."""
    words = tokenizer.encode_words(word)
    if len(words) != 1:
        parts = [w for w, *_ in words]
        raise InputError(f"{word!r} is not one word for BERT: its basic tokenizer cuts it into {parts} "
                         "(at spaces and punctuation) before WordPiece; add the parts separately.")
    return words[0][0]


def add_domain_words(directory: str | os.PathLike, words: list[str]) -> dict:
    """Put `words` into the [unusedN] slots of the vocab in `directory`; vocab size unchanged.

    Returns {"added": {word: token id}, "already": [words already one token], "free_slots": left}.
    Refuses (and writes nothing) when there are more new words than free slots.
    """
    directory = Path(directory)
    if not (directory / "vocab.txt").is_file():
        raise NotFoundError(f"no vocab.txt in {directory}: pass a model or vocab folder")
    tok = BertTokenizer.from_pretrained(directory)
    tokens = list(tok.convert_ids_to_tokens(range(tok.vocab_size)))
    new, already = [], []
    for word in dict.fromkeys(words):                        # keeps order, drops repeats
        norm = _check_one_word(word, tok)
        (already if norm in tok.vocab else new).append(norm)
    slots = [i for i, t in enumerate(tokens) if UNUSED.match(t)]
    if len(new) > len(slots):
        raise InputError(f"{len(new)} new words but only {len(slots)} free [unusedN] slots in {directory}/vocab.txt; "
                         "add fewer words (the most frequent ones), or train a new vocab with `bertkit vocab`.")
    added = {}
    for word, slot in zip(new, slots):
        tokens[slot] = word
        added[word] = slot
    updated = BertTokenizer(tokens, **{k: v for k, v in tok.config_dict().items() if k in _SETTINGS})
    for word in added:
        assert updated.tokenize(word) == [word], (word, updated.tokenize(word))
    updated.save_pretrained(directory)
    return {"added": added, "already": already, "free_slots": len(slots) - len(new)}


_SETTINGS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "never_split", "unk_token", "sep_token",
             "pad_token", "cls_token", "mask_token", "model_max_length", "morpheme_splitter")
