"""Lecture notes, fine-tuning figure 3: token tagging (named-entity recognition).

    [CLS] jeremy lives in paris [SEP] → every token's vector R_i → classifier → B-PER O O B-LOC

A word split into several pieces gets its label on the first piece; the other pieces
are ignored by the loss (label -100) and the pipeline puts words back together.

    python examples/07_finetune_tagging.py [--model DIR] [--steps 40]
"""
from __future__ import annotations

import torch

from _common import finetune_args, model_dir, train_steps, with_new_head

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
DATA = [("Jeremy lives in Paris", ["B-PER", "O", "O", "B-LOC"]),
        ("Angela Merkel visited New York", ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]),
        ("Sam moved to Berlin", ["B-PER", "O", "O", "B-LOC"]),
        ("Paris is far from Seoul", ["B-LOC", "O", "O", "O", "B-LOC"])]


def encode(tok, sentence: str, tags: list[str]) -> tuple[list[int], list[int]]:
    """Word labels → piece labels: the first piece of each word carries the label, the rest -100."""
    ids, labels = [tok.cls_token_id], [-100]
    words = tok.encode_words(sentence)
    assert len(words) == len(tags), (sentence, words)
    for (_, _, _, pieces), tag in zip(words, tags):
        ids += pieces
        labels += [LABELS.index(tag)] + [-100] * (len(pieces) - 1)
    return ids + [tok.sep_token_id], labels + [-100]


def main(argv=None) -> dict:
    args = finetune_args(__doc__, argv, steps=40, lr=2e-4)
    from bertkit import BertForTokenClassification, BertTokenizer, pipeline

    path = model_dir(args)
    tok = BertTokenizer.from_pretrained(path)
    model = with_new_head(BertForTokenClassification, path, num_labels=len(LABELS),
                          id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    rows = [encode(tok, s, t) for s, t in DATA]
    T = max(len(ids) for ids, _ in rows)
    batch = {"input_ids": torch.tensor([ids + [0] * (T - len(ids)) for ids, _ in rows]),
             "attention_mask": torch.tensor([[1] * len(ids) + [0] * (T - len(ids)) for ids, _ in rows]),
             "labels": torch.tensor([lab + [-100] * (T - len(lab)) for _, lab in rows])}
    print("tokens:", tok.convert_ids_to_tokens(rows[0][0]), " labels:", rows[0][1])
    losses = train_steps(model, [batch], args.steps, lr=args.lr)
    ner = pipeline("ner", model=model, tokenizer=tok, device="cpu", aggregation_strategy="first")
    found = {}
    for sentence, _ in DATA:
        found[sentence] = [(e["entity_group"], sentence[e["start"]:e["end"]]) for e in ner(sentence)]
        print(f"  {sentence!r}: {found[sentence]}")
    return {"losses": losses, "entities": found}


if __name__ == "__main__":
    main()
