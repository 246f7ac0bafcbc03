"""Lecture notes: text tagging — part-of-speech tags for "John Smith 's car is new".

    words   John  Smith  's        car  is  new          (Penn Treebank II tags, as the notes give them:)
    tags    NNP   NNP    POS       NN   VB  JJ           (Penn itself tags "is" VBZ)
    pieces  john  smith  ' s       car  is  new          (bert-base-uncased = MiniLM's vocab)
    labels  NNP   NNP    POS -100  NN   VB  JJ           (-100: ignored by the loss)

Every token's vector R_i goes through the same classifier; a word cut into several pieces
gets its tag on the first piece only (`bertkit.tasks.TaggingTask`), and reading the tags
back takes the first piece of each word.  A few steps fit the notes' sentence and a few
more like it; the token-classification pipeline then tags raw text.

    python examples/13_pos_tagging.py [--model DIR] [--steps 40]
"""
from __future__ import annotations

import torch

from _common import finetune_args, model_dir, train_steps, with_new_head

TAGS = ["NNP", "POS", "NN", "VB", "JJ", "DT"]
NOTES = (["John", "Smith", "'s", "car", "is", "new"], ["NNP", "NNP", "POS", "NN", "VB", "JJ"])
MORE = [(["Mary", "Jones", "'s", "house", "is", "old"], ["NNP", "NNP", "POS", "NN", "VB", "JJ"]),
        (["The", "car", "is", "red"], ["DT", "NN", "VB", "JJ"]),
        (["Paris", "is", "big"], ["NNP", "VB", "JJ"])]


def main(argv=None) -> dict:
    args = finetune_args(__doc__, argv, steps=40, lr=2e-4)
    from bertkit import BertForTokenClassification, BertTokenizer, pipeline
    from bertkit.tasks import TaggedExample, TaggingTask

    path = model_dir(args)
    tok = BertTokenizer.from_pretrained(path)
    task = TaggingTask("pos", labels=TAGS)
    examples = [TaggedExample(words, tags, str(i)) for i, (words, tags) in enumerate([NOTES, *MORE])]
    features = task.encode(examples, tok, max_length=32, training=True)
    tokens = tok.convert_ids_to_tokens(features[0]["input_ids"])
    labels = [TAGS[k] if k != -100 else -100 for k in features[0]["labels"]]
    print("word → pieces → labels (first piece carries the tag):")
    for token, label in zip(tokens, labels):
        print(f"  {token:>8}  {label}")
    model = with_new_head(BertForTokenClassification, path, num_labels=len(TAGS),
                          id2label=dict(enumerate(TAGS)), label2id={t: i for i, t in enumerate(TAGS)})
    losses = train_steps(model, [task.collate(features)], args.steps, lr=args.lr)
    predicted = _word_tags(model, task, features[0])
    print(f"  {' '.join(NOTES[0])}\n    notes: {' '.join(NOTES[1])}\n    ours:  {' '.join(predicted)}")
    tagger = pipeline("token-classification", model=model, tokenizer=tok, device="cpu", aggregation_strategy="first")
    piped = [(r["word"], r["entity_group"]) for r in tagger("John Smith's car is new")]
    print(f"  pipeline on the raw text: {piped}")
    return {"tokens": tokens, "labels": labels, "word_starts": features[0]["word_starts"], "losses": losses,
            "predicted": predicted, "pipeline": piped}


@torch.no_grad()
def _word_tags(model, task, feature) -> list[str]:
    """Back to words: the prediction at each word's first piece."""
    batch = task.collate([feature])
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[0]   # [T,C]
    return [TAGS[int(logits[i].argmax())] for i in feature["word_starts"]]


if __name__ == "__main__":
    main()
