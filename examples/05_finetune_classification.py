"""Lecture notes, fine-tuning figure 1: single-text classification (sentiment).

    [CLS] I love Paris [SEP] → BERT → R_[CLS] (pooled) → classifier (FFN + softmax) → positive / negative

The notes' toy data set (1 = positive, 0 = negative).  The whole model (BERT and the new
classifier) is trained; a few steps are enough to fit these six sentences.

    python examples/05_finetune_classification.py [--model DIR] [--steps 30]
"""
from __future__ import annotations

import torch

from _common import finetune_args, model_dir, train_steps, with_new_head

DATA = [("I love Paris", 1), ("Sam hated the movie", 0), ("It was a great day", 1),
        ("The song is not good", 0), ("We loved the game", 1), ("What a boring, awful film", 0)]


def main(argv=None) -> dict:
    args = finetune_args(__doc__, argv, steps=30, lr=1e-4)
    from bertkit import BertForSequenceClassification, BertTokenizer, pipeline

    path = model_dir(args)
    tok = BertTokenizer.from_pretrained(path)
    model = with_new_head(BertForSequenceClassification, path, num_labels=2,
                          id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    batch = dict(tok([t for t, _ in DATA], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([y for _, y in DATA])                      # [B]
    print(f"input_ids {tuple(batch['input_ids'].shape)} → pooled [CLS] [B,{model.config.hidden_size}] "
          f"→ logits [B,2]")
    losses = train_steps(model, [batch], args.steps, lr=args.lr)
    clf = pipeline("text-classification", model=model, tokenizer=tok, device="cpu")
    predictions = clf([t for t, _ in DATA])
    for (text, y), pred in zip(DATA, predictions):
        print(f"  {text!r:32} gold={'positive' if y else 'negative':9} predicted={pred['label']} ({pred['score']:.2f})")
    accuracy = sum(pred["label"] == ("positive" if y else "negative") for (_, y), pred in zip(DATA, predictions)) / len(DATA)
    print(f"training accuracy: {accuracy:.2f}")
    return {"losses": losses, "accuracy": accuracy}


if __name__ == "__main__":
    main()
