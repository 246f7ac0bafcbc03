"""WordPiece vocab training: layout, merge algorithm, agreement with the tokenizer and the reference trainer."""
from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from bertkit.common.errors import InputError
from bertkit.text.basic import char_rules
from bertkit.text.corpus import CorpusError
from bertkit.text.tokenizer import BertTokenizer
from bertkit.text.vocab import (PREFIX, SPECIAL_TOKENS, count_words, learn_wordpieces, make_pretokenizer,
                                special_token_layout, train_vocab)
from conftest import data_file


# ------------------------------------------------------------------ layout

def test_bert_layout_matches_bert_base_uncased():
    layout = special_token_layout(30522)
    assert len(layout) == 999
    assert layout[0] == "[PAD]" and layout[1] == "[unused0]" and layout[99] == "[unused98]"
    assert layout[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert layout[104] == "[unused99]" and layout[998] == "[unused993]"


def test_short_and_compact_layouts():
    short = special_token_layout(8000)
    assert len(short) == 104 and short[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert special_token_layout(500) == list(SPECIAL_TOKENS)
    assert special_token_layout(500, "bert")[101] == "[CLS]"
    with pytest.raises(ValueError, match="layout"):
        special_token_layout(500, "weird")


# ------------------------------------------------------------------ the merge algorithm

def naive_wordpieces(word_counts, vocab_size, min_frequency=2, specials=SPECIAL_TOKENS, algorithm="frequency"):
    """Textbook version: recount every piece and pair after every merge. Same ids and tie-breaks as
    learn_wordpieces: the best score wins, ties go to the pair of smaller piece ids."""
    pieces, ids = [], {}

    def intern(p):
        if p not in ids:
            ids[p] = len(pieces)
            pieces.append(p)
        return ids[p]

    chars = Counter()
    for w, c in word_counts.items():
        for ch in w:
            chars[ch] += c
    alphabet = [ch for ch, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))]
    words = [([intern(w[0])] + [intern(PREFIX + ch) for ch in w[1:]], c) for w, c in word_counts.items()]
    vocab = list(specials)
    for ch in alphabet:
        vocab.append(ch)
    inside = {pieces[i] for symbols, _ in words for i in symbols[1:]}
    vocab += [PREFIX + ch for ch in alphabet if PREFIX + ch in inside]
    while len(vocab) < vocab_size:
        pairs, units = Counter(), Counter()
        for symbols, c in words:
            for p in zip(symbols, symbols[1:]):
                pairs[p] += c
            for u in symbols:
                units[u] += c
        pairs = {p: n for p, n in pairs.items() if n >= min_frequency}
        if not pairs:
            break
        if algorithm == "frequency":
            best = min(pairs, key=lambda p: (-pairs[p], p))
        else:
            best = min(pairs, key=lambda p: (-pairs[p] / (units[p[0]] * units[p[1]]), p))
        a, b = best
        new = intern(pieces[a] + pieces[b][2:])
        for symbols, _ in words:
            i = 0
            while i < len(symbols) - 1:
                if symbols[i] == a and symbols[i + 1] == b:
                    symbols[i:i + 2] = [new]
                i += 1
        if pieces[new] not in vocab:
            vocab.append(pieces[new])
    return vocab


@pytest.mark.parametrize("algorithm", ["frequency", "likelihood"])
@pytest.mark.parametrize("seed", range(6))
def test_incremental_counts_equal_recounting(seed, algorithm):
    rng = random.Random(seed)
    letters = "abcde"[: 3 + seed % 3]
    counts = Counter({"".join(rng.choice(letters) for _ in range(rng.randint(1, 9))): rng.randint(1, 20)
                      for _ in range(300)})
    for size, min_frequency in ((20, 2), (60, 2), (400, 2), (400, 5)):
        assert learn_wordpieces(counts, size, min_frequency, limit_alphabet=None, algorithm=algorithm) == \
            naive_wordpieces(counts, size, min_frequency, algorithm=algorithm)


def test_toy_example_merges():
    # the Hugging Face course example: hug pug pun bun hugs
    counts = Counter({"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5})
    vocab = learn_wordpieces(counts, 100)
    learned = vocab[len(SPECIAL_TOKENS):]
    # the alphabet, most frequent character first (u: 36, g: 20, p: 17, n: 16, h: 15, s: 5, b: 4) ...
    assert learned[:7] == ["u", "g", "p", "n", "h", "s", "b"]
    # ... then the "##" forms of those seen inside a word, in the same order
    assert learned[7:11] == ["##u", "##g", "##n", "##s"]
    merges = learned[11:]
    assert merges[0] == "##ug"                                      # ##u ##g: 10 + 5 + 5 = 20 times
    assert {"hug", "pun", "hugs"} <= set(merges)


def test_min_frequency_stops_merging():
    counts = Counter({"abc": 1, "abd": 1})
    vocab = learn_wordpieces(counts, 100, min_frequency=3)
    assert not any(len(t.replace(PREFIX, "")) > 1 for t in vocab[len(SPECIAL_TOKENS):])
    assert "##ab" not in learn_wordpieces(counts, 100, min_frequency=2) and "ab" in learn_wordpieces(counts, 100)


def test_limit_alphabet_drops_rare_characters():
    counts = Counter({"aaa": 50, "bab": 30, "xa": 1})
    vocab = learn_wordpieces(counts, 100, limit_alphabet=2)
    assert "x" not in vocab and "xa" not in vocab and "a" in vocab and "b" in vocab


def test_vocab_never_exceeds_size_and_has_no_duplicates():
    rng = random.Random(0)
    counts = Counter({"".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 12))): rng.randint(1, 50)
                      for _ in range(2000)})
    vocab = learn_wordpieces(counts, 300)
    assert len(vocab) == 300 and len(set(vocab)) == 300


# ------------------------------------------------------------------ words are the tokenizer's words

TRICKY = ("Héllo, WÖRLD!! naïve café — “quotes” 3.14 e.g. don't\x00 tab\there\u200b zero-width\n"
          "中文字符 日本語のテキスト 한국어 문장입니다. Ａｂｃ ﬁne ǅ e\u0301\u0323 ῾Α x\u0300\u0315y\n")


@pytest.mark.parametrize("lowercase,strip", [(True, None), (False, None), (True, False), (False, True)])
def test_fast_word_count_equals_the_tokenizer_words(tmp_path, lowercase, strip):  # (positional arguments)
    path = tmp_path / "t.txt"
    path.write_text(TRICKY * 3, encoding="utf-8")
    pre = make_pretokenizer(lowercase, strip)
    expected = Counter(w for line in (TRICKY * 3).splitlines() for w in pre(line))
    assert count_words([path], lowercase, strip) == expected
    tok = BertTokenizer(list(SPECIAL_TOKENS), do_lower_case=lowercase, strip_accents=strip)
    assert sorted(expected) == sorted({w for line in TRICKY.splitlines() for w, *_ in tok.encode_words(line)})


# ------------------------------------------------------------------ end to end

ENGLISH = """The quick brown fox jumps over the lazy dog. The dog sleeps.
Playing players played plays; the fox is playing with the dogs!
Tokenization splits words into wordpieces, like token ##ization.
"""


def test_train_vocab_saves_and_reloads(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(ENGLISH * 20, encoding="utf-8")
    tok = train_vocab([corpus], vocab_size=200, limit_alphabet=None, out_dir=tmp_path / "vocab")
    assert len(tok) <= 200 and tok.ids_to_tokens[:5] == list(SPECIAL_TOKENS)
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    again = BertTokenizer.from_pretrained(tmp_path / "vocab")
    assert again.ids_to_tokens == tok.ids_to_tokens and again.do_lower_case
    ids = again.encode(ENGLISH, add_special_tokens=False)
    assert tok.unk_token_id not in ids
    assert len(ids) < 0.6 * sum(1 for _ in ENGLISH if _.isalpha())      # pieces are longer than characters
    assert "playing" in tok.vocab and "the" in tok.vocab


def test_cased_vocab_keeps_capitals(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(ENGLISH * 20, encoding="utf-8")
    cased = train_vocab(corpus, vocab_size=200, do_lower_case=False)
    uncased = train_vocab(corpus, vocab_size=200, do_lower_case=True)
    assert "The" in cased.vocab and "T" in cased.vocab and not cased.do_lower_case
    assert not any(any(c.isupper() for c in t) for t in uncased.ids_to_tokens if not t.startswith("["))


def test_bert_layout_ids_in_trained_vocab(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(ENGLISH * 5, encoding="utf-8")
    tok = train_vocab(corpus, vocab_size=1200, layout="bert")
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 100, 101, 102, 103)
    assert tok.ids_to_tokens[998] == "[unused993]" and len(tok) <= 1200


def test_cjk_characters_stay_single(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("我爱自然语言处理。自然语言很有趣。\n" * 30, encoding="utf-8")
    tok = train_vocab(corpus, vocab_size=100)
    learned = tok.ids_to_tokens[len(SPECIAL_TOKENS):]
    assert "自" in learned and not any(len(t) > 1 for t in learned)     # each ideograph is a word alone


def test_korean_vocab_with_kiwi_morphemes(tmp_path):
    pytest.importorskip("kiwipiepy")
    corpus = tmp_path / "ko.txt"
    corpus.write_text("나는 밥을 먹었다. 너는 빵을 먹었다. 우리는 학교에 갔다.\n" * 30, encoding="utf-8")
    plain = train_vocab(corpus, vocab_size=300, strip_accents=False)
    morph = train_vocab(corpus, vocab_size=300, strip_accents=False, morpheme_splitter="kiwi",
                        out_dir=tmp_path / "vocab")
    assert "먹었다" in plain.vocab                                       # whole eojeol when not split
    assert "먹었다" not in morph.vocab and "먹" in morph.vocab           # morphemes: 먹 / 었 / 다
    assert json.loads((tmp_path / "vocab" / "tokenizer_config.json").read_text())["morpheme_splitter"] == "kiwi"
    again = BertTokenizer.from_pretrained(tmp_path / "vocab")
    assert again.tokenize("우리는 빵을 먹었다") == morph.tokenize("우리는 빵을 먹었다")
    assert morph.unk_token_id not in again.encode("우리는 빵을 먹었다", add_special_tokens=False)


def test_user_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(CorpusError, match="empty.txt"):
        train_vocab([empty], vocab_size=100)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="only blank lines"):
        train_vocab([blank], vocab_size=100)
    with pytest.raises(ValueError, match="no room"):
        train_vocab([blank], vocab_size=5)
    with pytest.raises(ValueError, match="no input files"):
        train_vocab([], vocab_size=100)


def test_agrees_with_reference_trainer(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    lines = data_file("wikitext2", "valid.txt").read_text(encoding="utf-8").splitlines()[:800]
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    ours = train_vocab(corpus, vocab_size=2000)
    ref = tokenizers.BertWordPieceTokenizer(lowercase=True)
    ref.train([str(corpus)], vocab_size=2000, min_frequency=2, limit_alphabet=1000,
              special_tokens=special_token_layout(2000), show_progress=False)
    ref_tokens = set(ref.get_vocab())
    overlap = len(set(ours.vocab) & ref_tokens) / len(ref_tokens)
    assert overlap > 0.97


def test_warns_when_accent_stripping_decomposes_hangul(tmp_path, caplog):
    import logging
    corpus = tmp_path / "ko.txt"
    corpus.write_text("나는 밥을 먹었다. 너는 빵을 먹었다.\n" * 10, encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        jamo = train_vocab(corpus, vocab_size=200)                      # lowercase → strip_accents → NFD
    assert "strip_accents=False" in caplog.text
    assert "\u1102" in jamo.vocab                                       # ᄂ, a conjoining jamo
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        syllables = train_vocab(corpus, vocab_size=200, strip_accents=False)
    assert "jamo" not in caplog.text and "나" in syllables.vocab


# ------------------------------------------------------------------ frequency vs likelihood

# "q" is always followed by "u" but both are rare; "i t" is frequent because i and t are frequent.
# Piece ids follow first appearance: q=0 ##u=1 ##i=2 ##t=3 b=4 s=5, merged pieces get the next ids.
QU_CORPUS = Counter({"quit": 2, "bit": 5, "sit": 4})


def merges_of(vocab, word_counts):
    """The learned pieces after the alphabet and its "##" forms."""
    n_alphabet = len({ch for w in word_counts for ch in w})
    n_inner = len({ch for w in word_counts for ch in w[1:]})
    return vocab[len(SPECIAL_TOKENS) + n_alphabet + n_inner:]


def test_frequency_and_likelihood_choose_different_first_merges():
    # counts: q 2, ##u 2, ##i 11, ##t 11, b 5, s 4; pairs: q##u 2, ##u##i 2, ##i##t 11, b##i 5, s##i 4
    freq = merges_of(learn_wordpieces(QU_CORPUS, 100, algorithm="frequency"), QU_CORPUS)
    # ##i ##t (11 times) → then b ##it (5), s ##it (4); q ##u and ##u ##it tie at 2: smaller ids first
    assert freq == ["##it", "bit", "sit", "qu", "quit"]
    like = merges_of(learn_wordpieces(QU_CORPUS, 100, algorithm="likelihood"), QU_CORPUS)
    # score count(ab) / (count(a)·count(b)): q ##u = 2 / (2·2) = 1/2 beats every other pair (1/11).
    # Then qu ##i, ##i ##t, b ##i, s ##i all score 1/11: the smallest ids (##i ##t) win; then
    # qu ##it, b ##it, s ##it all 1/11 → b (id 4) ##it; then s ##it = 4 / (4·6) = 1/6 = qu ##it → s first.
    assert like == ["qu", "##it", "bit", "sit", "quit"]


def test_train_vocab_records_the_algorithm(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(ENGLISH * 20, encoding="utf-8")
    tok = train_vocab(corpus, vocab_size=150, algorithm="likelihood", out_dir=tmp_path / "v")
    config = json.loads((tmp_path / "v" / "tokenizer_config.json").read_text())
    assert config["vocab_training"] == {"algorithm": "likelihood", "vocab_size": 150, "min_frequency": 2,
                                        "limit_alphabet": 1000, "layout": "auto", "files": ["c.txt"]}
    again = BertTokenizer.from_pretrained(tmp_path / "v")
    assert again.vocab_training["algorithm"] == "likelihood" and again.ids_to_tokens == tok.ids_to_tokens
    again.save_pretrained(tmp_path / "copy")                            # survives a re-save (e.g. a checkpoint)
    assert json.loads((tmp_path / "copy" / "tokenizer_config.json").read_text())["vocab_training"] == \
        config["vocab_training"]
    # the same settings train the same vocab again; the other algorithm learns another one
    assert train_vocab(corpus, vocab_size=150, algorithm="likelihood").ids_to_tokens == tok.ids_to_tokens
    assert train_vocab(corpus, vocab_size=150).ids_to_tokens != tok.ids_to_tokens
    with pytest.raises(InputError, match="algorithm='bpe'"):
        train_vocab(corpus, vocab_size=150, algorithm="bpe")


# ------------------------------------------------------------------ one name per concept

def test_old_keyword_names_still_work_and_say_the_new_one(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(ENGLISH * 5, encoding="utf-8")
    with pytest.warns(DeprecationWarning, match="use do_lower_case"):
        old = train_vocab(corpus, vocab_size=120, lowercase=False)
    assert old.ids_to_tokens == train_vocab(corpus, vocab_size=120, do_lower_case=False).ids_to_tokens
    assert not old.do_lower_case
    with pytest.warns(DeprecationWarning, match="count_words.*do_lower_case"):
        assert count_words([corpus], lowercase=False) == count_words([corpus], do_lower_case=False)
    with pytest.warns(DeprecationWarning, match="tokenize_chinese_chars"):
        assert char_rules(True, None, split_cjk=False) is char_rules(True, None, tokenize_chinese_chars=False)
    with pytest.warns(DeprecationWarning), pytest.raises(InputError, match="disagree; pass only do_lower_case"):
        train_vocab(corpus, vocab_size=120, lowercase=False, do_lower_case=True)


def test_vocab_cli_shows_progress_on_stderr_and_none_with_json(tmp_path, capsys):
    """`bertkit vocab` says how far it is: megabytes read while counting words, then merges done."""
    import json

    from bertkit.cli import main
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"the quick brown fox {i} jumps over the lazy dog number {i}\n" for i in range(10_000)),
                      encoding="utf-8")
    assert main(["vocab", str(corpus), "--size", "200", "--out", str(tmp_path / "v")]) == 0
    out, err = capsys.readouterr()
    assert "counting words" in err and "merging pieces" in err and "written to" in out
    size = f"{corpus.stat().st_size / 1000:.0f}k"
    assert "counting words: 100%" in err and f"{size}/{size}" in err                  # every byte read
    assert "10,000 lines of corpus.txt" in err                                         # the lines read
    learned = len((tmp_path / "v" / "vocab.txt").read_text(encoding="utf-8").splitlines())
    assert re.search(r"merging pieces: 100%\|.*\| (\d+)/\1 ", err) and learned == 200
    assert main(["vocab", str(corpus), "--size", "200", "--out", str(tmp_path / "w"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["vocab_size"] == 200


def test_the_vocab_verb_takes_the_algorithm(tmp_path, capsys):
    """`bertkit vocab --algorithm likelihood` trains the vocab `train_vocab(..., algorithm="likelihood")` trains."""
    from bertkit.cli import main
    corpus = tmp_path / "c.txt"
    corpus.write_text("quit bit sit\n" * 2 + "bit sit bit\n" * 3 + ENGLISH * 5, encoding="utf-8")
    for algorithm in ("frequency", "likelihood"):
        assert main(["vocab", str(corpus), "--size", "150", "--algorithm", algorithm,
                     "--out", str(tmp_path / algorithm)]) in (0, None)
        config = json.loads((tmp_path / algorithm / "tokenizer_config.json").read_text())
        assert config["vocab_training"]["algorithm"] == algorithm
        library = train_vocab(corpus, vocab_size=150, algorithm=algorithm)
        assert BertTokenizer.from_pretrained(tmp_path / algorithm).ids_to_tokens == library.ids_to_tokens
    assert (tmp_path / "frequency" / "vocab.txt").read_text() != (tmp_path / "likelihood" / "vocab.txt").read_text()
    with pytest.raises(SystemExit):
        main(["vocab", str(corpus), "--algorithm", "bpe", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'bpe'" in capsys.readouterr().err
