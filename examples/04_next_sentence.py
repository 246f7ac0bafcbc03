"""Lecture notes: next sentence prediction — "I am going outside" → "I will be back after 6" (IsNext)
vs "Where are you come from?" (NotNext).

[CLS] A [SEP] B [SEP] with segment ids 0…0 1…1; the NSP head reads the pooled [CLS] vector
and gives two logits (index 0 = IsNext, 1 = NotNext).  Pass a checkpoint pretrained with NSP
(e.g. `bertkit quickstart`); without --model a tiny random model shows the mechanics only.

    python examples/04_next_sentence.py --model runs/quickstart/model
"""
from __future__ import annotations

from _common import model_dir, parser, setup

FIRST = "I am going outside"
SECONDS = ["I will be back after 6", "Where are you come from?"]


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], "a checkpoint with an NSP head (default: a tiny random one)")
    args = p.parse_args(argv)
    setup(args)
    from bertkit import pipeline

    nsp = pipeline("next-sentence", model=model_dir(args, "BertForNextSentencePrediction"), device="cpu")
    enc = nsp.tokenizer(FIRST, text_pair=SECONDS[0])
    print("tokens:        ", nsp.tokenizer.convert_ids_to_tokens(enc["input_ids"]))
    print("token_type_ids:", enc["token_type_ids"])
    results = {}
    for second in SECONDS:
        results[second] = nsp((FIRST, second))
        r = results[second]
        print(f"{FIRST!r} → {second!r}: {r['label']} (P(IsNext) = {r['is_next_probability']:.3f})")
    return {"token_type_ids": enc["token_type_ids"], "results": results}


if __name__ == "__main__":
    main()
