"""More `bertkit` verbs: search, attention, serve, similarity, classify, tag, answer, export-onnx.

`bertkit.cli` calls `register(verb)`; each verb gets --json and --debug from there.
"""
from __future__ import annotations

import json
from pathlib import Path

from bertkit.cli.common import UserError

EPILOG = {
    "search": ("examples:\n"
               "  bertkit search index passages.txt --model DIR --out runs/index\n"
               "  bertkit search index passages.txt --model DIR --out runs/index --int8   # faster on CPU\n"
               "  bertkit search index long_docs.jsonl --model DIR --out runs/index --window 128\n"
               '  bertkit search query "how many people live there?" --index runs/index --top-k 10\n'
               '  bertkit search query "..." --index runs/index --rerank runs/reranker\n'
               "  bertkit search train-reranker korquad.json --model DIR --out runs/reranker\n"
               "passages: .txt (one per line), .jsonl ({\"text\", \"id\"} per line) or .json list;\n"
               "reranker pairs: SQuAD/KorQuAD .json, or .jsonl with {\"question\", \"passage\"}"),
    "attention": 'example: bertkit attention "I love Paris" --pair "It is beautiful" --model DIR --out runs/attn',
    "serve": "example: bertkit serve --model runs/mini/model --qa-model runs/korquad/best --port 8000",
    "similarity": 'example: bertkit similarity "A man is eating food." "A man eats a meal." "A plane takes off."',
    "classify": 'example: bertkit classify "a gorgeous, witty film" --model runs/sst2/best --top-k 2',
    "tag": 'example: bertkit tag "Jeremy lives in Paris" --model runs/conll/best',
    "answer": 'example: bertkit answer "How many can live on an island?" --context-file passage.txt --model DIR',
    "export-onnx": "example: bertkit export-onnx runs/sst2/best sst2.onnx --check   (inputs int64 [batch, seq])",
}


def _model(path: str | None, what: str = "model") -> Path:
    if path is None:
        from bertkit.modeling.checkpoint import find_minilm
        try:
            return find_minilm()
        except ImportError as exc:
            raise UserError(f"pass --{what.replace('_', '-')} DIR ({exc})") from None
    p = Path(path)
    if not (p / "config.json").is_file():
        raise UserError(f"{p} is not a model directory (no config.json); pass a directory written by "
                        "`save_pretrained`, `bertkit pretrain` or `bertkit finetune`")
    return p


def _print(args, value, text: str) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str) if args.json else text)


# ----------------------------------------------------------------------------- search

def cmd_search(args) -> None:
    {"index": _search_index, "query": _search_query, "train-reranker": _train_reranker}[args.action](args)


def _search_index(args) -> None:
    from bertkit.apps.search import build_index, read_passages
    passages = read_passages(args.target)
    if args.out is None:
        raise UserError("pass --out DIR: where to write the index")
    index = build_index(passages, _model(args.model), args.out, batch_size=args.batch_size,
                        max_length=args.max_length, progress=not args.json,
                        quantize="int8" if args.int8 else None, window=args.window, overlap=args.overlap)
    meta = index.meta
    _print(args, {"out": str(args.out), **meta},
           f"indexed {meta['count']} passages ({meta['dim']}-dim) in {meta['build_seconds']:.1f} s "
           f"({meta['passages_per_second']:.0f}/s) → {args.out}")


def _search_query(args) -> None:
    from bertkit.apps.search import Index, rerank
    if args.index is None:
        raise UserError("pass --index DIR (built with `bertkit search index`)")
    index = Index.load(args.index, model_dir=args.model)
    hits = index.query(args.target, top_k=max(args.top_k, args.candidates if args.rerank else 0))
    if args.rerank:
        hits = rerank(args.target, hits, _model(args.rerank, "rerank"), top_k=args.top_k)
    lines = [f"{h['rank']:>3}. {h['score']:7.3f}  [{h['id']}] {h['text'][:120]}" for h in hits]
    _print(args, hits, "\n".join(lines))


def _train_reranker(args) -> None:
    from bertkit.apps.search import train_reranker
    pairs = read_pairs(args.target)
    if args.out is None:
        raise UserError("pass --out DIR: where to save the re-ranker")
    out = train_reranker(pairs, _model(args.model), args.out, negatives=args.negatives, epochs=args.epochs,
                         batch_size=args.batch_size, max_length=args.max_length, max_steps=args.max_steps)
    _print(args, {"out": str(out), "pairs": len(pairs)}, f"re-ranker trained on {len(pairs)} pairs → {out}")


def read_pairs(path) -> list[tuple[str, str]]:
    """(question, passage) pairs from a SQuAD-style .json or a .jsonl of {"question", "passage"}."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pairs file not found: {path}")
    if path.suffix == ".jsonl":
        pairs = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                if not {"question", "passage"} <= set(row):
                    raise UserError(f"{path}:{n}: each line needs 'question' and 'passage'")
                pairs.append((row["question"], row["passage"]))
        return pairs
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        return [(qa["question"], para["context"]) for article in data["data"]
                for para in article["paragraphs"] for qa in para["qas"]]
    except (KeyError, TypeError):
        raise UserError(f"{path}: expected SQuAD JSON (data → paragraphs → context, qas → question) "
                        "or a .jsonl file of {\"question\", \"passage\"}") from None


# ----------------------------------------------------------------------------- attention, serve

def cmd_attention(args) -> None:
    from bertkit.apps.viz import save_attention
    if args.out is None:
        raise UserError("pass --out DIR: where to write attention.png and attention.html")
    result = save_attention(args.text, _model(args.model), args.out, pair=args.pair, png=not args.no_png,
                            max_length=args.max_length)
    L, A, T, _ = result["shape"]
    files = [str(p) for p in (result["png"], result["html"]) if p]
    _print(args, {"tokens": result["tokens"], "shape": result["shape"], "files": files},
           f"{L} layers × {A} heads over {T} tokens {result['tokens']}\nwrote " + ", ".join(files))


def cmd_serve(args) -> None:
    from bertkit.apps.serve import Limits, run_server
    run_server(_model(args.model), _model(args.qa_model, "qa_model") if args.qa_model else None,
               host=args.host, port=args.port, threads=args.threads, limits=Limits(timeout_s=args.timeout),
               device=args.device)


# ----------------------------------------------------------------------------- pipelines

def cmd_similarity(args) -> None:
    from bertkit.pipelines import pipeline
    if not args.candidates:
        raise UserError("give a source sentence and at least one candidate sentence")
    scores = pipeline("sentence-similarity", model=_model(args.model))(args.source, args.candidates)
    rows = sorted(zip(args.candidates, scores), key=lambda r: -r[1])
    _print(args, [{"text": t, "score": s} for t, s in rows],
           "\n".join(f"{s:7.3f}  {t}" for t, s in rows))


def cmd_classify(args) -> None:
    from bertkit.pipelines import pipeline
    pipe = pipeline("text-classification", model=_model(args.model))
    pairs = [args.pair] * len(args.texts) if args.pair else None
    results = pipe(args.texts, text_pair=pairs, top_k=args.top_k)
    lines = []
    for text, labels in zip(args.texts, results):
        lines.append(f"{text[:60]!r}: " + ", ".join(f"{r['label']} {r['score']:.3f}" for r in labels))
    _print(args, results, "\n".join(lines))


def cmd_tag(args) -> None:
    from bertkit.pipelines import pipeline
    pipe = pipeline("token-classification", model=_model(args.model))
    results = pipe(args.texts, aggregation_strategy=args.aggregation)
    lines = []
    for text, entities in zip(args.texts, results):
        lines.append(text)
        for e in entities:
            label = e.get("entity_group", e.get("entity"))
            lines.append(f"  {label:<8} {e['score']:.3f}  {text[e['start']:e['end']]!r} [{e['start']}:{e['end']}]")
    _print(args, results, "\n".join(lines))


def cmd_answer(args) -> None:
    from bertkit.pipelines import pipeline
    if args.context_file:
        context = Path(args.context_file).read_text(encoding="utf-8")
    elif args.context:
        context = args.context
    else:
        raise UserError("pass --context TEXT or --context-file FILE: the passage that holds the answer")
    pipe = pipeline("question-answering", model=_model(args.model))
    answers = pipe(question=args.question, context=context, top_k=args.top_k, max_seq_len=args.max_seq_len,
                   doc_stride=args.doc_stride)
    answers = answers if isinstance(answers, list) else [answers]
    _print(args, answers, "\n".join(f"{a['score']:.3f}  {a['answer']!r} [{a['start']}:{a['end']}]" for a in answers))


def cmd_export_onnx(args) -> None:
    from bertkit.modeling.onnx_export import cmd_export_onnx as export   # imports torch: only when used
    export(args)


# ----------------------------------------------------------------------------- registration

def register(verb) -> None:
    """Add the verbs to the `bertkit` parser (called by `bertkit.cli.build_parser`)."""
    p = verb("search", cmd_search, "Semantic search: build an index, query it, train a re-ranker.")
    p.epilog = EPILOG["search"]
    p.add_argument("action", choices=["index", "query", "train-reranker"])
    p.add_argument("target", help="index: passage file; query: the query text; train-reranker: pairs file")
    p.add_argument("--model", default=None, help="bi-encoder (index) or base model (re-ranker); default: MiniLM")
    p.add_argument("--out", default=None, help="output directory (index, train-reranker)")
    p.add_argument("--index", default=None, help="index directory (query)")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--rerank", default=None, help="re-ranker directory (query)")
    p.add_argument("--candidates", type=int, default=50, help="hits handed to the re-ranker")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--int8", action="store_true", help="index: embed with the int8-quantized encoder (CPU, faster)")
    p.add_argument("--window", type=int, default=None,
                   help="index: split long passages into windows of this many tokens (e.g. 128); "
                        "a passage scores as its best window")
    p.add_argument("--overlap", type=int, default=32, help="index: tokens shared by neighbouring windows")
    p.add_argument("--negatives", type=int, default=3, help="random negatives per positive (train-reranker)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=None)

    p = verb("attention", cmd_attention, "Attention maps of every layer and head: PNG grid + HTML viewer.")
    p.epilog = EPILOG["attention"]
    p.add_argument("text")
    p.add_argument("--pair", default=None, help="optional second sentence")
    p.add_argument("--model", default=None, help="default: MiniLM")
    p.add_argument("--out", required=True)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--no-png", action="store_true", help="only the HTML file (no matplotlib needed)")

    p = verb("serve", cmd_serve, "Web demo: fill-mask, question answering and attention in the browser.")
    p.epilog = EPILOG["serve"]
    p.add_argument("--model", required=True, help="a BERT with its MLM head (for fill-mask)")
    p.add_argument("--qa-model", default=None, help="a model fine-tuned for question answering")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")

    p = verb("similarity", cmd_similarity, "Cosine similarity of one sentence with others (mean-pooled BERT).")
    p.epilog = EPILOG["similarity"]
    p.add_argument("source")
    p.add_argument("candidates", nargs="*")
    p.add_argument("--model", default=None, help="default: MiniLM")

    p = verb("classify", cmd_classify, "Classify texts (or text pairs) with a fine-tuned classifier.")
    p.epilog = EPILOG["classify"]
    p.add_argument("texts", nargs="+")
    p.add_argument("--model", required=True)
    p.add_argument("--pair", default=None, help="second segment for every text")
    p.add_argument("--top-k", type=int, default=1)

    p = verb("tag", cmd_tag, "Tag entities in texts with a fine-tuned token classifier.")
    p.epilog = EPILOG["tag"]
    p.add_argument("texts", nargs="+")
    p.add_argument("--model", required=True)
    p.add_argument("--aggregation", default="simple", choices=["none", "simple", "first", "max", "average"])

    p = verb("answer", cmd_answer, "Answer a question from a passage with a fine-tuned QA model.")
    p.epilog = EPILOG["answer"]
    p.add_argument("question")
    p.add_argument("--context", default=None)
    p.add_argument("--context-file", default=None)
    p.add_argument("--model", required=True)
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--max-seq-len", type=int, default=384)
    p.add_argument("--doc-stride", type=int, default=128)

    p = verb("export-onnx", cmd_export_onnx, "Export a model to ONNX for onnxruntime (pip install 'bertkit[onnx]').")
    p.epilog = EPILOG["export-onnx"]
    p.add_argument("model_dir", help="checkpoint directory (config.json + weights)")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript")
    p.add_argument("--architecture", default=None, help="class to export (default: the checkpoint's)")
    p.add_argument("--check", action="store_true", help="print max abs diff of onnxruntime vs bertkit")
