"""From wordpiece ids to a model input: [CLS] A [SEP] B [SEP], truncation, padding, tensors.

    A = hello world      B = hi
    input_ids        [CLS] hello world [SEP] hi [SEP] [PAD]
    token_type_ids     0     0     0     0    1   1     0      (segment: 0 = A, 1 = B)
    attention_mask     1     1     1     1    1   1     0      (0 = padding, not attended)
    special_tokens     1     0     0     1    0   1     1
    offset_mapping   (0,0) (0,5) (6,11) (0,0) (0,2) (0,0) (0,0) (character spans, per text)

Every rule here is Hugging Face's (`BertTokenizerFast`), so the same call gives the
same lists: truncation strategies, which side loses tokens, padding values.
"""
from __future__ import annotations

from bertkit.common.errors import InputError

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")
PAD_VALUES = {"token_type_ids": 0, "attention_mask": 0, "special_tokens_mask": 1, "offset_mapping": (0, 0)}


class BatchEncoding(dict):
    """The tokenizer's output: a dict (input_ids, token_type_ids, attention_mask, ...).

    Keys are also attributes (`enc.input_ids`); `enc.to(device)` moves tensors.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no field {name!r}; fields: {list(self)}") from None

    def to(self, device) -> "BatchEncoding":
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") else v for k, v in self.items()})


def assemble(ids_a, off_a, ids_b, off_b, cls_id: int | None, sep_id: int | None) -> dict:
    """[CLS] A [SEP] (B [SEP]) with type ids, mask, offsets and special-token mask.

    cls_id/sep_id None: no special tokens (add_special_tokens=False).
    """
    cls, sep = ([cls_id], [sep_id]) if cls_id is not None else ([], [])
    ids = cls + ids_a + sep
    n_a = len(ids)
    special = [1] * len(cls) + [0] * len(ids_a) + [1] * len(sep)
    if ids_b is not None:
        ids += ids_b + sep
        special += [0] * len(ids_b) + [1] * len(sep)
    row = {"input_ids": ids, "token_type_ids": [0] * n_a + [1] * (len(ids) - n_a),
           "attention_mask": [1] * len(ids), "special_tokens_mask": special}
    if off_a is not None:
        zero = [(0, 0)] if cls else []
        offs = zero + off_a + zero
        if ids_b is not None:
            offs += off_b + zero
        row["offset_mapping"] = offs
    return row


def truncate(ids_a, off_a, ids_b, off_b, budget: int, strategy: str):
    """Cut the sequences to `budget` tokens in total (specials excluded), HF's rules.

    longest_first: if the shorter fits in half, the longer gets the rest; otherwise
    both get half (the longer one the odd extra token).
    """
    if budget < 0:
        raise InputError("max_length is smaller than the number of special tokens ([CLS]/[SEP]) it must hold")
    n_a, n_b = len(ids_a), len(ids_b) if ids_b is not None else 0
    if n_a + n_b <= budget:
        return ids_a, off_a, ids_b, off_b
    if strategy == "longest_first":
        keep_a, keep_b = _longest_first(n_a, n_b if ids_b is not None else None, budget)
    else:
        keep_a, keep_b = _only_one(n_a, n_b if ids_b is not None else None, n_a + n_b - budget, strategy)
    ids_a = ids_a[:keep_a]
    off_a = off_a[:keep_a] if off_a is not None else None
    if ids_b is not None:
        ids_b = ids_b[:keep_b]
        off_b = off_b[:keep_b] if off_b is not None else None
    return ids_a, off_a, ids_b, off_b


def _longest_first(n_a: int, n_b: int | None, budget: int) -> tuple[int, int]:
    if n_b is None:
        return budget, 0
    short, _ = min(n_a, n_b), max(n_a, n_b)
    keep_long = short if short > budget else max(short, budget - short)
    keep_short = short
    if keep_short + keep_long > budget:
        keep_short = budget // 2
        keep_long = keep_short + budget % 2
    return (keep_short, keep_long) if n_a <= n_b else (keep_long, keep_short)


def _only_one(n_a: int, n_b: int | None, to_remove: int, strategy: str) -> tuple[int, int]:
    target_is_a = strategy == "only_first"
    if not target_is_a and n_b is None:
        raise InputError("truncation='only_second' needs a text_pair")
    n_target = n_a if target_is_a else n_b
    if n_target <= to_remove:
        which = "first" if target_is_a else "second"
        raise InputError(
            f"truncation={strategy!r} must remove {to_remove} tokens but the {which} sequence has only "
            f"{n_target}; use truncation='longest_first' or a larger max_length")
    n_b = n_b or 0
    return (n_a - to_remove, n_b) if target_is_a else (n_a, n_b - to_remove)


def pad(rows: list[dict], target: int, pad_id: int) -> None:
    """Extend every row (in place) to `target` tokens with [PAD] and the matching mask values."""
    fill = dict(PAD_VALUES, input_ids=pad_id)
    for row in rows:
        missing = target - len(row["input_ids"])
        if missing > 0:
            for key, value in row.items():
                value.extend([fill[key]] * missing)


def to_tensors(out: dict, return_tensors, batched: bool) -> dict:
    """Lists -> torch ("pt") or numpy ("np") int64 arrays of shape [B, T]; None leaves lists."""
    if return_tensors is None:
        return out
    if return_tensors not in ("pt", "np"):
        raise InputError(f"return_tensors={return_tensors!r} is not supported: use None, 'pt' or 'np'")
    if not batched:
        out = {k: [v] for k, v in out.items()}
    lengths = {len(row) for row in out["input_ids"]}
    if len(lengths) > 1:
        raise InputError("the sequences have different lengths, so they cannot form one tensor; "
                         "pass padding=True (or padding='max_length')")
    if return_tensors == "pt":
        import torch        # only when tensors are asked for: the text floor itself runs without torch
        return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
    import numpy as np
    return {k: np.array(v, dtype=np.int64) for k, v in out.items()}


_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def decode_tokens(tokens: list[str]) -> str:
    """Hugging Face's WordPiece decoder: "##" pieces glue on, others get a space; then cleanup."""
    return "".join(_decode_token(t, i) for i, t in enumerate(tokens))


def _decode_token(token: str, position: int) -> str:
    if position:
        token = token[2:] if token.startswith("##") else " " + token
    for dirty, clean in _CLEANUP:
        token = token.replace(dirty, clean)
    return token


def decode_spans(tokens: list[str], offsets: list[tuple[int, int]]) -> str:
    """Tokens -> text spaced as the text they came from: a token glues onto the one before exactly
    when their character spans touch there (`offsets`: (start, end) per token, from
    return_offsets_mapping); "##" is dropped.  So the morphemes 없 / 다 of "없다" decode to "없다"
    and "재미 없다." keeps its one space, where `decode_tokens` spaces every token that is not "##".
    A token put in place of a [MASK] written as a word of its own stays a word of its own."""
    out, last_end = [], None
    for token, (start, end) in zip(tokens, offsets):
        piece = token[2:] if token.startswith("##") else token
        out.append(piece if start == last_end or not out else " " + piece)
        last_end = end
    return "".join(out)
