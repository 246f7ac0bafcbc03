"""Verbs that use a model: fill-mask, nsp, embed, similarity, classify, tag, answer."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bertkit.cli.common import (add_backend_options, add_device_option, add_max_seq_length_option, add_model_option,
                                backend_options, check_device, check_model_path, emit, hub_options, refuse_file_as_text)
from bertkit.common.defaults import DOC_STRIDE, MAX_ANSWER_LENGTH, QA_MAX_SEQ_LENGTH
from bertkit.common.errors import InputError, NotFoundError
from bertkit.pipelines import pipeline
from bertkit.tasks import get_task, read_file_to_classify

EPILOG = {
    "fill-mask": ('examples:\n  bertkit fill-mask "Love is like the [MASK]." --model bert-base-uncased\n'
                  '  bertkit fill-mask "The [MASK] statement raises an exception." --model runs/quickstart/bert/model'),
    "nsp": 'example: bertkit nsp "I am going outside" "I will be back after 6" --model bert-base-uncased',
    "embed": ('example: bertkit embed "I love Paris" "Paris is lovely" --pooling mean --normalize\n'
              '  bertkit embed "I love Paris" --pooling mean --backend onnx      (ONNX Runtime, CPU)'),
    "similarity": 'example: bertkit similarity "A man is eating food." "A man eats a meal." "A plane takes off."',
    "classify": ('examples:\n  bertkit classify "a gorgeous, witty film" --model runs/sst2/best --top-k 2\n'
                 "  bertkit classify --file reviews.txt --model runs/sst2/best   (one text per line; a .tsv/.csv "
                 "file: the columns the model was fine-tuned on)\n"
                 "texts are classified as given: a single argument that names an existing file is an error "
                 "that says to use --file\n"
                 "output: the table of `bertkit predict` (#, label name, probability, text; --top-k adds the next "
                 "labels); --json prints the pipeline's result (a list of {label, score} per text)"),
    "tag": 'example: bertkit tag "Jeremy lives in Paris" --model runs/conll/best',
    "answer": 'example: bertkit answer "How many can live on an island?" --context-file passage.txt --model DIR',
}
AGGREGATION_HELP = ("how word pieces become entities: first = a word takes its first piece's label and whole "
                    "words are grouped (default); max / average = the most confident / best average label per "
                    "word; simple = neighbouring pieces of one type are grouped (a word can be cut); none = one "
                    "row per piece")


def make_pipeline(task: str, args: argparse.Namespace, **options):
    """The pipeline for `task` on --model (its hub options, --device, --backend, --quantize applied)."""
    check_device(args)
    return pipeline(task, model=check_model_path(args.model), device=getattr(args, "device", None),
                    **hub_options(args), **backend_options(args), **options)


def cmd_fill_mask(args) -> None:
    results = make_pipeline("fill-mask", args)(args.text, top_k=args.top_k, targets=args.targets)
    groups = results if results and isinstance(results[0], list) else [results]
    lines = []
    for n, group in enumerate(groups, 1):
        if len(groups) > 1:
            lines.append(f"[MASK] #{n}")
        lines += [f"  {r['score']:.4f}  {r['token_str']:<15} {r['sequence']}" for r in group]
    emit(args, results, "\n".join(lines))


def cmd_nsp(args) -> None:
    result = make_pipeline("next-sentence", args)((args.first, args.second))
    emit(args, result, f"{result['label']} (P(IsNext) = {result['is_next_probability']:.4f})")


def cmd_embed(args) -> None:
    pipe = make_pipeline("feature-extraction", args)
    layer = "all" if args.layer == "all" else int(args.layer)
    out = pipe(args.texts, layer=layer, pooling=args.pooling, normalize=args.normalize, return_tokens=True)
    rows = [{"text": t, "tokens": o["tokens"], "shape": list(o["vectors"].shape),
             "vectors": o["vectors"].tolist()} for t, o in zip(args.texts, out)]
    lines = [f"{row['text']!r}: tokens={row['tokens']} vectors{tuple(o['vectors'].shape)} "
             f"first values={[round(x, 4) for x in o['vectors'].flatten()[:4].tolist()]}" for row, o in zip(rows, out)]
    if args.pooling and len(out) > 1:
        lines += similarity_table(args.texts, [o["vectors"] for o in out])
    emit(args, rows, "\n".join(lines))


def similarity_table(texts: list[str], vectors: list[torch.Tensor]) -> list[str]:
    mat = torch.stack([torch.nn.functional.normalize(v.flatten(), dim=0) for v in vectors])   # [n, H]
    sims = mat @ mat.T                                                                        # [n, n]
    return ["cosine similarities:"] + [f"  {t[:30]:<30} " + " ".join(f"{s:6.3f}" for s in sims[i].tolist())
                                       for i, t in enumerate(texts)]


def cmd_similarity(args) -> None:
    if not args.candidates:
        raise InputError("give a source sentence and at least one candidate sentence")
    scores = make_pipeline("sentence-similarity", args)(args.source, args.candidates)
    rows = sorted(zip(args.candidates, scores), key=lambda r: -r[1])
    emit(args, [{"text": t, "score": s} for t, s in rows], "\n".join(f"{s:7.3f}  {t}" for t, s in rows))


def cmd_classify(args) -> None:
    """The pipeline's labels per text; people get the table of `bertkit predict` (the task's `format_lines`)."""
    refuse_file_as_text(args.texts, "classify")
    pipe = make_pipeline("text-classification", args, max_length=args.max_seq_length)
    if args.file:
        if args.texts:
            raise InputError("give texts or --file FILE, not both")
        examples = read_file_to_classify(args.file, pipe.checkpoint.task if pipe.checkpoint else None)
        texts, lines = [ex.text for ex in examples], [ex.line for ex in examples]
        pairs = [ex.text_pair for ex in examples] if any(ex.text_pair is not None for ex in examples) else None
    elif args.texts:
        texts, lines = args.texts, None
        pairs = [args.pair] * len(texts) if args.pair else None
    else:
        raise InputError("nothing to classify: give texts, or --file FILE (one text per line)")
    results = pipe(texts, text_pair=pairs, top_k=args.top_k)
    rows = classified_rows(texts, pairs, results)
    for row, line in zip(rows, lines or []):
        row["line"] = line
    emit(args, results, "\n".join(get_task("classification").format_lines(rows)))


def classified_rows(texts: list[str], pairs: list[str] | None, results: list) -> list[dict]:
    """Pipeline results → the records `bertkit predict` prints: text(s), label, probability, others."""
    rows = []
    for i, (text, labels) in enumerate(zip(texts, results)):
        labels = labels if isinstance(labels, list) else [labels]
        row = {"text": text, **({"text_pair": pairs[i]} if pairs else {}),
               "label": labels[0]["label"], "probability": labels[0]["score"]}
        if len(labels) > 1:
            row["others"] = labels[1:]
        rows.append(row)
    return rows


def cmd_tag(args) -> None:
    results = make_pipeline("token-classification", args, max_length=args.max_seq_length)(
        args.texts, aggregation_strategy=args.aggregation)
    lines = []
    for text, entities in zip(args.texts, results):
        lines.append(text)
        for e in entities:
            label = e.get("entity_group", e.get("entity"))
            lines.append(f"  {label:<8} {e['score']:.3f}  {text[e['start']:e['end']]!r} [{e['start']}:{e['end']}]")
    emit(args, results, "\n".join(lines))


def cmd_answer(args) -> None:
    if args.context_file:
        if not Path(args.context_file).is_file():
            raise NotFoundError(f"context file not found: {args.context_file}")
        context = Path(args.context_file).read_text(encoding="utf-8")
    elif args.context:
        context = args.context
    else:
        raise InputError("pass --context TEXT or --context-file FILE: the passage that holds the answer")
    answers = make_pipeline("question-answering", args)(
        question=args.question, context=context, top_k=args.top_k, max_seq_length=args.max_seq_length,
        doc_stride=args.doc_stride, max_answer_length=args.max_answer_length,
        handle_impossible_answer=args.handle_impossible_answer, null_score_diff_threshold=args.null_score_diff_threshold)
    answers = answers if isinstance(answers, list) else [answers]
    emit(args, answers, "\n".join(f"{a['score']:.3f}  {a['answer']!r} [{a['start']}:{a['end']}]" for a in answers))


def register(verb) -> None:
    p = verb("fill-mask", cmd_fill_mask, "Predict the words hidden behind [MASK].", EPILOG["fill-mask"])
    p.add_argument("text")
    add_model_option(p, required=True, help="a model with a masked-LM head: a folder, a Hub name "
                                            "(bert-base-uncased) or a Google TF release folder")
    p.add_argument("--top-k", type=int, default=5, help="answers per [MASK] (default: 5)")
    p.add_argument("--targets", nargs="*", default=None, help="score only these words")
    add_device_option(p)

    p = verb("nsp", cmd_nsp, "Next-sentence prediction: does the second sentence follow the first?", EPILOG["nsp"])
    p.add_argument("first")
    p.add_argument("second")
    add_model_option(p, required=True, help="a model with a next-sentence head (a folder or a Hub name)")
    add_device_option(p)

    p = verb("embed", cmd_embed, "Token or sentence embeddings from any layer.", EPILOG["embed"])
    p.add_argument("texts", nargs="+")
    add_model_option(p)
    p.add_argument("--layer", default="-1", help="layer index (0 = embeddings, -1 = last), or 'all' (default: -1)")
    p.add_argument("--pooling", choices=["cls", "mean", "max"], default=None, help="one vector per text")
    p.add_argument("--normalize", action="store_true", help="unit-length vectors")
    add_device_option(p)
    add_backend_options(p)

    p = verb("similarity", cmd_similarity, "Cosine similarity of one sentence with others (mean-pooled BERT).",
             EPILOG["similarity"])
    p.add_argument("source")
    p.add_argument("candidates", nargs="*")
    add_model_option(p)
    add_device_option(p)

    p = verb("classify", cmd_classify, "Classify texts (or text pairs) with a fine-tuned classifier.",
             EPILOG["classify"])
    p.add_argument("texts", nargs="*", help="texts to classify (or --file)")
    add_model_option(p, required=True, help="a fine-tuned classifier (the best/ folder of `bertkit finetune`)")
    p.add_argument("--file", default=None, help="classify a file instead: plain text, one text per line; or a "
                   ".tsv/.csv/.jsonl with the columns of the model's task (task.json; else 'text' [+ 'text_pair'])")
    p.add_argument("--pair", default=None, help="second segment for every text")
    p.add_argument("--top-k", type=int, default=1, help="labels per text (default: 1)")
    add_max_seq_length_option(p, unit="text (or pair)")
    add_device_option(p)
    add_backend_options(p)

    p = verb("tag", cmd_tag, "Tag entities (NER) or words (POS) with a fine-tuned token classifier.", EPILOG["tag"])
    p.add_argument("texts", nargs="+")
    add_model_option(p, required=True, help="a fine-tuned tagger (the best/ folder of `bertkit finetune`)")
    p.add_argument("--aggregation", default="first", choices=["first", "max", "average", "simple", "none"],
                   help=AGGREGATION_HELP)
    add_max_seq_length_option(p, unit="sentence")
    add_device_option(p)
    add_backend_options(p)
    register_answer(verb)


def register_answer(verb) -> None:
    p = verb("answer", cmd_answer, "Answer a question from a passage with a fine-tuned QA model.", EPILOG["answer"])
    p.add_argument("question")
    p.add_argument("--context", default=None, help="the passage")
    p.add_argument("--context-file", default=None, help="a file holding the passage")
    add_model_option(p, required=True, help="a fine-tuned QA model (the best/ folder of `bertkit finetune`)")
    p.add_argument("--top-k", type=int, default=1, help="answers (default: 1)")
    add_max_seq_length_option(p, unit="window", when_unset=f"the length saved with the model (task.json), "
                                                         f"else {QA_MAX_SEQ_LENGTH}")
    p.add_argument("--doc-stride", type=int, default=DOC_STRIDE,
                   help=f"tokens between window starts of a long passage (default: {DOC_STRIDE})")
    p.add_argument("--max-answer-length", type=int, default=MAX_ANSWER_LENGTH,
                   help=f"longest answer in tokens (default: {MAX_ANSWER_LENGTH})")
    p.add_argument("--handle-impossible-answer", action=argparse.BooleanOptionalAction, default=None,
                   help="answer '' when the passage holds no answer (the null score wins); default: as the "
                        "model was fine-tuned (task.json: yes for squad2 models, as `bertkit predict`)")
    p.add_argument("--null-score-diff-threshold", type=float, default=None,
                   help="answer '' when null score - best span score > this (default: the threshold that "
                        "`bertkit finetune --task squad2` tuned and saved in the model's task.json, else 0.0)")
    add_device_option(p)
    add_backend_options(p)
