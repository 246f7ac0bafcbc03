"""Lecture notes: next sentence prediction — does sentence B follow sentence A?

The notes' pairs: "I am going outside" → "I will be back after 6" (IsNext) / "Where are you come
from?" (NotNext); the BERT paper's "The man went to the store." → "He bought a gallon of milk."
(IsNext) / "dogs are so cute." (NotNext); and the Korean Ernie paragraph → "제작 컨셉부터 똥똥이와
홀쭉이 콤비였다." (Next) / "그 남자는 우유를 세 통 집어들었다." (Not Next).

[CLS] A [SEP] B [SEP] with segment ids 0…0 1…1; the NSP head reads the pooled [CLS] vector and
gives two logits (index 0 = IsNext, 1 = NotNext).  The notes use bert-base-uncased (the default
--model; Google's checkpoint keeps its NSP head) and, for Korean, a multilingual model
(--ko-model).  Offline, the bundled MiniLM is used with a *random* NSP head: the mechanics
are real, the answer needs a pretrained NSP head.

    python examples/04_next_sentence.py [--model bert-base-uncased] [--ko-model bert-base-multilingual-cased]
"""
from __future__ import annotations

from _common import ENGLISH, MULTILINGUAL, NO_KOREAN, NO_NSP, minilm, open_model, parser, setup

ERNIE = ("길쭉한 머리와 인상 쓰는 듯한 [MASK] 일자눈썹, 날씬하고 뺏뺏한 몸통과 세로줄 스웨터, 딱 맞는 면바지와 깔끔한 "
         "새들 슈즈, 위로 삐죽삐죽 솟은 머리카락 등 어니와는 [MASK]의 디자인이다.")
PAIRS = {"english": [("I am going outside", "I will be back after 6", "IsNext"),
                     ("I am going outside", "Where are you come from?", "NotNext"),
                     ("The man went to the store.", "He bought a gallon of milk.", "IsNext"),
                     ("The man went to the store.", "dogs are so cute.", "NotNext")],
         "korean": [(ERNIE, "제작 컨셉부터 똥똥이와 홀쭉이 콤비였다.", "IsNext"),
                    (ERNIE, "그 남자는 우유를 세 통 집어들었다.", "NotNext")]}


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], "a model with an NSP head (default: bert-base-uncased, as the notes)",
               default_model=ENGLISH)
    p.add_argument("--ko-model", default=MULTILINGUAL, help="model for the Korean pair")
    args = p.parse_args(argv)
    setup(args)
    results, opened, first_types = [], {}, None
    for lang, name, why in (("english", args.model, NO_NSP), ("korean", args.ko_model, f"{NO_KOREAN}; {NO_NSP}")):
        path, opened[lang] = open_model(name, instead="the bundled MiniLM with a random NSP head", fallback=minilm,
                                        consequence=why, offline=args.offline)
        nsp = _pipeline(path, opened[lang])
        if first_types is None:
            a, b, _ = PAIRS["english"][0]
            enc = nsp.tokenizer(a, text_pair=b)
            first_types = enc["token_type_ids"]
            print("tokens:        ", nsp.tokenizer.convert_ids_to_tokens(enc["input_ids"]))
            print("token_type_ids:", first_types)
        for a, b, notes in PAIRS[lang]:
            r = nsp((a, b))
            results.append({"a": a, "b": b, "notes": notes, **r})
            agree = ("same" if r["label"] == notes else "differs") + ("" if opened[lang] else ", by chance: random head")
            print(f"{a[:40]!r} → {b!r}\n    ours: {r['label']} (P(IsNext) = {r['is_next_probability']:.3f})"
                  f"   notes: {notes}   ({agree})")
    return {"token_type_ids": first_types, "results": results, "opened": opened}


def _pipeline(path, published: bool):
    """The next-sentence pipeline; a fall-back's random NSP head is loaded without the warning
    (the one-line message already said so)."""
    from bertkit import BertForNextSentencePrediction, BertTokenizer, pipeline
    model = BertForNextSentencePrediction.from_pretrained(path, new_head_warning=published)
    return pipeline("next-sentence", model=model, tokenizer=BertTokenizer.from_pretrained(path), device="cpu")


if __name__ == "__main__":
    main()
