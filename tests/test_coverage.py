"""Vocabulary coverage is measured where a model meets text, and a poor fit is said once, with the way out."""
from __future__ import annotations

import shutil
import warnings

import pytest

from bertkit.cli import main
from bertkit.text.coverage import CoverageWarning, check_coverage, coverage_problem, vocab_coverage
from bertkit.text.domain import add_domain_words
from bertkit.text.tokenizer import BertTokenizer
from conftest import data_file

ENGLISH = ["a gorgeous, witty, seductive movie.", "the film is strictly routine.", "it 's a charming journey"]
KOREAN = ["아 더빙.. 진짜 짜증나네요 목소리", "흠...포스터보고 초딩영화줄....오버연기조차 가볍지 않구나",
          "너무재밓었다그래서보는것을추천한다", "교도소 이야기구먼 ..솔직히 재미는 없다..평점 조정"]


@pytest.fixture(scope="module")
def minilm_tok(minilm_path):
    return BertTokenizer.from_pretrained(minilm_path)


def test_english_fits_bert_vocab_korean_does_not(minilm_tok):
    en, ko = vocab_coverage(minilm_tok, ENGLISH), vocab_coverage(minilm_tok, KOREAN)
    assert en["unk_share"] == 0 and en["pieces_per_word"] < 1.5 and coverage_problem(en) is None
    assert ko["single_char_share"] > 0.3 and ko["pieces_per_word"] > 3 and coverage_problem(ko)


@pytest.mark.realdata
def test_the_figures_on_real_reviews(minilm_tok):
    """MiniLM (English uncased vocab) on 1,000 SST-2 vs 1,000 NSMC reviews."""
    sst = [line.split("\t")[0] for line in data_file("glue", "SST-2", "train.tsv").read_text().splitlines()[1:1001]]
    nsmc = [line.split("\t")[1] for line in data_file("nsmc", "ratings_train.txt").read_text().splitlines()[1:1001]]
    en, ko = vocab_coverage(minilm_tok, sst), vocab_coverage(minilm_tok, nsmc)
    print("SST-2", en, "\nNSMC", ko)
    assert en["unk_share"] < 0.01 and en["single_char_share"] < 0.01 and en["pieces_per_word"] < 1.3
    assert ko["unk_share"] > 0.1 and ko["single_char_share"] > 0.3 and ko["pieces_per_word"] > 3.5


def test_the_warning_names_the_figures_and_the_way_out(minilm_tok):
    with pytest.warns(CoverageWarning, match=r"spelled out.*klue/bert-base"):
        check_coverage(minilm_tok, KOREAN, where="finetune")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_coverage(minilm_tok, ENGLISH, where="finetune")


def test_tokenize_cli_says_it_once(capsys):
    assert main(["tokenize", KOREAN[0]]) == 0
    err = capsys.readouterr().err
    assert err.count("bertkit: note:") == 1 and "does not fit" in err


# ----------------------------------------------------------------------------- domain words
def test_vocab_add_puts_words_into_unused_slots(minilm_path, tmp_path, capsys):
    model = tmp_path / "m"
    shutil.copytree(minilm_path, model)
    before = BertTokenizer.from_pretrained(model)
    assert len(before.tokenize("tocilizumab")) > 3
    assert main(["vocab", "add", "Tocilizumab", "remdesivir", "paris", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "added 2 word(s)" in out and "already one token: paris" in out
    after = BertTokenizer.from_pretrained(model)
    assert after.vocab_size == before.vocab_size
    assert after.tokenize("Tocilizumab and remdesivir") == ["tocilizumab", "and", "remdesivir"]
    assert before.convert_ids_to_tokens([after.vocab["tocilizumab"]])[0].startswith("[unused")
    transformers = pytest.importorskip("transformers")
    assert transformers.BertTokenizerFast.from_pretrained(model).tokenize("remdesivir") == ["remdesivir"]


def test_vocab_add_refuses_when_slots_run_out_and_writes_nothing(minilm_path, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(minilm_path, model)
    vocab = (model / "vocab.txt").read_text()
    free = sum(line.startswith("[unused") for line in vocab.splitlines())
    words = [f"zzqword{i}" for i in range(free + 1)]
    with pytest.raises(ValueError, match=f"{free + 1} new words but only {free} free"):
        add_domain_words(model, words)
    assert (model / "vocab.txt").read_text() == vocab
    with pytest.raises(ValueError, match="not one word"):
        add_domain_words(model, ["covid-19"])
