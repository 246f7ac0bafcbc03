"""Lecture notes: WordPiece — a word not in the vocab is cut into pieces; "##" marks a piece inside a word.

* 'Here is the sentence I want embeddings for.' → here is the sentence i want em ##bed ##ding ##s
  for . (bert-base-uncased: 'embeddings' is not in its 30,522 entries, em / ##bed / ##ding / ##s are:
  ids 7861, 8270, 4667, 2015; 'here' is 2182; [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103).
* Leicestershire beat Somerset by an innings → Leicester ##shire beat Somerset by an innings
  (a *cased* vocab: --cased-model, default bert-base-cased; the uncased vocab has 'leicestershire').
* Korean: 개막공연 → 개막 ##공연; Google's multilingual vocab (119,547 entries) over MeCab's
  morphemes of "티라노사오로스랑 트라켄토사이루스 싸우면 누가 이김?" gives 티 ##라 노 ##사 오 ##로 ##스 랑 …
  (--ko-model, default bert-base-multilingual-cased).  Offline, a small cased Korean vocab is
  trained here instead: the split *style* (syllables, never jamo; ## on every piece but the
  first) is the notes', the exact pieces depend on the vocab.

    python examples/10_wordpiece.py [--model bert-base-uncased] [--cased-model bert-base-cased] [--ko-model ...]
"""
from __future__ import annotations

from _common import ENGLISH, add_korean_options, beside, english_model, korean_tokenizer_dir, open_model, parser, \
    setup

EMBEDDINGS = ("Here is the sentence I want embeddings for.",
              ["here", "is", "the", "sentence", "i", "want", "em", "##bed", "##ding", "##s", "for", "."])
IDS = {"here": 2182, "em": 7861, "##bed": 8270, "##ding": 4667, "##s": 2015,
       "[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
LEICESTER = ("Leicestershire beat Somerset by an innings",
             ["Leicester", "##shire", "beat", "Somerset", "by", "an", "innings"])
KOREAN_WORD = ("개막공연", ["개막", "##공연"])
MECAB = ["티라", "노사", "오로스", "랑", "트라", "켄토사이루스", "싸우", "면", "누가", "이김", "?"]
GOOGLE = ["티", "##라", "노", "##사", "오", "##로", "##스", "랑", "트", "##라", "[UNK]", "싸", "##우", "면", "누", "##가",
          "이", "##김", "?"]
TYRANNO = "티라노사오로스랑 트라켄토사이루스 싸우면 누가 이김?"


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], default_model=ENGLISH)
    p.add_argument("--cased-model", default="bert-base-cased", help="a cased English vocab (Leicester ##shire)")
    add_korean_options(p)
    args = p.parse_args(argv)
    setup(args)
    return {**english(args), **korean(args)}


def english(args) -> dict:
    from bertkit import BertTokenizer
    path, _ = english_model(args, "the same 30,522-token uncased vocab", need_weights=False, hint="")
    tok = BertTokenizer.from_pretrained(path)
    pieces = tok.tokenize(EMBEDDINGS[0])
    beside(EMBEDDINGS[0], pieces, EMBEDDINGS[1])
    ids = {t: tok.vocab.get(t) for t in IDS}
    beside("ids", ids, IDS)
    print(f"  'embeddings' in the vocab: {'embeddings' in tok.vocab};  vocab size {tok.vocab_size} (notes: 30522)")
    print(f"  back to text: {tok.decode([7861, 8270, 4667, 2015])!r}")
    cased_path, cased = open_model(args.cased_model, instead="the uncased vocab", fallback=lambda: path,
                                   consequence="no capitals, and 'leicestershire' is one whole entry there",
                                   offline=args.offline, need_weights=False)
    leicester = BertTokenizer.from_pretrained(cased_path).tokenize(LEICESTER[0])
    beside(LEICESTER[0], leicester, LEICESTER[1])
    return {"embeddings_tokens": pieces, "ids": ids, "embeddings_in_vocab": "embeddings" in tok.vocab,
            "vocab_size": tok.vocab_size, "leicester": leicester, "cased_opened": cased}


def korean(args) -> dict:
    from bertkit import BertTokenizer
    path, published = korean_tokenizer_dir(args)
    tok = BertTokenizer.from_pretrained(path)
    word = tok.tokenize(KOREAN_WORD[0])
    beside(KOREAN_WORD[0], word, KOREAN_WORD[1])
    morphemes = tok.tokenize(" ".join(MECAB))
    beside("MeCab's morphemes → WordPiece (notes: Google's multilingual vocab)", morphemes, GOOGLE)
    raw = tok.tokenize(TYRANNO)
    print(f"  {TYRANNO} (no morphemes) → {raw}")
    specials = {t: tok.vocab.get(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")}
    print(f"  vocab: {tok.vocab_size} entries (notes, multilingual: 119547); special ids {specials}")
    styled = {w: wordpiece_style(w, tok.tokenize(w)) for w in ("개막공연", "트라켄토사이루스", "싸우면")}
    print(f"  word-piece style (syllables, not jamo; ## after the first piece): {styled}")
    return {"ko_opened": published, "ko_word": word, "ko_morphemes": morphemes, "ko_raw": raw,
            "ko_specials": specials, "ko_vocab_size": tok.vocab_size, "ko_style": styled}


def is_syllables(text: str) -> bool:
    """True when every character is a precomposed Hangul syllable (가..힣), i.e. no loose jamo."""
    return bool(text) and all("\uac00" <= ch <= "\ud7a3" for ch in text)


def wordpiece_style(word: str, pieces: list[str]) -> bool:
    """The notes' style: a stem, then '##' pieces, all whole syllables, that join back into the word."""
    if len(pieces) < 2 or pieces[0].startswith("##") or not all(p.startswith("##") for p in pieces[1:]):
        return False
    parts = [pieces[0]] + [p[2:] for p in pieces[1:]]
    return all(is_syllables(p) for p in parts) and "".join(parts) == word


if __name__ == "__main__":
    main()
