"""Unit tests for bertkit's tokenizer: one test per BERT rule, plus API behaviour.

Small hand-made vocabularies make each rule visible; where the reference
(transformers' BertTokenizerFast) is available it is compared directly.
"""
from __future__ import annotations

import gc
import json
import warnings

import numpy as np
import pytest
import torch

from bertkit.text import wordpiece as wpmod
from bertkit.text.basic import pre_split_words
from bertkit.text.tokenizer import BertTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# google-research/bert's tokenization_test.py vocabulary, plus a few pieces.
TOY = SPECIALS + ["want", "##want", "##ed", "wa", "un", "runn", "##ing", ",", "low", "lowest", "hello", "world",
                  "!", "?", ".", "'", "$", "^", "`", "中", "国", "a", "##a", "b", "##b", "hallo", "héllo",
                  "hello", "unaffable", "##aff", "##able", "una", "가", "##나", "나", "다", "foo.bar", "s"]


@pytest.fixture
def toy():
    return BertTokenizer(TOY)


@pytest.fixture(scope="module")
def minilm_pair(minilm_path):
    """(ours, reference) for the uncased all-MiniLM-L6-v2 vocab."""
    from transformers import BertTokenizerFast
    return BertTokenizer.from_pretrained(minilm_path), BertTokenizerFast.from_pretrained(str(minilm_path))


def toks(tok, text):
    return tok.tokenize(text)


# ---------------------------------------------------------------- BasicTokenizer rules
def test_cleaning_removes_control_nul_and_replacement_chars(toy):
    assert toks(toy, "hel\x00lo\ufffd wor\x07ld\u200b") == ["hello", "world"]


def test_whitespace_characters_split_words(toy):
    assert toks(toy, "hello\tworld\u3000hello\u00a0world\nhello\u2028world") == ["hello", "world"] * 3
    assert toks(toy, "hel\x0blo\x0c wor\x85ld") == ["hello", "world"]  # \v \f U+0085: control, deleted


def test_cjk_characters_are_split_and_can_be_turned_off():
    tok = BertTokenizer(TOY)
    assert toks(tok, "中国") == ["中", "国"]
    assert toks(BertTokenizer(TOY, tokenize_chinese_chars=False), "中国") == ["[UNK]"]
    # Hangul is not CJK for BERT: a Korean word stays whole. Uncased models strip
    # accents with NFD, which decomposes syllables into jamo (not in this vocab).
    assert toks(BertTokenizer(TOY, do_lower_case=False), "가나 가나다") == ["가", "##나", "[UNK]"]
    assert toks(tok, "가나") == ["[UNK]"]


def test_uncased_lowercases_and_strips_accents(toy):
    assert toks(toy, "HÉLLO Wörld") == ["hello", "world"]


def test_strip_accents_switch_is_independent_of_lowercasing():
    keep = BertTokenizer(TOY, do_lower_case=True, strip_accents=False)
    assert toks(keep, "HÉLLO") == ["héllo"]
    cased_strip = BertTokenizer(TOY, do_lower_case=False, strip_accents=True)
    assert toks(cased_strip, "héllo Héllo") == ["hello", "[UNK]"]
    cased = BertTokenizer(TOY, do_lower_case=False)  # strip_accents=None follows do_lower_case
    assert toks(cased, "héllo") == ["héllo"]


def test_greek_sigma_is_lowercased_per_character_like_the_reference():
    tok = BertTokenizer(SPECIALS + ["οδοσ", "οδος"])
    assert toks(tok, "ΟΔΟΣ") == ["οδοσ"]


def test_punctuation_split_including_ascii_symbols(toy):
    assert toks(toy, "hello,world!$^`") == ["hello", ",", "world", "!", "$", "^", "`"]
    assert toks(toy, "hello¿world") == ["hello", "[UNK]", "world"]


def test_special_tokens_are_never_split_or_lowercased(toy):
    assert toks(toy, "hello[MASK]world [mask]") == ["hello", "[MASK]", "world", "[UNK]", "[UNK]", "[UNK]"]
    assert toy.encode("[CLS] a [SEP]", add_special_tokens=False) == [2, toy.vocab["a"], 3]


def test_never_split_keeps_a_token_whole():
    assert toks(BertTokenizer(TOY), "foo.bar") == ["[UNK]", ".", "[UNK]"]
    assert toks(BertTokenizer(TOY, never_split=["foo.bar"]), "x foo.bar") == ["[UNK]", "foo.bar"]


def test_wordpiece_greedy_longest_match_first(toy):
    assert toks(toy, "unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert toks(toy, "unwantedX running") == ["[UNK]", "runn", "##ing"]
    assert toks(toy, "lowest") == ["lowest"]  # longest match wins over "low" + ...


def test_words_over_100_characters_become_unk(toy):
    assert toks(toy, "a" * 100) == ["a"] + ["##a"] * 99
    assert toks(toy, "a" * 101) == ["[UNK]"]
    assert toy("a" * 101 + " b", return_offsets_mapping=True)["offset_mapping"][1:3] == [(0, 101), (102, 103)]


def test_empty_and_whitespace_only_texts(toy):
    assert toy("")["input_ids"] == [2, 3]
    assert toy(["", " \t\n"])["input_ids"] == [[2, 3], [2, 3]]
    assert toy.tokenize("") == []


# ------------------------------------------------------------------- encoding outputs
def test_pair_token_type_ids_and_special_tokens_mask(toy):
    enc = toy("hello", "world !", return_special_tokens_mask=True)
    assert enc["input_ids"] == [2, toy.vocab["hello"], 3, toy.vocab["world"], toy.vocab["!"], 3]
    assert enc["token_type_ids"] == [0, 0, 0, 1, 1, 1]
    assert enc["attention_mask"] == [1] * 6
    assert enc["special_tokens_mask"] == [1, 0, 1, 0, 0, 1]


def test_offsets_point_into_the_original_text(toy):
    text = "HÉllo,\x00 wor\x00ld 中"
    enc = toy(text, return_offsets_mapping=True)
    assert enc["offset_mapping"] == [(0, 0), (0, 5), (5, 6), (8, 14), (15, 16), (0, 0)]
    assert text[8:14] == "wor\x00ld"


def test_padding_longest_and_max_length(toy):
    enc = toy(["hello", "hello world !"], padding=True, return_special_tokens_mask=True, return_offsets_mapping=True)
    assert enc["input_ids"][0] == [2, toy.vocab["hello"], 3, 0, 0]
    assert enc["attention_mask"][0] == [1, 1, 1, 0, 0]
    assert enc["special_tokens_mask"][0] == [1, 0, 1, 1, 1]
    assert enc["offset_mapping"][0][-1] == (0, 0)
    enc = toy(["hello"], padding="max_length", max_length=6)
    assert enc["input_ids"] == [[2, toy.vocab["hello"], 3, 0, 0, 0]]


def test_return_tensors_pt_and_np(toy):
    pt = toy(["hello", "hello world"], padding=True, return_tensors="pt", return_offsets_mapping=True)
    assert pt["input_ids"].shape == (2, 4) and pt["input_ids"].dtype == torch.long
    assert pt["offset_mapping"].shape == (2, 4, 2)
    single = toy("hello", return_tensors="np")
    assert isinstance(single["input_ids"], np.ndarray) and single["input_ids"].shape == (1, 3)
    assert pt.input_ids is pt["input_ids"]
    with pytest.raises(ValueError, match="padding=True"):
        toy(["hello", "hello world"], return_tensors="pt")


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
@pytest.mark.parametrize("lengths", [(3, 12), (12, 3), (8, 8), (7, 9), (20, 20), (2, 2)])
@pytest.mark.parametrize("max_length", [9, 10, 13])
def test_truncation_strategies_match_the_reference(strategy, lengths, max_length, minilm_pair):
    ours, ref = minilm_pair
    a, b = " ".join(["hello"] * lengths[0]), " ".join(["world"] * lengths[1])
    try:
        expected = ref(a, b, truncation=strategy, max_length=max_length)
    except Exception:
        with pytest.raises(ValueError):
            ours(a, b, truncation=strategy, max_length=max_length)
        return
    got = ours(a, b, truncation=strategy, max_length=max_length)
    assert got["input_ids"] == expected["input_ids"]
    assert got["token_type_ids"] == expected["token_type_ids"]


def test_truncation_single_text_and_defaults(toy):
    assert toy("hello " * 10, truncation=True, max_length=5)["input_ids"] == [2] + [toy.vocab["hello"]] * 3 + [3]
    small = BertTokenizer(TOY, model_max_length=4)
    assert len(small("hello " * 10, truncation=True)["input_ids"]) == 4
    with pytest.raises(ValueError, match="only"):
        toy("hello", "world " * 5, truncation="only_first", max_length=5)


def test_too_long_input_warns_and_names_the_limit():
    tok = BertTokenizer(TOY, model_max_length=8)
    with pytest.warns(UserWarning, match=r"\(12 > 8\).*truncation=True"):
        tok("hello " * 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok("hello " * 10, truncation=True)


# --------------------------------------------------------------------------- decoding
def test_decode_merges_wordpieces_and_cleans_up_spaces(toy):
    ids = toy.encode("unwanted running , hello ! hello . hello ? ' a")
    assert toy.decode(ids) == "[CLS] unwanted running, hello! hello. hello? ' a [SEP]"
    assert toy.decode(ids, skip_special_tokens=True) == "unwanted running, hello! hello. hello? ' a"
    assert toy.decode(torch.tensor(ids[1:3])) == "un ##want".replace(" ##", "")


def test_decode_matches_the_reference(minilm_pair):
    ours, ref = minilm_pair
    for text in ["Hello, world! I don't know... it's 5.5$ (ok?)", "[MASK] is fun , isn ' t it", "한국어 테스트"]:
        ids = ours.encode(text)
        assert ours.decode(ids) == ref.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)


def test_convert_between_ids_and_tokens(toy):
    assert toy.convert_tokens_to_ids(["hello", "nope"]) == [toy.vocab["hello"], toy.unk_token_id]
    assert toy.convert_ids_to_tokens([2, toy.vocab["##ed"]]) == ["[CLS]", "##ed"]
    assert toy.convert_ids_to_tokens(3) == "[SEP]"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        toy.convert_ids_to_tokens([10**6])


def test_special_token_attributes(toy):
    ids = (toy.pad_token_id, toy.unk_token_id, toy.cls_token_id, toy.sep_token_id, toy.mask_token_id)
    assert ids == (0, 1, 2, 3, 4)
    assert sorted(toy.all_special_ids) == [0, 1, 2, 3, 4]
    assert len(toy) == toy.vocab_size == len(TOY) and toy.ids_to_tokens[5] == "want"


# ------------------------------------------------------------------ words and views
def test_encode_words_gives_words_spans_and_pieces(toy):
    words = toy.encode_words("Unwanted, [MASK] running")
    assert words == [("unwanted", 0, 8, [toy.vocab["un"], toy.vocab["##want"], toy.vocab["##ed"]]),
                     (",", 8, 9, [toy.vocab[","]]), ("[MASK]", 10, 16, [4]),
                     ("running", 17, 24, [toy.vocab["runn"], toy.vocab["##ing"]])]


def test_explain_shows_every_step(toy):
    text = toy.explain("HÉllo,\x00 中国!")
    for part in ["cleaned", "'HÉllo, 中国!'", "normalized", "'hello,  中  国 !'", "words",
                 "['hello', ',', '中', '国', '!']", "wordpieces", "ids"]:
        assert part in text


def test_explain_shows_the_pair_as_a_second_segment(toy):
    text = toy.explain("Hello, world!", pair="unwanted running")
    lines = text.splitlines()
    assert "--- segment A (token_type_id 0) ---" in lines and "--- segment B (token_type_id 1) ---" in lines
    segment_b = text.split("--- segment B")[1]
    assert "'unwanted running'" in segment_b and "['un', '##want', '##ed', 'runn', '##ing']" in segment_b
    assert "[CLS] A [SEP] B [SEP]" in text
    table = {line.split(":")[0].strip(): line.split(":", 1)[1].split() for line in lines
             if line.startswith(("  token ", "  segment id", "  id "))}
    enc = toy("Hello, world!", "unwanted running")
    assert table["token"] == ["[CLS]", "hello", ",", "world", "!", "[SEP]", "un", "##want", "##ed", "runn",
                              "##ing", "[SEP]"]
    assert table["segment id"] == [str(t) for t in enc["token_type_ids"]] == ["0"] * 6 + ["1"] * 6
    assert table["id"] == [str(i) for i in enc["input_ids"]]
    single = toy.explain("Hello, world!")
    assert "segment B" not in single and "[CLS] A [SEP]" in single and "B [SEP]" not in single
    with pytest.raises(TypeError, match="pair"):
        toy.explain("a", pair=3)


# ------------------------------------------------------------------------ the cache
def test_results_do_not_depend_on_call_order():
    a = ["Héllo wörld, unwanted!", "running runn unwantedX", "中国 가나"]
    b = ["hello HELLO Hello", "unwanted running", "world!"]
    fresh = lambda: BertTokenizer(TOY)  # noqa: E731
    first = fresh()
    ab = (first(a, return_offsets_mapping=True), first(b, return_offsets_mapping=True))
    second = fresh()
    ba = (second(b, return_offsets_mapping=True), second(a, return_offsets_mapping=True))
    assert ab[0] == ba[1] and ab[1] == ba[0]
    assert fresh()(a, return_offsets_mapping=True) == ab[0]


def test_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(wpmod, "CACHE_LIMIT", 10)
    tok = BertTokenizer(TOY)
    tok([f"w{i}" for i in range(100)])
    assert len(tok._wordpiece.cache) <= 10
    assert tok("hello world")["input_ids"] == [2, tok.vocab["hello"], tok.vocab["world"], 3]


def test_garbage_collector_state_is_restored(toy):
    assert gc.isenabled()
    toy(["hello"] * 3)
    assert gc.isenabled()
    gc.disable()
    try:
        toy("hello")
        assert not gc.isenabled()
    finally:
        gc.enable()


# -------------------------------------------------------------------- save and load
def test_save_and_load_round_trip(tmp_path):
    tok = BertTokenizer(TOY, do_lower_case=False, strip_accents=True, tokenize_chinese_chars=False,
                        never_split=["foo.bar"], model_max_length=64, morpheme_splitter="kiwi")
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer" and config["morpheme_splitter"] == "kiwi"
    back = BertTokenizer.from_pretrained(tmp_path)
    for name in ["do_lower_case", "strip_accents", "tokenize_chinese_chars", "never_split", "model_max_length",
                 "morpheme_splitter", "ids_to_tokens"]:
        assert getattr(back, name) == getattr(tok, name), name


def test_settings_come_from_the_config_not_the_file_name(tmp_path):
    folder = tmp_path / "bert-base-uncased"
    BertTokenizer(TOY, do_lower_case=False).save_pretrained(folder)
    assert BertTokenizer.from_pretrained(folder).do_lower_case is False


def test_hugging_face_loads_our_saved_files(tmp_path, minilm_path):
    from transformers import BertTokenizerFast
    ours = BertTokenizer(minilm_path / "vocab.txt", do_lower_case=False, strip_accents=True)
    ours.save_pretrained(tmp_path)
    ref = BertTokenizerFast.from_pretrained(str(tmp_path))
    text = ["Héllo Wörld, [MASK] 中国 한국어!", "Don't stop"]
    kw = dict(return_offsets_mapping=True)
    assert ours(text, **kw) == {k: [[tuple(x) for x in r] if k == "offset_mapping" else r for r in v]
                               for k, v in ref(text, **kw).items()}
    # and without our tokenizer.json, from vocab.txt + tokenizer_config.json alone
    (tmp_path / "tokenizer.json").unlink()
    assert BertTokenizerFast.from_pretrained(str(tmp_path))(text)["input_ids"] == ours(text)["input_ids"]


def test_minilm_loads_with_its_settings(minilm_path):
    tok = BertTokenizer.from_pretrained(minilm_path)
    assert tok.do_lower_case and tok.vocab_size == 30522 and tok.model_max_length == 512
    assert tok.encode("Hello world!") == [101, 7592, 2088, 999, 102]


# --------------------------------------------------------------------------- errors
def test_missing_vocab_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab"):
        BertTokenizer(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        BertTokenizer.from_pretrained(tmp_path)


def test_vocab_without_special_tokens_names_them():
    with pytest.raises(ValueError, match="lacks the special tokens") as err:
        BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "hello"])
    listed = str(err.value).split(". Add")[0]
    assert "[SEP]" in listed and "[MASK]" in listed and "[PAD]" not in listed and "[CLS]" not in listed


def test_unknown_keyword_argument_is_named(toy):
    with pytest.raises(TypeError, match="return_overflow"):
        toy("hello", return_overflow=True)


def test_bad_inputs_are_explained(toy):
    with pytest.raises(TypeError, match="str"):
        toy(123)
    with pytest.raises(TypeError, match=r"text\[1\]"):
        toy(["ok", None])
    with pytest.raises(ValueError, match="surrogate"):
        toy("ab\ud800")
    with pytest.raises(ValueError, match="same length"):
        toy(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="padding"):
        toy("a", padding="left")
    with pytest.raises(ValueError, match="truncation"):
        toy("a", truncation="middle")
    with pytest.raises(ValueError, match="morpheme_splitter"):
        BertTokenizer(TOY, morpheme_splitter="mecab")


# ----------------------------------------------------------------- morpheme splitting
def split_after_first_syllable(text):
    """Stand-in splitter: a boundary after the first character of every word."""
    cuts, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isspace():
            if start is not None and i - start > 1:
                cuts.append(start + 1)
            start = None
        elif start is None:
            start = i
    return cuts


def test_morpheme_splitter_adds_word_boundaries_only():
    plain = BertTokenizer(TOY, do_lower_case=False)
    split = BertTokenizer(TOY, do_lower_case=False, morpheme_splitter=split_after_first_syllable)
    assert plain.tokenize("가나") == ["가", "##나"]
    assert split.tokenize("가나") == ["가", "나"]
    enc = split("x 가나 ab", return_offsets_mapping=True)
    assert enc["offset_mapping"] == [(0, 0), (0, 1), (2, 3), (3, 4), (5, 6), (6, 7), (0, 0)]
    assert [w[:3] for w in split.encode_words("가\x00나")] == [("가", 0, 1), ("나", 2, 3)]
    assert pre_split_words("Ab 가나", do_lower_case=False, morpheme_splitter=split_after_first_syllable) == \
        [("A", 0, 1), ("b", 1, 2), ("가", 3, 4), ("나", 4, 5)]


def test_custom_splitter_is_not_saved(tmp_path):
    tok = BertTokenizer(TOY, morpheme_splitter=split_after_first_syllable)
    with pytest.warns(UserWarning, match="cannot be saved"):
        tok.save_pretrained(tmp_path)
    assert BertTokenizer.from_pretrained(tmp_path).morpheme_splitter is None


def test_kiwi_splitter_finds_korean_morphemes():
    pytest.importorskip("kiwipiepy")
    tok = BertTokenizer(TOY, do_lower_case=False, morpheme_splitter="kiwi")
    words = tok.encode_words("학교에 갔다")
    assert [w[0] for w in words][:2] == ["학교", "에"]
    assert all("학교에 갔다"[s:e] == w for w, s, e, _ in words)


def test_missing_kiwi_gives_install_hint(monkeypatch):
    import builtins

    from bertkit.text import basic as _text
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "kiwipiepy":
            raise ImportError("no kiwi")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(_text, "_KIWI", None)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install 'bertkit\[ko\]'"):
        BertTokenizer(TOY, morpheme_splitter="kiwi")("가나")
