"""Lecture notes: masked language model — "Love is like the [MASK]. You can't see it but you can feel it".

A pretrained BERT (bert-large-uncased in the notes) answers sun 0.75, moon 0.03, wind, ocean, sky.
Pass a checkpoint that has its MLM head (`cls.predictions` weights), e.g. one from
`bertkit quickstart` or `bertkit pretrain`; MiniLM has no MLM head, so without --model a tiny
random model shows the mechanics only.

    python examples/03_fill_mask.py --model runs/quickstart/model [--top-k 5]
"""
from __future__ import annotations

from _common import model_dir, parser, setup

SENTENCES = ["Love is like the [MASK]. You can't see it but you can feel it",
             "Where are you come from? I'm from [MASK]."]


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], "a checkpoint with an MLM head (default: a tiny random one)")
    p.add_argument("--top-k", type=int, default=5)
    args = p.parse_args(argv)
    setup(args)
    from bertkit import pipeline

    fill = pipeline("fill-mask", model=model_dir(args, "BertForMaskedLM"), device="cpu")
    results = {}
    for sentence in SENTENCES:
        print(sentence)
        results[sentence] = fill(sentence, top_k=args.top_k)
        for r in results[sentence]:
            print(f"  {r['score']:.4f}  {r['token_str']:<12} {r['sequence']}")
    return results


if __name__ == "__main__":
    main()
