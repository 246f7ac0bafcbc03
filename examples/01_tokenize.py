"""Lecture notes: "I love Paris" → tokens, [CLS]/[SEP], padding to 7, attention mask, token ids.

    tokens         = [[CLS], i, love, paris, [SEP], [PAD], [PAD]]
    attention_mask = [1, 1, 1, 1, 1, 0, 0]          ([PAD] positions get 0)
    token_ids      = [101, 1045, 2293, 3000, 102, 0, 0]

The notes' ids are bert-base-uncased's (the default --model).  Offline, the bundled MiniLM
is used: its vocab is bert-base-uncased's, so the ids are the same.  (The notes' legend
"ID 2293: Paris, ID 3000: [SEP]" is off by one line: 2293 is "love", 3000 "paris", 102 [SEP].)

    python examples/01_tokenize.py [--model bert-base-uncased] [--text "I love Paris"] [--length 7]
"""
from __future__ import annotations

from _common import ENGLISH, beside, english_model, parser, setup

NOTES_IDS = [101, 1045, 2293, 3000, 102, 0, 0]


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], default_model=ENGLISH)
    p.add_argument("--text", default="I love Paris")
    p.add_argument("--length", type=int, default=7, help="pad (and truncate) every sentence to this many tokens")
    args = p.parse_args(argv)
    setup(args)
    from bertkit import BertTokenizer

    path, _ = english_model(args, "the same 30,522-token uncased vocab, so the same tokens and ids",
                            need_weights=False, hint="")
    tok = BertTokenizer.from_pretrained(path)
    print("1. WordPiece tokens:      ", tok.tokenize(args.text))
    enc = tok(args.text, padding="max_length", truncation=True, max_length=args.length)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    print("2-3. with [CLS]/[SEP], padded to", args.length, ":", tokens)
    print("4. attention_mask:        ", enc["attention_mask"], " (0 = [PAD], not a real token)")
    print("5. token_ids:")
    beside(args.text, enc["input_ids"], NOTES_IDS if args.text == "I love Paris" and args.length == 7 else "-")
    for special in ("[CLS]", "[SEP]", "[PAD]", "[MASK]"):
        print(f"   {special} = {tok.convert_tokens_to_ids(special)}")
    return {"tokens": tokens, "attention_mask": enc["attention_mask"], "input_ids": enc["input_ids"]}


if __name__ == "__main__":
    main()
