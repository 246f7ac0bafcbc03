"""Lecture notes: how the masked LM hides words — 15% chosen; of those 80% [MASK], 10% random, 10% kept.

* the notes' input "[CLS] my dog is cute [SEP] he likes play ##ing [SEP]" with segment ids A…A B…B and
  positions 0…10, and their hand-made example: 'dog' → [MASK], 'he' → 'king' (random), 'play' kept —
  the loss looks only at those three positions (labels = the original ids, -100 elsewhere);
* `bertkit.data.masking.MlmCollator` on that very input with a fixed seed (what pretraining does);
* "The man went to the store" → "... the [MASK]" / "... the dog" (a random word) / "... the store";
* the shares over many draws: 80/10/10 of the chosen tokens, i.e. 12% / 1.5% / 1.5% of all tokens;
* Korean: "나는 [MASK]에 가서 그곳에서 빵과 [MASK]를 샀다" (the answers: 슈퍼, 우유).

The real bert-base-uncased vocab keeps "playing" whole; the notes' "play ##ing" is the BERT
paper's picture of a split word, built here from the notes' own tokens.

    python examples/11_mlm_masking.py [--seed 0] [--draws 4000]
"""
from __future__ import annotations

import torch

from _common import ENGLISH, add_korean_options, beside, english_model, korean_tokenizer_dir, parser, setup

NOTES_TOKENS = ["[CLS]", "my", "dog", "is", "cute", "[SEP]", "he", "likes", "play", "##ing", "[SEP]"]
NOTES_MASKED = {"dog": "[MASK]", "he": "king"}          # and "play": kept, still predicted
SENTENCE = "My dog is cute. he likes playing"
STORE = "The man went to the store"
LONG = ("The man went to the store. He bought a gallon of milk. My dog is cute. He likes playing. "
        "I love Paris. Love is like the sun. You can't see it but you can feel it. I am going outside. "
        "I will be back after 6. Jeremy lives in Paris. We loved the game. It was a great day.")
KOREAN = ("나는 슈퍼에 가서 그곳에서 빵과 우유를 샀다", ["슈퍼", "우유"])


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], default_model=ENGLISH)
    p.add_argument("--draws", type=int, default=4000, help="masked copies for the 80/10/10 count")
    add_korean_options(p)
    args = p.parse_args(argv)
    setup(args)
    from bertkit import BertTokenizer
    from bertkit.data.masking import MlmCollator

    path, _ = english_model(args, "the same uncased vocab, so the same ids", need_weights=False, hint="")
    tok = BertTokenizer.from_pretrained(path)
    beside(SENTENCE, tok.tokenize(SENTENCE), ["my", "dog", "is", "cute", "he", "likes", "play", "##ing"])
    ids = tok.convert_tokens_to_ids(NOTES_TOKENS)
    types = [0] * 6 + [1] * 5
    for name, row in (("token", NOTES_TOKENS), ("input_ids", ids), ("segment", types), ("position", range(11))):
        print(f"  {name:>9}: " + " ".join(f"{str(x):>7}" for x in row))
    notes_input, notes_labels = notes_example(tok, ids)
    collator = MlmCollator(tok, seed=args.seed)
    batch = collator([{"input_ids": ids, "token_type_ids": types}])
    drawn = _show(tok, "MlmCollator, seed %d" % args.seed, batch["input_ids"][0], batch["labels"][0])
    return {"tokens": tok.tokenize(SENTENCE), "notes_ids": ids, "token_type_ids": types,
            "notes_input": notes_input, "notes_labels": notes_labels, "drawn": drawn,
            "store": store_variants(tok, collator, args.draws), "shares": shares(tok, collator, args.draws),
            "korean": korean(args)}


def notes_example(tok, ids: list[int]) -> tuple[list[str], list[int]]:
    """The notes' hand-made draw: dog → [MASK], he → king, play kept; labels only there."""
    tokens = [NOTES_MASKED.get(t, t) for t in NOTES_TOKENS]
    labels = [i if t in ("dog", "he", "play") else -100 for t, i in zip(NOTES_TOKENS, ids)]
    _show(tok, "the notes' draw", torch.tensor(tok.convert_tokens_to_ids(tokens)), torch.tensor(labels))
    return tokens, labels


def _show(tok, title: str, masked: torch.Tensor, labels: torch.Tensor) -> list[tuple]:
    """Print the masked row and what the loss sees: (position, original, shown) per chosen token."""
    chosen = [(i, tok.ids_to_tokens[int(labels[i])], tok.ids_to_tokens[int(masked[i])])
              for i in range(len(labels)) if labels[i] != -100]
    print(f"{title}: {' '.join(tok.convert_ids_to_tokens(masked.tolist()))}")
    for position, original, shown in chosen:
        what = "[MASK]" if shown == "[MASK]" else "kept" if shown == original else f"random '{shown}'"
        print(f"    position {position}: '{original}' → {what}; the loss asks for '{original}'")
    return chosen


def store_variants(tok, collator, draws: int) -> dict:
    """The first draws in which 'store' is chosen, one per action: [MASK], random word, kept."""
    ids = tok(STORE)["input_ids"]
    batch = collator([{"input_ids": ids}] * draws)
    where, found = ids.index(tok.vocab["store"]), {}
    for masked, labels in zip(batch["input_ids"], batch["labels"]):
        if labels[where] == -100:
            continue
        shown = tok.ids_to_tokens[int(masked[where])]
        action = "mask" if shown == "[MASK]" else "keep" if shown == "store" else "random"
        found.setdefault(action, " ".join(tok.convert_ids_to_tokens(masked.tolist())))
    notes = {"mask": "the man went to the [MASK]", "random": "the man went to the dog", "keep": "the man went to the store"}
    for action in ("mask", "random", "keep"):
        print(f"  {action:>6}: ours {found.get(action)!r:52} notes {notes[action]!r}")
    return found


def shares(tok, collator, draws: int) -> dict:
    """Over many draws of a longer text: share of tokens chosen, and how the chosen ones were shown."""
    ids = torch.tensor(tok(LONG)["input_ids"])
    batch = collator([{"input_ids": ids}] * max(1, draws // 8))
    chosen = batch["labels"] != -100                                         # [B,T]
    shown, original = batch["input_ids"][chosen], batch["labels"][chosen]
    maskable = (len(ids) - 2) * chosen.shape[0]
    out = {"chosen": chosen.sum().item() / maskable,
           "mask": (shown == tok.mask_token_id).float().mean().item(),
           "kept": (shown == original).float().mean().item()}
    out["random"] = 1 - out["mask"] - out["kept"]
    print(f"chosen {out['chosen']:.1%} of the tokens (notes: 15%); of those [MASK] {out['mask']:.1%}, random "
          f"{out['random']:.1%}, kept {out['kept']:.1%} (notes: 80/10/10 → 12% / 1.5% / 1.5% of all tokens)")
    return out


def korean(args) -> dict:
    """The Korean sentence, masked as the notes show it (the stems 슈퍼 and 우유), when they are single pieces."""
    from bertkit import BertTokenizer
    path, _ = korean_tokenizer_dir(args)
    tok = BertTokenizer.from_pretrained(path)
    pieces = tok.tokenize(KOREAN[0])
    masked = " ".join("[MASK]" if p in KOREAN[1] else p for p in pieces).replace(" ##", "")
    print(f"  {KOREAN[0]} → {pieces}")
    beside("the stems 슈퍼 and 우유 masked where they are single pieces", masked,
           "나는 [MASK]에 가서 그곳에서 빵과 [MASK]를 샀다")
    return {"pieces": pieces, "masked": masked}


if __name__ == "__main__":
    main()
