"""Verbs of the text floor: `bertkit tokenize`, `bertkit vocab`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bertkit.cli.common import (DEFAULT_MODEL, MODEL_HELP, UserError, check_model_path, emit, existing_files,
                                hub_options)
from bertkit.modeling.checkpoint import resolve_checkpoint
from bertkit.text.coverage import check_coverage
from bertkit.text.domain import add_domain_words
from bertkit.text.merges import ALGORITHMS
from bertkit.text.tokenizer import BertTokenizer
from bertkit.text.vocab import train_vocab

EPILOG = {
    "tokenize": ('examples:\n  bertkit tokenize "I love Paris"\n'
                 '  bertkit tokenize "나는 파리를 사랑한다" --model klue/bert-base\n'
                 '  bertkit tokenize "I love Paris" --pair "It is beautiful" --model runs/mini/model'),
    "vocab": ("examples:\n  bertkit vocab corpus.txt --size 8000 --out runs/vocab\n"
              "  bertkit vocab reviews.txt --size 16000 --out runs/ko_vocab --keep-accents --morphemes   (Korean)\n"
              "  bertkit vocab add tocilizumab remdesivir --model runs/bio-bert   (domain words into [unusedN] "
              "slots; vocab size unchanged)"),
}


def add_casing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cased", dest="do_lower_case", action="store_false", default=None,
                        help="keep upper case (do_lower_case=False)")
    parser.add_argument("--keep-accents", dest="strip_accents", action="store_false", default=None,
                        help="keep accents when lower-casing (Korean: keeps Hangul syllables whole)")


def load_tokenizer(args: argparse.Namespace) -> BertTokenizer:
    """The tokenizer of --model (a model or vocab folder, 'minilm', a Hub name), casing flags applied."""
    folder = Path(args.model).expanduser()
    if not (folder / "vocab.txt").is_file():
        folder = resolve_checkpoint(args.model, need_weights=False, **hub_options(args))
    overrides = {k: getattr(args, k) for k in ("do_lower_case", "strip_accents") if getattr(args, k) is not None}
    return BertTokenizer.from_pretrained(folder, **overrides)


def cmd_tokenize(args) -> None:
    tok = load_tokenizer(args)
    check_coverage(tok, [args.text] + ([args.pair] if args.pair else []), where="tokenize")
    if args.json:
        enc = tok(args.text, text_pair=args.pair)
        tokens = tok.convert_ids_to_tokens(enc["input_ids"])
        print(json.dumps({"tokens": tokens, **dict(enc)}, ensure_ascii=False))
    else:
        print(tok.explain(args.text, pair=args.pair))


def cmd_vocab(args) -> None:
    if args.files[0] == "add":
        return cmd_vocab_add(args, args.files[1:])
    if not args.out:
        raise UserError("pass --out DIR: where to write vocab.txt and tokenizer_config.json")
    files = existing_files(args.files)
    tok = train_vocab(files, vocab_size=args.size, do_lower_case=args.do_lower_case is not False,
                      strip_accents=args.strip_accents, morpheme_splitter="kiwi" if args.morphemes else None,
                      out_dir=args.out, progress=not args.json, algorithm=args.algorithm)
    smaller = f" (asked for {args.size:,}: the corpus has fewer distinct pieces)" if tok.vocab_size < args.size else ""
    emit(args, {"out": str(args.out), "vocab_size": tok.vocab_size},
         f"vocab of {tok.vocab_size:,} tokens{smaller} written to {args.out} (vocab.txt + tokenizer_config.json)")


def cmd_vocab_add(args, words: list[str]) -> None:
    if args.words_file:
        words += [w for w in Path(args.words_file).read_text(encoding="utf-8").split() if w]
    if not words or not args.model:
        raise UserError("usage: bertkit vocab add WORD [WORD ...] --model DIR (or --words-file FILE)")
    result = add_domain_words(check_model_path(args.model) if Path(args.model).is_dir() else args.model, words)
    lines = [f"added {len(result['added'])} word(s) into [unusedN] slots of {args.model}/vocab.txt (size unchanged): "
             + ", ".join(f"{w}={i}" for w, i in result["added"].items())]
    if result["already"]:
        lines.append(f"already one token: {', '.join(result['already'])}")
    lines.append(f"{result['free_slots']} slots left; teach the model the new words: "
                 f"bertkit pretrain domain.txt --from {args.model} --out runs/domain")
    emit(args, result, "\n".join(lines))


def register(verb) -> None:
    p = verb("tokenize", cmd_tokenize, "Show, step by step, how BERT's tokenizer splits a text.", EPILOG["tokenize"])
    p.add_argument("text")
    p.add_argument("--pair", default=None, help="a second segment: [CLS] text [SEP] pair [SEP]")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"{MODEL_HELP}, or a vocab folder from `bertkit vocab` (default: {DEFAULT_MODEL})")
    p.add_argument("--revision", default=None, help="Hub models: branch, tag or commit")
    p.add_argument("--offline", action="store_true", help="Hub models: the local cache only")
    add_casing_options(p)

    p = verb("vocab", cmd_vocab, "Train a WordPiece vocab from raw text files (progress on stderr: megabytes "
             "read while counting words, then merges done; --json: none).", EPILOG["vocab"])
    p.add_argument("files", nargs="+", metavar="FILE", help="text files or folders to train on; or `add WORD ...` "
                   "to put domain words into the [unusedN] slots of --model's vocab")
    p.add_argument("--size", type=int, default=30522, help="vocab size, special tokens included (default: 30522)")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="frequency",
                   help="which pair each merge joins: frequency (the most frequent, as HF tokenizers) or likelihood "
                        "(count(ab) / (count(a)·count(b)), as Google's WordPiece) (default: frequency)")
    p.add_argument("--out", default=None, help="folder for vocab.txt + tokenizer_config.json (training)")
    p.add_argument("--model", default=None, help="add: the model (or vocab) folder whose vocab.txt gets the words")
    p.add_argument("--words-file", default=None, help="add: a file of words (whitespace separated)")
    add_casing_options(p)
    p.add_argument("--morphemes", action="store_true",
                   help="Korean: cut words at morpheme boundaries with kiwipiepy first (pip install 'bertkit[ko]')")
