"""`bertkit <verb>`: the command line.

Every verb has `--help` with an example.  Errors a user can cause print one
line (`bertkit: error: ...`) and exit with status 2; `--debug` shows the
traceback instead.  `--json` prints machine-readable output where it applies.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bertkit.cli import apps  # noqa
from bertkit.cli.common import UserError

EPILOG = {
    "quickstart": "example: bertkit quickstart --out runs/quickstart",
    "tokenize": 'example: bertkit tokenize "I love Paris" --model DIR',
    "vocab": "example: bertkit vocab corpus.txt --size 8000 --out runs/vocab [--cased] [--morphemes]",
    "pretrain": "example: bertkit pretrain corpus.txt --size mini --steps 2000 --out runs/mini",
    "fill-mask": "example: bertkit fill-mask \"Love is like the [MASK].\" --model runs/mini/model --top-k 5",
    "nsp": 'example: bertkit nsp "I am going outside" "I will be back after 6" --model DIR',
    "embed": 'example: bertkit embed "I love Paris" --model DIR --pooling mean --normalize',
    "finetune": "example: bertkit finetune --task sst2 --model DIR --train train.tsv --out runs/sst2",
    "eval": "example: bertkit eval --model runs/sst2/best --task sst2 --data dev.tsv",
    "predict": 'example: bertkit predict --model runs/sst2/best "a gorgeous, witty film"',
    "bench": "example: bertkit bench inference --threads 2   (runs bench/bench_inference.py of the checkout)",
}


# ----------------------------------------------------------------------------- verbs

def cmd_quickstart(args) -> None:
    from bertkit.apps.quickstart import run_quickstart
    run_quickstart(out_dir=args.out, minutes=args.minutes, seed=args.seed)


def cmd_tokenize(args) -> None:
    tok = _load_tokenizer(args.model)
    if args.json:
        enc = tok(args.text, text_pair=args.pair)
        tokens = tok.convert_ids_to_tokens(enc["input_ids"])
        print(json.dumps({"tokens": tokens, **{k: v for k, v in enc.items()}}, ensure_ascii=False))
    else:
        print(tok.explain(args.text))


def cmd_vocab(args) -> None:
    from bertkit.text.vocab import train_vocab
    files = _existing_files(args.files)
    tok = train_vocab(files, vocab_size=args.size, lowercase=not args.cased,
                      strip_accents=False if args.keep_accents else None,
                      morpheme_splitter="kiwi" if args.morphemes else None, out_dir=args.out)
    print(f"vocab of {tok.vocab_size} tokens written to {args.out} (vocab.txt + tokenizer_config.json)")


def cmd_pretrain(args) -> None:
    from bertkit.training.pretrain import PretrainSettings, run_pretraining
    settings = PretrainSettings(
        files=[str(p) for p in _existing_files(args.files)], out_dir=args.out, size=args.size,
        vocab=args.vocab, vocab_size=args.vocab_size, lowercase=not args.cased,
        strip_accents=False if args.keep_accents else None,
        morphemes=args.morphemes, max_seq_length=args.max_seq_length, steps=args.steps,
        batch_size=args.batch_size, grad_accum=args.grad_accum, learning_rate=args.lr,
        whole_word_mask=args.whole_word_mask, nsp=not args.no_nsp, bf16=args.bf16, seed=args.seed,
        save_every=args.save_every, resume=not args.no_resume, workers=args.workers,
        one_doc_per_line=args.one_doc_per_line)
    result = run_pretraining(settings)
    if args.json:
        print(json.dumps(result, indent=2))


def cmd_fill_mask(args) -> None:
    from bertkit.pipelines import pipeline
    results = pipeline("fill-mask", model=_model_dir(args.model))(args.text, top_k=args.top_k,
                                                                 targets=args.targets)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    groups = results if results and isinstance(results[0], list) else [results]
    for n, group in enumerate(groups, 1):
        if len(groups) > 1:
            print(f"[MASK] #{n}")
        for r in group:
            print(f"  {r['score']:.4f}  {r['token_str']:<15} {r['sequence']}")


def cmd_nsp(args) -> None:
    from bertkit.pipelines import pipeline
    result = pipeline("next-sentence", model=_model_dir(args.model))((args.first, args.second))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['label']} (P(IsNext) = {result['is_next_probability']:.4f})")


def cmd_embed(args) -> None:
    from bertkit.pipelines import pipeline
    pipe = pipeline("feature-extraction", model=_model_dir(args.model))
    layer = "all" if args.layer == "all" else int(args.layer)
    out = pipe(args.texts, layer=layer, pooling=args.pooling, normalize=args.normalize, return_tokens=True)
    rows = [{"text": t, "tokens": o["tokens"], "shape": list(o["vectors"].shape),
             "vectors": o["vectors"].tolist()} for t, o in zip(args.texts, out)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    for row, o in zip(rows, out):
        v = o["vectors"]
        print(f"{row['text']!r}: tokens={row['tokens']} vectors{tuple(v.shape)} "
              f"first values={[round(x, 4) for x in v.flatten()[:4].tolist()]}")
    if args.pooling and len(out) > 1:
        _print_similarities(args.texts, [o["vectors"] for o in out])


def _print_similarities(texts, vectors) -> None:
    import torch
    mat = torch.stack([torch.nn.functional.normalize(v.flatten(), dim=0) for v in vectors])
    sims = mat @ mat.T
    print("cosine similarities:")
    for i, t in enumerate(texts):
        print(f"  {t[:30]:<30} " + " ".join(f"{s:6.3f}" for s in sims[i].tolist()))


def cmd_finetune(args) -> None:
    from bertkit.training.finetune import finetune_from_args
    result = finetune_from_args(args)
    if args.json:
        print(json.dumps(result, indent=2))


def cmd_eval(args) -> None:
    from bertkit.training.finetune import evaluate_from_args
    result = evaluate_from_args(args)
    print(json.dumps(result, indent=2) if args.json else
          "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))


def cmd_predict(args) -> None:
    from bertkit.training.finetune import predict_from_args
    for row in predict_from_args(args):
        print(json.dumps(row, ensure_ascii=False) if args.json else row)


def cmd_bench(args) -> None:
    import runpy
    bench_dir = Path(__file__).resolve().parents[2] / "bench"
    script = bench_dir / f"bench_{args.name}.py"
    if not script.exists():
        names = sorted(p.stem[len("bench_"):] for p in bench_dir.glob("bench_*.py")) if bench_dir.is_dir() else []
        raise UserError(f"no benchmark {args.name!r}" + (f"; choose one of: {', '.join(names)}" if names else
                        " (benchmarks live in bench/ of a source checkout: git clone, pip install -e '.[test]')"))
    sys.argv = [str(script), *args.bench_args]
    runpy.run_path(str(script), run_name="__main__")


# ----------------------------------------------------------------------------- helpers

def _existing_files(paths) -> list[Path]:
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"no such file or directory: {p}")
    if not files:
        raise UserError("no input files found in: " + ", ".join(map(str, paths)))
    return files


def _model_dir(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"model directory not found: {p} (expected config.json, vocab.txt, model.safetensors)")
    if not (p / "config.json").exists():
        raise UserError(f"{p} has no config.json: is it a bertkit/BERT checkpoint directory?")
    return p


def _load_tokenizer(model: str | None):
    from bertkit.text.tokenizer import BertTokenizer
    if model is None:
        from bertkit.modeling.checkpoint import find_minilm
        try:
            model = str(find_minilm())
        except Exception as exc:  # noqa: BLE001 — turned into a user message
            raise UserError(f"pass --model DIR (no default tokenizer available: {exc})") from exc
    p = Path(model)
    if not (p / "vocab.txt").exists():
        raise UserError(f"no vocab.txt in {p}: pass --model with a directory holding vocab.txt")
    return BertTokenizer.from_pretrained(p)


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertkit", description="BERT end to end, from scratch.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")

    def verb(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        p.set_defaults(func=func)
        return p

    p = verb("quickstart", cmd_quickstart,
             "Train a vocab and a small BERT on Python's own documentation, then try it (≤10 min on 2 cores).")
    p.add_argument("--out", default="runs/quickstart")
    p.add_argument("--minutes", type=float, default=6.0, help="time budget for pretraining")
    p.add_argument("--seed", type=int, default=0)

    p = verb("tokenize", cmd_tokenize, "Show, step by step, how BERT's tokenizer splits a text.")
    p.add_argument("text")
    p.add_argument("--pair", default=None, help="optional second segment")
    p.add_argument("--model", default=None, help="checkpoint/vocab dir (default: the MiniLM vocab if installed)")

    p = verb("vocab", cmd_vocab, "Train a WordPiece vocab from raw text files.")
    p.add_argument("files", nargs="+")
    p.add_argument("--size", type=int, default=30522)
    p.add_argument("--out", required=True)
    p.add_argument("--cased", action="store_true")
    p.add_argument("--keep-accents", action="store_true", help="keep accents when lower-casing (Korean: keeps syllables)")
    p.add_argument("--morphemes", action="store_true", help="Korean: split morphemes with kiwipiepy first")

    p = verb("pretrain", cmd_pretrain, "Pretrain BERT (MLM + NSP) on raw text files.")
    p.add_argument("files", nargs="+", help="text files: one sentence per line, blank line between documents")
    p.add_argument("--out", required=True)
    p.add_argument("--size", default="mini", help="tiny|mini|small|medium|base|large|L4-H256 ...")
    p.add_argument("--vocab", default=None, help="existing vocab dir (default: train one)")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--cased", action="store_true")
    p.add_argument("--keep-accents", action="store_true",
                   help="do not strip accents when lower-casing (use for Korean: keeps Hangul syllables whole)")
    p.add_argument("--morphemes", action="store_true")
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--whole-word-mask", action="store_true")
    p.add_argument("--no-nsp", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--no-resume", action="store_true", help="start over even if the output dir has a checkpoint")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--one-doc-per-line", action="store_true",
                   help="every line is a document (cut into sentences), e.g. one review per line")

    p = verb("fill-mask", cmd_fill_mask, "Predict the words hidden behind [MASK].")
    p.add_argument("text")
    p.add_argument("--model", required=True)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--targets", nargs="*", default=None)

    p = verb("nsp", cmd_nsp, "Next-sentence prediction: does the second sentence follow the first?")
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--model", required=True)

    p = verb("embed", cmd_embed, "Token or sentence embeddings from any layer.")
    p.add_argument("texts", nargs="+")
    p.add_argument("--model", required=True)
    p.add_argument("--layer", default="-1", help="layer index, or 'all'")
    p.add_argument("--pooling", choices=["cls", "mean", "max"], default=None)
    p.add_argument("--normalize", action="store_true")

    _add_task_verbs(verb)
    p = verb("bench", cmd_bench, "Run a side-by-side benchmark against the reference implementation.")
    p.add_argument("name", help="tokenizer|inference|pretrain|finetune|data|vocab|search|serve")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="passed to the benchmark script")
    apps.register(verb)
    return parser


def _add_task_verbs(verb) -> None:
    p = verb("finetune", cmd_finetune, "Fine-tune a checkpoint on a labelled data set.")
    p.add_argument("--task", required=True, help="sst2|cola|stsb|mrpc|rte|nsmc|conll2003|ko_ner|korquad|squad|"
                                                 "classification|pair-classification|regression|tagging|qa")
    p.add_argument("--model", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--eval", default=None, help="evaluation file (default: carve --eval-fraction of train)")
    p.add_argument("--eval-fraction", type=float, default=0.1)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--max-train-examples", type=int, default=None, help="subsample the training set")
    p.add_argument("--max-eval-examples", type=int, default=None)
    p.add_argument("--patience", type=int, default=2, help="early stop after this many epochs without gain")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--text-column", default=None)
    p.add_argument("--pair-column", default=None)
    p.add_argument("--label-column", default=None)

    p = verb("eval", cmd_eval, "Score a fine-tuned model on a labelled file.")
    p.add_argument("--model", required=True)
    p.add_argument("--task", default=None, help="default: the task saved with the model")
    p.add_argument("--data", required=True)
    p.add_argument("--max-length", type=int, default=None)

    p = verb("predict", cmd_predict, "Run a fine-tuned model on texts or a file.")
    p.add_argument("inputs", nargs="*", help="texts (QA: 'question' 'context')")
    p.add_argument("--model", required=True)
    p.add_argument("--file", default=None)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("bertkit: interrupted", file=sys.stderr)
        return 130
    except (UserError, FileNotFoundError, ValueError, TypeError, KeyError, OSError, ImportError) as exc:
        if args.debug:
            raise
        print(f"bertkit: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
