"""Verbs that train or score models: quickstart, pretrain, finetune, eval, predict."""
from __future__ import annotations

import json

from bertkit.apps.quickstart import run_quickstart
from bertkit.cli.common import (UserError, add_backend_options, add_device_option, add_max_seq_length_option,
                                add_model_option, backend_options, check_device, check_model_path, emit, existing_files,
                                metric_lines, refuse_file_as_text)
from bertkit.cli.options import add_options, settings_from_args
from bertkit.data.named import EVAL_SPLITS, open_split
from bertkit.tasks import describe_tasks
from bertkit.training.finetune import FinetuneSettings, evaluate_file, predict_with_task, run_finetune
from bertkit.training.pretrain import PretrainSettings, run_pretraining

EPILOG = {
    "quickstart": "example: bertkit quickstart --out runs/quickstart",
    "pretrain": ("examples:\n  bertkit pretrain corpus.txt --size mini --steps 2000 --out runs/mini\n"
                 "  bertkit pretrain reviews.txt --one-doc-per-line --keep-accents --out runs/ko   (Korean)\n"
                 "  bertkit pretrain domain.txt --from bert-base-uncased --steps 1000 --out runs/domain\n"
                 "  bertkit pretrain --dataset wikitext:wikitext-103-raw-v1 --out runs/wiki   (a data set by name)\n"
                 "  bertkit pretrain wiki.txt.gz --report-to tensorboard --out runs/wiki   (then tensorboard --logdir "
                 "runs/wiki/run/tb)\n"
                 "  torchrun --nproc_per_node 4 -m bertkit.cli pretrain corpus.txt --out runs/ddp   (several GPUs)"),
    "finetune": ("examples:\n  bertkit finetune --task sst2 --train train.tsv --out runs/sst2   (from minilm)\n"
                 "  bertkit finetune --task nsmc --model klue/bert-base --train ratings_train.txt --out runs/nsmc\n"
                 "  bertkit finetune --task sst2 --dataset glue:sst2 --out runs/sst2   (train split; validation to "
                 "evaluate)\n"
                 "  bertkit finetune --task sst2 --train train.parquet --out runs/sst2   (.tsv .csv .json .jsonl "
                 ".parquet, also .gz .bz2 .xz .zst)\n"
                 "  bertkit finetune --task mnli --train MNLI/train.tsv --out runs/mnli   (kornli: KorNLI's tsv)\n"
                 "  bertkit finetune --task tagging --tag-column 1 --train conll2003/train.txt --out runs/pos   "
                 "(part-of-speech tags of the original 4-column CoNLL-2003 file)\n"
                 "  bertkit finetune --task classification --text-column Q --label-column label "
                 "--label-names 0=daily,1=breakup,2=love --model klue/bert-base --train ChatbotData.csv "
                 "--out runs/intent   (Korean chatbot intents; the same as --task chatbot_intent)\n"
                 "your own data: --task classification (or pair-classification, regression, tagging) with "
                 "--text-column/--pair-column/--label-column naming the columns; the labels come from the "
                 "training file, --label-names gives them names.\n"
                 "tasks:\n" + "\n".join(f"  {name:<20} {text}" for name, text in describe_tasks().items())),
    "eval": ("examples:\n  bertkit eval --model runs/sst2/best --data held_out.tsv\n"
             "  bertkit eval --model runs/sst2/best --dataset glue:sst2   (its validation split)\n"
             "output: a table of the task's scores (metric, value); --json prints them as a JSON object"),
    "predict": ('examples:\n  bertkit predict --model runs/sst2/best "a gorgeous, witty film" "a dull mess"\n'
                "  bertkit predict --model runs/sst2/best --file reviews.tsv\n"
                "output: one row per input, numbered by its line in the file (the header counted); a file "
                "with labels shows them as gold (✓/✗); --json prints JSON Lines"),
}


def cmd_quickstart(args) -> None:
    run_quickstart(out_dir=args.out, minutes=args.minutes, seed=args.seed, steps=args.steps)


def cmd_pretrain(args) -> None:
    check_device(args)
    settings = settings_from_args(PretrainSettings, args,
                                  files=[str(p) for p in existing_files(args.files)] if args.files else [],
                                  from_checkpoint=check_model_path(args.from_checkpoint) if args.from_checkpoint
                                  else None)
    result = run_pretraining(settings)
    if args.json:
        print(json.dumps(result, indent=2))


def cmd_finetune(args) -> None:
    check_device(args)
    settings = settings_from_args(FinetuneSettings, args, model=check_model_path(args.model))
    result = run_finetune(settings)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))


def eval_data(args):
    """What `bertkit eval` scores: the --data file, or a split of --dataset (default: validation, else test)."""
    if bool(args.data) == bool(args.dataset):
        raise UserError("bertkit eval needs the data once: --data FILE or --dataset NAME[:CONFIG]")
    if args.data:
        return args.data
    split = open_split(args.dataset, args.dataset_split, fallbacks=EVAL_SPLITS)
    if split is None:
        raise UserError(f"--dataset {args.dataset} has none of the splits {', '.join(EVAL_SPLITS)}: choose one with "
                        "--dataset-split")
    return split


def cmd_eval(args) -> None:
    check_device(args)
    data = eval_data(args)
    result = evaluate_file(check_model_path(args.model), data, args.task, args.max_seq_length, args.device)
    emit(args, result, "\n".join(metric_lines(result)))


def cmd_predict(args) -> None:
    check_device(args)
    refuse_file_as_text(args.inputs, "predict")
    task, rows = predict_with_task(check_model_path(args.model), args.inputs, args.file, args.device,
                                   **backend_options(args))
    if args.json:                                     # JSON Lines: one prediction per input
        print("\n".join(json.dumps(row, ensure_ascii=False) for row in rows))
    else:
        print("\n".join(task.format_lines(rows)))


def register(verb) -> None:
    p = verb("quickstart", cmd_quickstart, "Train a vocab and a small BERT on Python's own documentation, then "
             "try it (≤10 min on 2 cores).", EPILOG["quickstart"])
    p.add_argument("--out", default="runs/quickstart", help="output folder (default: runs/quickstart)")
    p.add_argument("--minutes", type=float, default=6.0, help="time budget for pretraining: the learning rate warms "
                   "up and decays over it (default: 6.0)")
    p.add_argument("--steps", type=int, default=None, help="train this many steps instead (reproducible)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    p = verb("pretrain", cmd_pretrain, "Pretrain BERT (masked LM + next sentence) on raw text files.",
             EPILOG["pretrain"])
    add_options(p, PretrainSettings)

    p = verb("finetune", cmd_finetune, "Fine-tune a pretrained model on a labelled data set.", EPILOG["finetune"])
    add_options(p, FinetuneSettings)

    p = verb("eval", cmd_eval, "Score a fine-tuned model on a labelled file.", EPILOG["eval"])
    add_model_option(p, required=True, help="a fine-tuned model folder (the best/ folder of `bertkit finetune`)")
    p.add_argument("--data", default=None, help="a labelled file in the task's format (.tsv, .csv, .json, .jsonl, "
                   ".parquet; also compressed: .gz, .bz2, .xz, .zst)")
    p.add_argument("--dataset", default=None, metavar="NAME[:CONFIG]", help="instead of --data: a data set by name "
                   "(glue:sst2) through the datasets library, or a local folder")
    p.add_argument("--dataset-split", default=None, help="--dataset: the split to score (default: validation, else "
                   "test)")
    p.add_argument("--task", default=None, help="default: the task saved with the model (task.json)")
    add_max_seq_length_option(p)
    add_device_option(p)

    p = verb("predict", cmd_predict, "Run a fine-tuned model on texts or a file.", EPILOG["predict"])
    p.add_argument("inputs", nargs="*", help="texts (pairs: 'text' 'pair'; QA: 'question' 'context')")
    add_model_option(p, required=True, help="a fine-tuned model folder (the best/ folder of `bertkit finetune`)")
    p.add_argument("--file", default=None, help="a file instead of texts: plain text (one text per line, no "
                   "header), or a .tsv/.csv/.json/.jsonl/.parquet with the columns the model was fine-tuned on (also "
                   "compressed: .gz .bz2 .xz .zst)")
    add_device_option(p)
    add_backend_options(p)

