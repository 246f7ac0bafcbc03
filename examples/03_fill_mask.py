"""Lecture notes: masked language model — "Love is like the [MASK]. You can't see it but you can feel it".

The notes run bert-large-uncased (the default --model): sun 0.75, moon 0.03, wind 0.03, ocean 0.02,
sky 0.02; "Where are you come from? I'm from [MASK]." → here, california, texas, london, england.
The Korean sentences of the notes ("나는 [MASK]에 가서 그곳에서 빵과 [MASK]를 샀다" → 슈퍼, 우유, and
the three masks of the Ernie sentence → 머리와, 두꺼운, 정반대) go to a Korean-capable model
(--ko-model, default bert-base-multilingual-cased).  Several [MASK]s give one ranked list per mask,
each scored independently.  A [MASK] hides one *word piece*: a word the vocab splits in two
cannot be the answer of one mask.

Offline (the models not in the Hub cache) the bundled MiniLM is used; it has no pretrained
MLM head, so its answers are noise — the script says so, and still shows the mechanics.

    python examples/03_fill_mask.py [--model bert-large-uncased] [--ko-model bert-base-multilingual-cased]
"""
from __future__ import annotations

from _common import MULTILINGUAL, NO_KOREAN, NO_MLM, minilm, open_model, parser, setup

ENGLISH = {"Love is like the [MASK]. You can't see it but you can feel it": ["sun", "moon", "wind", "ocean", "sky"],
           "Where are you come from? I'm from [MASK].": ["here", "california", "texas", "london", "england"]}
KOREAN = {"나는 [MASK]에 가서 그곳에서 빵과 [MASK]를 샀다": [["슈퍼"], ["우유"]],
          "길쭉한 [MASK] 인상 쓰는 듯한 [MASK] 일자눈썹, 날씬하고 뺏뺏한 몸통과 세로줄 스웨터, 딱 맞는 면바지와 "
          "깔끔한 새들 슈즈, 위로 삐죽삐죽 솟은 머리카락 등 어니와는 [MASK]의 디자인이다.": [["머리와"], ["두꺼운"], ["정반대"]]}


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], "a model with an MLM head (default: bert-large-uncased, as the notes)",
               default_model="bert-large-uncased")
    p.add_argument("--ko-model", default=MULTILINGUAL, help="model for the Korean sentences")
    p.add_argument("--top-k", type=int, default=5)
    args = p.parse_args(argv)
    setup(args)
    results = {}
    opened = {}
    for lang, name, sentences, why in (("english", args.model, ENGLISH, NO_MLM),
                                       ("korean", args.ko_model, KOREAN, f"{NO_KOREAN}; {NO_MLM}")):
        path, opened[lang] = open_model(name, instead="the bundled MiniLM", fallback=minilm, consequence=why,
                                        offline=args.offline)
        fill = _pipeline(path, opened[lang])
        for sentence, notes in sentences.items():
            rows = fill(sentence, top_k=args.top_k)
            results[sentence] = rows
            _show(sentence, rows, notes)
    return {"results": results, "opened": opened}


def _pipeline(path, published: bool):
    """fill-mask over a loaded model: a fall-back without an MLM head is loaded without the warning
    (the one-line message above already said so)."""
    from bertkit import BertForMaskedLM, BertTokenizer, pipeline
    model = BertForMaskedLM.from_pretrained(path, new_head_warning=published)
    return pipeline("fill-mask", model=model, tokenizer=BertTokenizer.from_pretrained(path), device="cpu")


def _show(sentence: str, rows: list, notes: list) -> None:
    print(sentence)
    per_mask = rows if rows and isinstance(rows[0], list) else [rows]
    notes_per_mask = notes if notes and isinstance(notes[0], list) else [notes]
    for n, (ranked, expected) in enumerate(zip(per_mask, notes_per_mask), 1):
        ours = [r["token_str"] for r in ranked]
        scored = ", ".join(f"{r['token_str']} {r['score']:.3f}" for r in ranked)
        print(f"  mask {n}: ours  {scored}")
        print(f"          notes {', '.join(expected)}   (top-1 {'same' if ours[:1] == expected[:1] else 'differs'})")


if __name__ == "__main__":
    main()
