"""Token tagging (NER): one tag per *word*, while BERT sees word pieces.

Alignment, word → pieces (as in the BERT paper, section 4.3):

    words   EU        rejects      German   call
    pieces  [CLS] eu  rejects   ge ##rman   call  [SEP]
    labels  -100  B-ORG O       B-MISC -100 O     -100

Only the first piece of each word carries the word's tag; the other pieces and the
special tokens get IGNORE_INDEX (-100), which the loss ignores.  Back from pieces to
words, a word's tag is the prediction at its first piece (`word_starts` in each feature).

Truncation: words whose first piece does not fit in `max_seq_length` are counted in the
encode report, predicted "O" and still scored — so a too-small `max_seq_length` costs
recall visibly instead of silently shrinking the test set.

Tag sets: IOB2 entity tags (B-PER, I-PER, O) are scored by entity F1; any other tag set,
such as part-of-speech tags (NNP, VBZ, DT ... in column 1 of CoNLL-2003), by token
accuracy (`main_metric` says which):

    bertkit finetune --task tagging --tag-column 1 --train conll2003/train.txt --out runs/pos
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from bertkit.common.defaults import IGNORE_INDEX, MAX_SEQ_LENGTH
from bertkit.common.errors import InputError
from bertkit.data.named import DatasetSplit
from bertkit.text.names import renamed

from . import metrics as M
from .base import (FeatureList, PredictionList, Task, collate_inputs, number_header, pad_to_longest, place,
                   place_with, real_lengths, source_file, to_numpy)
from .readers import ExampleList, ReadReport, TaggedExample, read_conll, read_kmou
from .records import read_tagged_dataset


CONLL2003_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
KO_NER_LABELS = ["O", "B-PS", "I-PS", "B-LC", "I-LC", "B-OG", "I-OG", "B-DT", "I-DT", "B-TI", "I-TI"]


class TaggingTask(Task):
    """Word-level tagging read from CoNLL columns (`format="conll"`) or KMOU blocks (`format="kmou"`)."""

    family = "tagging"
    model_class = "BertForTokenClassification"
    pipeline_tag = "token-classification"

    def __init__(self, name: str = "tagging", labels: Sequence[str] | None = None, *,
                 format: str = "conll", word_column: int = 0, tag_column: int | None = -1,
                 delimiter: str | None = None, label_names=None, pad_token_id: int = 0):
        super().__init__(labels, pad_token_id, label_names)
        if format not in ("conll", "kmou"):
            raise InputError(f"unknown tagging format {format!r}: use 'conll' or 'kmou'")
        self.name = name
        self.format = format
        self.columns = dict(word_column=word_column, tag_column=tag_column, delimiter=delimiter)

    @property
    def is_iob(self) -> bool:
        """True for entity tags (B-X / I-X / O), False for plain tag sets such as POS tags."""
        return self.labels is None or any(t[:2] in ("B-", "I-") for t in self.labels)

    @property
    def main_metric(self) -> str:
        return "f1" if self.is_iob else "token_accuracy"

    # -- reading -----------------------------------------------------------------------
    def read(self, path, **column_options) -> ExampleList:
        if isinstance(path, DatasetSplit):          # --dataset: words in 'tokens', tags in 'ner_tags' (or 'tags')
            examples = read_tagged_dataset(path, tags_column=next((c for c in ("ner_tags", "tags")
                                                                   if c in path.columns), None))
        elif self.format == "kmou":
            examples = read_kmou(path)
        else:
            examples = read_conll(path, **{**self.columns, **column_options})
        self._note_unknown_tags(examples, examples.report)
        return examples

    def examples_from_texts(self, texts: Sequence[str]) -> ExampleList:
        """Unlabelled examples from raw sentences, words split on whitespace (for `predict`)."""
        return ExampleList(TaggedExample(t.split(), None, "", t) for t in texts)

    def examples_from_inputs(self, inputs: Sequence[str]) -> ExampleList:
        """Command-line strings: one sentence each, words split on whitespace."""
        return self.examples_from_texts(inputs)

    def texts_of(self, examples):
        for ex in examples:
            yield " ".join(ex.words)

    def format_lines(self, rows: Sequence[dict]) -> list[str]:
        """Each sentence as ``word/TAG`` (O words bare), with how many tags agree with the file's gold."""
        lines = [f"{number_header(rows):>5}  words/tags (O words bare)"] if rows else []
        for n, row in enumerate(rows, 1):
            text = " ".join(w if t == "O" else f"{w}/{t}" for w, t in zip(row["words"], row["tags"]))
            gold = row.get("gold")
            if gold is not None:
                agree = sum(p == g for p, g in zip(row["tags"], gold))
                text += f"   (gold: {agree}/{len(gold)} tags agree)"
            lines.append(f"{row.get('line', n):>5}  {text}")
        return lines

    def fit_labels(self, examples) -> list[str]:
        """Label set from training tags when the task has none.

        Entity tags: O, then B-/I- of each type (sorted); other tags (POS) sorted after them.
        """
        if self.labels is None:
            types, others, has_o = set(), set(), False
            for ex in examples:
                for tag in ex.tags or []:
                    if tag[:2] in ("B-", "I-"):
                        types.add(tag[2:])
                    elif tag == "O":
                        has_o = True
                    else:
                        others.add(tag)
            if not types and not others:
                raise InputError(f"task {self.name!r}: the training data has no tags other than O")
            self.labels = (["O"] if types or has_o else []) + [f"{p}-{t}" for t in sorted(types) for p in "BI"] \
                + sorted(others)
        return self.labels

    def _unknown_tags(self, examples) -> list[tuple]:
        """(example, tag) for every tag outside the task's labels."""
        if self.labels is None:
            return []
        known = self.label2id
        return [(ex, tag) for ex in examples for tag in ex.tags or [] if tag not in known]

    def _note_unknown_tags(self, examples, report: ReadReport) -> int:
        unknown = self._unknown_tags(examples)
        for ex, tag in unknown:
            report.note(f"tags outside the labels of task {self.name!r} (scored, ignored by the loss; lines are "
                        "sentence starts)", place_with(ex, tag),
                        one=f"tag outside the labels of task {self.name!r} (scored, ignored by the loss; the line is "
                            "its sentence's start)")
        return len(unknown)

    def check_training_labels(self, examples) -> None:
        """Refuse training tags the task does not have: the lines, the tags, the way out."""
        unknown = self._unknown_tags(examples)
        if not unknown:
            return
        report = ReadReport(file=source_file(examples))
        for ex, tag in unknown:
            report.note("x", place_with(ex, tag))
        tags = sorted({tag for _, tag in unknown})
        raise InputError(f"task {self.name!r}: {len(unknown)} training tag(s) are outside its labels "
                         f"{self.labels}: sentences at {report.places('x', len(unknown))} (tags: "
                         f"{', '.join(map(repr, tags[:10]))}). Fix the data, or use --task tagging (with "
                         "--tag-column N), whose labels come from the training data.")

    # -- encoding ----------------------------------------------------------------------
    @renamed(max_length="max_seq_length")
    def encode(self, examples: Sequence[TaggedExample], tokenizer, max_seq_length: int = MAX_SEQ_LENGTH,
               training: bool = False) -> FeatureList:
        """Features {input_ids, token_type_ids, labels, word_starts, example_index}.

        Each distinct word is split into pieces once (one batched tokenizer call).
        (`max_length=` is the old, deprecated name of `max_seq_length`.)
        """
        n, report = self.start_encoding(examples, max_seq_length, training)
        self._note_unknown_tags(examples, report)
        pieces = word_pieces({w for ex in examples for w in ex.words}, tokenizer, report)
        budget = n - 2                                          # room left by [CLS] and [SEP]
        features = FeatureList(report=report)
        for i, ex in enumerate(examples):
            feature = self._align(ex, pieces, budget, tokenizer.cls_token_id, tokenizer.sep_token_id)
            cut = len(ex.words) - len(feature["word_starts"])
            if cut:
                report.note(f"words beyond max_seq_length={n} word pieces were cut (predicted O, still scored)",
                            place(ex), count=cut, one=f"word beyond max_seq_length={n} word pieces was cut "
                            "(predicted O, still scored)", hint="raise --max-seq-length to keep more (lines are "
                            "sentence starts)")
            feature["example_index"] = i
            features.append(feature)
        report.examples = len(features)
        return features

    def _align(self, ex: TaggedExample, pieces: dict, budget: int, cls_id: int, sep_id: int) -> dict:
        ids, labels, starts = [cls_id], [IGNORE_INDEX], []
        tag_ids = self.label2id
        for w, word in enumerate(ex.words):
            room = budget - (len(ids) - 1)
            if room <= 0:
                break
            word_ids = pieces[word][:room]
            starts.append(len(ids))
            ids.extend(word_ids)
            first = IGNORE_INDEX if ex.tags is None else tag_ids.get(ex.tags[w], IGNORE_INDEX)
            labels.extend([first] + [IGNORE_INDEX] * (len(word_ids) - 1))
        ids.append(sep_id)
        labels.append(IGNORE_INDEX)
        return {"input_ids": ids, "token_type_ids": [0] * len(ids),
                "labels": labels if ex.tags is not None else None, "word_starts": starts}

    def collate(self, features: Sequence[dict]) -> dict:
        batch = collate_inputs(features, self.pad_token_id)
        if all(f["labels"] is not None for f in features):
            batch["labels"] = pad_to_longest([f["labels"] for f in features], IGNORE_INDEX)   # [B, T]
        return batch

    # -- prediction and scoring ----------------------------------------------------------
    def gather(self, output, batch) -> list[np.ndarray]:
        """Model output of one batch → one [T_i, C] logits array per feature (padding removed)."""
        logits = to_numpy(output.logits)                        # [B, T, C]
        return [logits[b, :n] for b, n in enumerate(real_lengths(batch))]

    def predict(self, outputs: Sequence[np.ndarray], features, examples) -> PredictionList:
        """{"tags": one tag per word, "entities": [{type, start, end, text}]} per example."""
        report = ReadReport(source=f"{self.name} predict")
        predictions = PredictionList([None] * len(examples), report)
        for logits, feature in zip(outputs, features):
            ex = examples[feature["example_index"]]
            starts = feature["word_starts"]
            tags = [self.labels[k] for k in logits[starts].argmax(-1)] if starts else []
            missing = len(ex.words) - len(tags)
            if missing:
                report.note("words beyond max_seq_length predicted O", place(ex), count=missing,
                            one="word beyond max_seq_length predicted O")
            tags += ["O"] * missing
            predictions[feature["example_index"]] = ({"tags": tags, "entities": entities_of(ex.words, tags)}
                                                     if self.is_iob else {"tags": tags})
        report.examples = len(predictions)
        if any(p is None for p in predictions):
            raise InputError(f"task {self.name!r}: some examples have no feature; pass the features made "
                             "by task.encode(examples, ...) for exactly these examples.")
        return predictions

    def metrics(self, predictions: Sequence[dict], examples: Sequence[TaggedExample]) -> dict:
        """Entity-level precision/recall/F1 (seqeval's default reading) and token accuracy.

        A tag set without B-/I- tags (POS) is scored by token accuracy only.
        """
        if any(ex.tags is None for ex in examples):
            raise InputError(f"task {self.name!r}: unlabelled examples cannot be scored")
        gold = [ex.tags for ex in examples]
        pred = [p["tags"] for p in predictions]
        out = M.entity_scores(pred, gold) if self.is_iob else {}
        flat_pred = [t for s in pred for t in s]
        flat_gold = [t for s in gold for t in s]
        out["token_accuracy"] = M.accuracy(flat_pred, flat_gold)
        out["num_examples"] = len(gold)
        return out

    def format_prediction(self, prediction: dict, example: TaggedExample) -> dict:
        """One record for `bertkit predict`: line, words, predicted tags (+ entities), gold tags."""
        record = {"line": example.line} if example.line is not None else {}
        record.update(words=example.words, **prediction)
        if example.tags is not None:
            record["gold"] = example.tags
        return record


def word_pieces(words, tokenizer, report: ReadReport | None = None) -> dict[str, list[int]]:
    """Each distinct word → its word-piece ids; a word with no pieces (e.g. only control chars) → [UNK]."""
    words = sorted(words)
    ids = tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
    pieces = {}
    for word, word_ids in zip(words, ids):
        if not word_ids:
            word_ids = [tokenizer.unk_token_id]
            if report is not None:
                report.note("words with no word pieces (encoded as [UNK])", repr(word),
                            one="word with no word pieces (encoded as [UNK])")
        pieces[word] = list(word_ids)
    return pieces


def entities_of(words: Sequence[str], tags: Sequence[str]) -> list[dict]:
    """Entities of one sentence as {type, start, end (inclusive word index), text}."""
    return [{"type": t, "start": s, "end": e, "text": " ".join(words[s:e + 1])}
            for t, s, e in M.get_entities(list(tags))]
