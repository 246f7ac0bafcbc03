"""Verbs of the apps floor and model files: search, attention, serve, bench, export-onnx, convert, upload."""
from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path

from bertkit.apps.search import (RERANKER_META, Index, build_index, read_passages, rerank, reranker_warning,
                                 train_reranker)
from bertkit.apps.serve import Limits, run_server
from bertkit.apps.upload import push_to_hub
from bertkit.apps.viz import save_attention
from bertkit.cli.common import (UserError, add_device_option, add_max_seq_length_option, add_model_option,
                                check_device, emit, open_model)
from bertkit.common.errors import NotFoundError
from bertkit.modeling.convert import DTYPES, convert_checkpoint
from bertkit.modeling.onnx_export import check_parity, export_onnx, load_model
from bertkit.tasks import read_squad
from bertkit.tasks.readers import read_jsonl
from bertkit.text.coverage import check_coverage

BENCH_DIR = Path(__file__).resolve().parents[3] / "bench"        # bench/ of a source checkout
EPILOG = {
    "search index": ("examples:\n  bertkit search index passages.txt --out runs/index\n"
                     "  bertkit search index passages.txt --out runs/index --int8          # faster on CPU\n"
                     "  bertkit search index long_docs.jsonl --out runs/index --window 128\n"
                     "passages: .txt (one per line), .jsonl ({\"text\", \"id\"} per line) or .json list"),
    "search query": ('examples:\n  bertkit search query "how many people live there?" --index runs/index\n'
                     '  bertkit search query "..." --index runs/index --rerank runs/reranker\n'
                     "output: rank (1 = best), score (cosine similarity; with --rerank the re-ranker's log-odds), "
                     "line (the passage's line in the indexed .txt/.jsonl file, 1-based, blank lines counted), "
                     "[id] when the file gave passages ids of their own, text"),
    "search train-reranker": ("example: bertkit search train-reranker korquad.json --out runs/reranker\n"
                              "prints MRR / hit@k of the bi-encoder alone and re-ranked on held-out pairs, "
                              "and says when the re-ranker does not help\n"
                              "pairs: SQuAD/KorQuAD .json, or .jsonl with {\"question\", \"passage\"}"),
    "attention": 'example: bertkit attention "I love Paris" --pair "It is beautiful" --out runs/attn',
    "serve": ("example: bertkit serve --model bert-base-uncased --qa-model runs/korquad/best --port 8000\n"
              "JSON API: http://127.0.0.1:8000/docs once it runs"),
    "bench": "example: bertkit bench inference --threads 2   (runs bench/bench_inference.py of the checkout)",
    "export-onnx": "example: bertkit export-onnx runs/sst2/best sst2.onnx --check   (inputs int64 [batch, seq])",
    "upload": ("examples:\n  bertkit upload runs/sst2/best me/bert-sst2            (token: HF_TOKEN or `hf auth login`)\n"
               "  bertkit upload runs/nsmc/best me/bert-nsmc --private --branch v1 --commit-message 'first try'\n"
               "uploads config.json, vocab.txt, tokenizer files, weights and task.json, with a generated README.md"),
    "convert": ("examples:\n  bertkit convert uncased_L-12_H-768_A-12/ bert-base-uncased/   (Google's TF release)\n"
                "  bertkit convert klue/bert-base klue-bf16/ --dtype bf16"),
}


# ----------------------------------------------------------------------------- search
def cmd_search_index(args) -> None:
    check_device(args)
    passages = read_passages(args.passages)
    ckpt = open_model(args)
    check_coverage(ckpt.tokenizer(), (p["text"] if isinstance(p, dict) else p for p in passages),
                   where=f"search index {args.passages}")
    index = build_index(passages, ckpt.directory, args.out,
                        batch_size=args.batch_size, max_length=args.max_seq_length, progress=not args.json,
                        quantize="int8" if args.int8 else None, window=args.window, overlap=args.overlap,
                        device=args.device)
    meta = index.meta
    emit(args, {"out": str(args.out), **meta},
         f"indexed {meta['count']} passages ({meta['dim']}-dim) in {meta['build_seconds']:.1f} s "
         f"({meta['passages_per_second']:.0f}/s) → {args.out}")


def cmd_search_query(args) -> None:
    check_device(args)
    index = Index.load(args.index, device=args.device)
    hits = index.query(args.query, top_k=max(args.top_k, args.candidates if args.rerank else 0))
    if args.rerank:
        warning = reranker_warning(open_model(args, "rerank").directory)
        if warning:
            print(warning, file=sys.stderr)
        hits = rerank(args.query, hits, open_model(args, "rerank").directory, top_k=args.top_k, device=args.device)
    emit(args, hits, "\n".join(hit_lines(hits)))


def hit_lines(hits: list[dict]) -> list[str]:
    """The hits as a table for people: rank (1 = best), score, the passage's line in the indexed
    file (1-based, as `bertkit predict` numbers lines), its id when that is not the line, the text."""
    lines = ["rank   score   line  text   (rank 1 = best; line = the passage's line in the indexed file, 1-based)"]
    for h in hits:
        where = f"{h['line']:>5}" if "line" in h else f"{'-':>5}"
        label = "" if str(h.get("line")) == h["id"] else f"[{h['id']}] "
        lines.append(f"{h['rank']:>4}  {h['score']:6.3f}  {where}  {label}{h['text'][:120]}")
    return lines


def read_pairs(path: str) -> list[tuple[str, str]]:
    """(question, passage) pairs from a SQuAD-style .json or a .jsonl of {"question", "passage"}."""
    if not Path(path).is_file():
        raise NotFoundError(f"pairs file not found: {path}")
    if path.endswith(".jsonl"):
        return [(ex.text, ex.text_pair) for ex in read_jsonl(path, text_column="question", text_pair_column="passage")]
    return [(ex.question, ex.context) for ex in read_squad(path)]


def cmd_search_train_reranker(args) -> None:
    check_device(args)
    pairs = read_pairs(args.pairs)
    out = train_reranker(pairs, open_model(args).directory, args.out, negatives=args.negatives, epochs=args.epochs,
                         batch_size=args.batch_size, max_length=args.max_seq_length, max_steps=args.max_steps,
                         device=args.device, eval_pairs=read_pairs(args.eval) if args.eval else None,
                         eval_share=args.eval_share, candidates=args.candidates, progress=not args.json)
    meta = json.loads((Path(out) / RERANKER_META).read_text(encoding="utf-8"))
    emit(args, {"out": str(out), **meta}, "\n".join(reranker_report(meta, out)))


def reranker_report(meta: dict, out) -> list[str]:
    """What `search train-reranker` says: pairs used, and whether the re-ranker beat the bi-encoder."""
    ev = meta["evaluation"]
    lines = [f"re-ranker trained on {meta['pairs']} pairs → {out}"]
    if not ev:
        return lines + ["not evaluated: too few pairs to hold any out (3 or more, or --eval FILE); "
                        "nothing says it ranks better than the plain search"]

    def row(m):
        return f"MRR {m['mrr']:.3f}  hit@1 {m['hit@1']:.2f}  hit@3 {m['hit@3']:.2f}  hit@10 {m['hit@10']:.2f}"
    lines += [f"held-out evaluation: {ev['pairs']} question(s), each ranking {ev['passages']} passages "
              f"(the re-ranker re-orders the bi-encoder's top {ev['candidates']}):",
              f"  bi-encoder alone  {row(ev['bi_encoder'])}", f"  re-ranked         {row(ev['reranked'])}"]
    if ev["helps"]:
        return lines + ["the re-ranker helps: use it with `bertkit search query ... --rerank " + str(out) + "`"]
    return lines + ["the re-ranker does NOT help: it ranks the right passage no better than the bi-encoder alone; "
                    "query without --rerank, or train it on more pairs (`search query --rerank` warns)"]


def register_search(verb) -> None:
    p = verb("search", None, "Semantic search: build an index, query it, train a re-ranker.",
             "examples (each action has its own --help):\n" + "\n".join(
                 next(line for line in EPILOG[k].splitlines() if "bertkit search" in line).replace("example: ", "  ")
                 for k in EPILOG if k.startswith("search")))
    sub = p.add_subparsers(dest="action", metavar="<index|query|train-reranker>", required=True)
    q = verb("index", cmd_search_index, "Embed passages with a BERT encoder into an index folder.",
             EPILOG["search index"], parent=sub)
    q.add_argument("passages", help="passage file (.txt, .jsonl, .json)")
    q.add_argument("--out", required=True, help="the index folder to write")
    add_model_option(q, help="the bi-encoder: a folder, 'minilm' or a Hub name")
    q.add_argument("--batch-size", type=int, default=64, help="passages per batch (default: 64)")
    add_max_seq_length_option(q, default=256, unit="passage or window")
    q.add_argument("--int8", action="store_true", help="embed with the int8-quantized encoder (CPU, faster)")
    q.add_argument("--window", type=int, default=None, help="split long passages into windows of this many "
                   "tokens (e.g. 128); a passage scores as its best window")
    q.add_argument("--overlap", type=int, default=32, help="tokens shared by neighbouring windows (default: 32)")
    add_device_option(q)
    q = verb("query", cmd_search_query, "Find the passages closest to a query.", EPILOG["search query"], parent=sub)
    q.add_argument("query", help="the question or text to look for")
    q.add_argument("--index", required=True, help="an index folder from `bertkit search index`")
    q.add_argument("--top-k", type=int, default=10, help="hits to show (default: 10)")
    q.add_argument("--rerank", default=None, help="a re-ranker folder from `bertkit search train-reranker`")
    q.add_argument("--candidates", type=int, default=50, help="hits handed to the re-ranker (default: 50)")
    q.add_argument("--revision", default=None, help=argparse.SUPPRESS)
    q.add_argument("--offline", action="store_true", help=argparse.SUPPRESS)
    add_device_option(q)
    q = verb("train-reranker", cmd_search_train_reranker, "Fine-tune a cross-encoder on (question, passage) "
             "pairs with random negatives.", EPILOG["search train-reranker"], parent=sub)
    q.add_argument("pairs", help="SQuAD/KorQuAD .json, or .jsonl of {question, passage}")
    q.add_argument("--out", required=True, help="the re-ranker folder to write")
    add_model_option(q, help="the model to start from: a folder, 'minilm' or a Hub name")
    q.add_argument("--negatives", type=int, default=3, help="random negatives per positive (default: 3)")
    q.add_argument("--epochs", type=float, default=1.0, help="passes over the pairs (default: 1.0)")
    q.add_argument("--batch-size", type=int, default=16, help="pairs per step (default: 16)")
    add_max_seq_length_option(q, default=256, unit="(question, passage) pair")
    q.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    q.add_argument("--eval", default=None, help="pairs to evaluate on (same formats); default: hold out --eval-share "
                   "of the pairs")
    q.add_argument("--eval-share", type=float, default=0.2, help="share of the pairs held out of training to "
                   "compare the re-ranker with the bi-encoder (--model) alone (default: 0.2; at least 1 pair)")
    q.add_argument("--candidates", type=int, default=10, help="evaluation: bi-encoder hits the re-ranker "
                   "re-orders (default: 10)")
    add_device_option(q)


# ----------------------------------------------------------------------------- attention, serve
def cmd_attention(args) -> None:
    result = save_attention(args.text, open_model(args).directory, args.out, pair=args.pair, png=not args.no_png,
                            max_length=args.max_seq_length)
    L, A, T, _ = result["shape"]
    files = [str(p) for p in (result["png"], result["html"]) if p]
    emit(args, {"tokens": result["tokens"], "shape": result["shape"], "files": files},
         f"{L} layers × {A} heads over {T} tokens {result['tokens']}\nwrote " + ", ".join(files))


def cmd_serve(args) -> None:
    check_device(args)
    qa = open_model(args, "qa_model").directory if args.qa_model else None
    run_server(open_model(args).directory, qa, host=args.host, port=args.port, threads=args.threads,
               limits=Limits(timeout_s=args.timeout), device=args.device, backend=args.backend)


# ----------------------------------------------------------------------------- bench, files
def cmd_bench(args) -> None:
    script = BENCH_DIR / f"bench_{args.name}.py"
    if not script.exists():
        names = sorted(p.stem[len("bench_"):] for p in BENCH_DIR.glob("bench_*.py")) if BENCH_DIR.is_dir() else []
        raise UserError(f"no benchmark {args.name!r}" + (f"; choose one of: {', '.join(names)}" if names else
                        " (benchmarks live in bench/ of a source checkout: git clone, pip install -e '.[test]')"))
    sys.argv = [str(script), *args.bench_args]
    runpy.run_path(str(script), run_name="__main__")


def cmd_export_onnx(args) -> None:
    model = load_model(open_model(args, "model_dir").directory, args.architecture)
    summary = export_onnx(model, args.out, opset=args.opset, exporter=args.exporter)
    lines = [f"{summary['architecture']} -> {summary['path']} ({summary['megabytes']} MB, opset {summary['opset']}, "
             f"{summary['exporter']}, {summary['seconds']} s); outputs: " + ", ".join(summary["outputs"])]
    if args.check:
        summary["check"] = check_parity(summary["path"], model, tokenizer=open_model(args, "model_dir").directory)
        per = ", ".join(f"{k} {v:.1e}" for k, v in summary["check"]["per_output"].items())
        lines.append(f"onnxruntime vs bertkit on {summary['check']['sentences']} sentences: "
                     f"max abs diff {summary['check']['max_abs_diff']:.1e} ({per})")
    emit(args, summary, "\n".join(lines))


def cmd_convert(args) -> None:
    summary = convert_checkpoint(args.source, args.out, dtype=args.dtype, do_lower_case=args.do_lower_case,
                                 revision=args.revision, local_files_only=True if args.offline else None)
    emit(args, summary, f"{summary['source']} ({summary['format']}, {summary['architecture']}) → {summary['out']}: "
                        f"{summary['megabytes']} MB {summary['dtype']}, reloaded and checked: max abs diff "
                        f"{summary['max_abs_diff']:.2g} ({summary['seconds']} s)")


def cmd_upload(args) -> None:
    done = push_to_hub(args.folder, args.repo, private=args.private, revision=args.revision,
                       commit_message=args.commit_message, token=args.token, language=args.language)
    emit(args, done, f"uploaded {len(done['files'])} files ({', '.join(done['files'])}) to {done['url']} "
                     f"(branch {done['revision']}, commit {done['commit'][:10]})")


def register(verb) -> None:
    register_search(verb)
    p = verb("attention", cmd_attention, "Attention maps of every layer and head: PNG grid + HTML viewer.",
             EPILOG["attention"])
    p.add_argument("text")
    p.add_argument("--pair", default=None, help="optional second sentence")
    add_model_option(p)
    p.add_argument("--out", required=True, help="folder for attention.png and attention.html")
    add_max_seq_length_option(p, default=128, unit="text (or pair)")
    p.add_argument("--no-png", action="store_true", help="only the HTML file (no matplotlib needed)")

    p = verb("serve", cmd_serve, "Web demo: fill-mask, question answering and attention in the browser.",
             EPILOG["serve"])
    add_model_option(p, required=True, help="a BERT with its MLM head (for fill-mask): a folder or a Hub name")
    p.add_argument("--qa-model", default=None, help="a model fine-tuned for question answering")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="(default: 8000)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default: 10.0)")
    add_device_option(p)
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="onnx: embeddings and answers on ONNX Runtime (CPU; fill-mask and attention stay on torch)")

    p = verb("bench", cmd_bench, "Run a side-by-side benchmark against the reference implementation.",
             EPILOG["bench"])
    p.add_argument("name", help="tokenizer|inference|pretrain|finetune|gpu|data|vocab|search|serve|...")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="passed to the benchmark script")

    p = verb("export-onnx", cmd_export_onnx, "Export a model to ONNX for onnxruntime (pip install 'bertkit[onnx]').",
             EPILOG["export-onnx"])
    p.add_argument("model_dir", help="a model folder, 'minilm' or a Hub name")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17, help="(default: 17)")
    p.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript", help="(default: torchscript)")
    p.add_argument("--architecture", default=None, help="class to export (default: the checkpoint's)")
    p.add_argument("--check", action="store_true", help="print max abs diff of onnxruntime vs bertkit")
    p.set_defaults(revision=None, offline=False)

    p = verb("convert", cmd_convert, "Convert a BERT (Google TF release, Hub name, folder) to the standard "
             "layout: config.json, model.safetensors, vocab.txt, tokenizer_config.json.", EPILOG["convert"])
    p.add_argument("source", help="a Google TF release folder, a Hub name or a model folder")
    p.add_argument("out", help="the folder to write")
    p.add_argument("--dtype", choices=list(DTYPES), default="fp32", help="weights stored as (default: fp32)")
    p.add_argument("--cased", dest="do_lower_case", action="store_false", default=None,
                   help="the model keeps case (when the source does not say)")
    p.add_argument("--uncased", dest="do_lower_case", action="store_true", help="the model lower-cases its text")
    p.add_argument("--revision", default=None, help="Hub models: branch, tag or commit")
    p.add_argument("--offline", action="store_true", help="Hub models: the local cache only")

    p = verb("upload", cmd_upload, "Share a model on the Hugging Face Hub, with a generated model card "
             "(pip install 'bertkit[hub]').", EPILOG["upload"])
    p.add_argument("folder", help="the model folder, e.g. runs/sst2/best")
    p.add_argument("repo", help="the Hub repo: namespace/name (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", "--branch", dest="revision", default=None,
                   help="the branch to commit to, created from main if missing (default: main)")
    p.add_argument("--commit-message", default=None, help="(default: 'Upload <task> model with bertkit')")
    p.add_argument("--token", default=None, help="a token with write access (default: HF_TOKEN or `hf auth login`)")
    p.add_argument("--language", default=None, help="the model card's language, e.g. ko (built-in tasks know theirs)")
