"""Lecture notes, fine-tuning figure 2: sentence pairs — NLI classification and similarity regression.

    [CLS] He is playing [SEP] He is sleeping [SEP] → R_[CLS] → classifier → entailment / contradiction / neutral

Segment ids tell BERT which sentence a token belongs to (0 = premise, 1 = hypothesis).
With one output (num_labels=1) the same head is a regression head (STS-B: similarity 0..5, MSE loss).

    python examples/06_finetune_pair.py [--model DIR] [--steps 30]
"""
from __future__ import annotations

import torch

from _common import finetune_args, model_dir, train_steps, with_new_head

NLI = [("He is playing", "He is sleeping", "contradiction"),
       ("A soccer game with multiple males playing", "Some men are playing a sport", "entailment"),
       ("An older and younger man smiling", "Two men are smiling at dogs playing on the floor", "neutral"),
       ("A woman is reading a book", "A person reads", "entailment"),
       ("The kids are swimming", "The kids are asleep in bed", "contradiction")]
LABELS = ["entailment", "contradiction", "neutral"]
STS = [("A man is playing a guitar", "A man plays the guitar", 4.8),
       ("A woman is slicing an onion", "A man is driving a car", 0.2),
       ("A dog runs in the park", "A dog is running on grass", 3.9)]


def main(argv=None) -> dict:
    args = finetune_args(__doc__, argv, steps=30, lr=1e-4)
    from bertkit import BertForSequenceClassification, BertTokenizer, pipeline

    path = model_dir(args)
    tok = BertTokenizer.from_pretrained(path)
    enc = tok(NLI[0][0], text_pair=NLI[0][1])
    print("tokens:        ", tok.convert_ids_to_tokens(enc["input_ids"]))
    print("token_type_ids:", enc["token_type_ids"])
    nli = with_new_head(BertForSequenceClassification, path, num_labels=3, id2label=dict(enumerate(LABELS)),
                        label2id={l: i for i, l in enumerate(LABELS)})
    sts = with_new_head(BertForSequenceClassification, path, num_labels=1, problem_type="regression")
    print("NLI (3 classes, cross-entropy):")
    batch = dict(tok([a for a, _, _ in NLI], text_pair=[b for _, b, _ in NLI], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([LABELS.index(y) for _, _, y in NLI])
    nli_losses = train_steps(nli, [batch], args.steps, lr=args.lr)
    clf = pipeline("text-classification", model=nli, tokenizer=tok, device="cpu")
    predicted = [clf({"text": a, "text_pair": b})["label"] for a, b, _ in NLI]
    for (a, b, y), pred in zip(NLI, predicted):
        print(f"  {a!r} / {b!r}: gold={y} predicted={pred}")
    print("STS-B-style regression (1 output, MSE):")
    batch = dict(tok([a for a, _, _ in STS], text_pair=[b for _, b, _ in STS], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([s for _, _, s in STS])
    sts_losses = train_steps(sts, [batch], args.steps, lr=args.lr)
    reg = pipeline("text-classification", model=sts, tokenizer=tok, device="cpu")
    scores = [reg({"text": a, "text_pair": b})["score"] for a, b, _ in STS]
    for (a, b, s), got in zip(STS, scores):
        print(f"  {a!r} / {b!r}: gold={s} predicted={got:.2f}")
    return {"nli_losses": nli_losses, "nli_predicted": predicted, "sts_losses": sts_losses, "sts_scores": scores,
            "token_type_ids": enc["token_type_ids"]}


if __name__ == "__main__":
    main()
