"""Every walkthrough script in examples/ runs and reproduces its lecture-notes example.

What can be checked without a network is checked exactly: tokens and ids (the bundled
MiniLM's vocab is bert-base-uncased's), segment ids, shapes, the word → piece label
alignment, the masking shares, the character ↔ token mapping of a QA answer.  Answers that
need a published pretrained head (fill-mask, next-sentence, the two senses of 사과) are
only checked to run and rank, and the one-line "offline: … using the bundled MiniLM"
message is checked to be there.  The Hub is never reached: HF_HUB_OFFLINE is set, the
Hub cache is an empty folder, and any attempt to open an internet socket fails the test.
"""
from __future__ import annotations

import importlib.util
import re
import socket
import sys
import warnings

import pytest

from conftest import REPO
from pipeline_fixtures import tiny_model_dir

EXAMPLES = REPO / "examples"
JAMO = [chr(c) for c in range(0x1100, 0x1200)] + [chr(c) for c in range(0x3130, 0x3190)]


def _load(name: str, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def examples_common():
    """examples/_common.py as the `_common` the scripts import (bench/ has a `_common` of its own)."""
    if getattr(sys.modules.get("_common"), "__file__", None) != str(EXAMPLES / "_common.py"):
        sys.modules["_common"] = _load("_common", EXAMPLES / "_common.py")
    return sys.modules["_common"]


def run_example(name: str, *argv: str) -> dict:
    examples_common()
    module = _load(f"example_{name}", next(EXAMPLES.glob(f"{name}_*.py")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return module.main(list(argv))


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch, tmp_path):
    """No network: HF_HUB_OFFLINE=1 (environment and the already-imported constant), an empty
    Hub cache, and name look-ups / internet sockets that fail the test."""
    cache = tmp_path / "empty-hub-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    try:
        from huggingface_hub import constants
    except ImportError:
        constants = None                   # without it bertkit opens no Hub name at all
    if constants is not None:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"an example tried to reach the network: {address}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "::1", "localhost", None):
            raise AssertionError(f"an example tried to look up {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def offline_line(name: str) -> str:
    """The start of the one-line fall-back message (huggingface_hub needed: without it the line says that)."""
    pytest.importorskip("huggingface_hub")
    return f"offline: {name} is not in the cache; using "


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_path):
    root = tmp_path_factory.mktemp("examples")
    return lambda head, **cfg: tiny_model_dir(root / head, head, minilm_path, **cfg)


@pytest.fixture(scope="module")
def ko_vocab(tmp_path_factory):
    """The small Korean vocab the examples train when no Korean model is at hand (about 2 s)."""
    from conftest import data_file
    data_file("ko_corpus", "nsmc_raw_reviews_unlabeled.txt")
    return str(examples_common().korean_vocab(tmp_path_factory.mktemp("ko-vocab")))


def no_jamo(pieces) -> bool:
    return not any(ch in JAMO for piece in pieces for ch in piece)


# --------------------------------------------------------------------------- 01-09
def test_01_i_love_paris_offline_uses_minilm_with_the_same_ids(capsys):
    out = run_example("01")
    assert offline_line("bert-base-uncased") + "the bundled MiniLM" in capsys.readouterr().out
    assert out["tokens"] == ["[CLS]", "i", "love", "paris", "[SEP]", "[PAD]", "[PAD]"]
    assert out["attention_mask"] == [1, 1, 1, 1, 1, 0, 0]
    assert out["input_ids"] == [101, 1045, 2293, 3000, 102, 0, 0]


def test_01_a_folder_is_used_as_it_is(minilm_path, capsys):
    assert run_example("01", "--model", str(minilm_path))["input_ids"] == [101, 1045, 2293, 3000, 102, 0, 0]
    assert "offline:" not in capsys.readouterr().out


def test_02_embeddings_from_every_layer_and_the_three_tables(capsys):
    out = run_example("02")
    assert offline_line("bert-base-uncased") in capsys.readouterr().out
    assert out["num_hidden_states"] == 7                     # embeddings + 6 layers (BERT-base: 13)
    assert out["last_shape"] == (1, 7, 384)
    assert out["tables"] == {"wordpiece": (30522, 384), "position": (512, 384), "segment": (2, 384)}
    assert out["bank_cosine"] < 0.95                          # same word, different context, different vector


def test_02_twelve_layers_give_thirteen_states(tmp_path, minilm_path):
    d = tiny_model_dir(tmp_path, "BertModel", minilm_path, num_hidden_layers=12)
    out = run_example("02", "--model", str(d))
    assert out["num_hidden_states"] == 13 and out["tables"]["segment"] == (2, 32)


def _ranked(rows):
    return len(rows) == 5 and all(a["score"] >= b["score"] for a, b in zip(rows, rows[1:]))


def test_03_fill_mask_offline_says_the_answers_are_noise(capsys):
    out = run_example("03")
    printed = capsys.readouterr().out
    assert offline_line("bert-large-uncased") + "the bundled MiniLM — answers are noise without a pretrained MLM " \
        "head; run once online to see the notes' answer" in printed
    assert offline_line("bert-base-multilingual-cased") in printed
    assert out["opened"] == {"english": False, "korean": False}
    results = out["results"]
    love = results["Love is like the [MASK]. You can't see it but you can feel it"]
    assert _ranked(love) and all(r["token_str"] in r["sequence"] for r in love)
    assert _ranked(results["Where are you come from? I'm from [MASK]."])
    shop, ernie = (results[s] for s in list(results)[2:])
    assert len(shop) == 2 and len(ernie) == 3 and all(_ranked(rows) for rows in shop + ernie)   # one list per mask


def test_03_fill_mask_with_given_models(tiny, capsys):
    d = str(tiny("BertForMaskedLM"))
    out = run_example("03", "--model", d, "--ko-model", d, "--top-k", "3")
    assert out["opened"] == {"english": True, "korean": True}
    assert "offline:" not in capsys.readouterr().out
    rows = out["results"]["Love is like the [MASK]. You can't see it but you can feel it"]
    assert len(rows) == 3 and rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]


def test_04_next_sentence_offline(capsys):
    out = run_example("04")
    assert offline_line("bert-base-uncased") + "the bundled MiniLM with a random NSP head" in capsys.readouterr().out
    assert out["token_type_ids"] == [0] * 6 + [1] * 7     # [CLS] i am going outside [SEP] | i will be back after 6 [SEP]
    pairs = [(r["b"], r["notes"]) for r in out["results"]]
    assert ("He bought a gallon of milk.", "IsNext") in pairs and ("dogs are so cute.", "NotNext") in pairs
    assert ("그 남자는 우유를 세 통 집어들었다.", "NotNext") in pairs and len(pairs) == 6
    for r in out["results"]:
        assert r["label"] in ("IsNext", "NotNext") and 0 <= r["is_next_probability"] <= 1


def test_04_next_sentence_with_a_given_model(tiny):
    d = str(tiny("BertForNextSentencePrediction"))
    out = run_example("04", "--model", d, "--ko-model", d)
    assert out["opened"] == {"english": True, "korean": True}
    assert out["token_type_ids"] == [0] * 6 + [1] * 7


def test_05_single_text_classification_learns(tiny):
    out = run_example("05", "--model", str(tiny("BertModel")), "--steps", "40", "--lr", "2e-3")
    assert out["losses"][-1] < out["losses"][0] / 2
    assert out["accuracy"] >= 5 / 6


def test_06_pairs_classification_and_regression(tiny):
    out = run_example("06", "--model", str(tiny("BertModel")), "--steps", "40", "--lr", "2e-3")
    assert out["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert out["nli_losses"][-1] < out["nli_losses"][0] / 2
    assert out["sts_losses"][-1] < out["sts_losses"][0] / 2
    assert all(isinstance(s, float) for s in out["sts_scores"])


def test_07_tagging(tiny):
    out = run_example("07", "--model", str(tiny("BertModel")), "--steps", "60", "--lr", "3e-3")
    assert out["losses"][-1] < out["losses"][0] / 3
    assert ("LOC", "Paris") in out["entities"]["Jeremy lives in Paris"]


def test_08_question_answering(tiny):
    out = run_example("08", "--model", str(tiny("BertModel", max_position_embeddings=512)), "--steps", "40",
                      "--lr", "3e-3")
    assert out["losses"][-1] < out["losses"][0] / 2
    assert out["answer"] == out["expected"]


def test_09_korquad_windows(tiny):
    out = run_example("09", "--model", str(tiny("BertForQuestionAnswering", max_position_embeddings=512)),
                      "--max-seq-len", "96", "--doc-stride", "32")
    windows = out["windows"]
    assert len(windows) > 3
    assert all(a["chars"][0] < b["chars"][0] < a["chars"][1] for a, b in zip(windows, windows[1:]))   # overlap
    best = max(windows, key=lambda w: w["logit"])
    assert out["answer"]["answer"] == best["answer"]
    assert out["answer"]["logit"] == pytest.approx(best["logit"], abs=1e-4)


# --------------------------------------------------------------------------- 10-16
def test_10_wordpiece_splits_exactly_as_the_notes(ko_vocab, capsys):
    out = run_example("10", "--ko-vocab", ko_vocab)
    printed = capsys.readouterr().out
    assert out["embeddings_tokens"] == ["here", "is", "the", "sentence", "i", "want", "em", "##bed", "##ding", "##s",
                                        "for", "."]
    assert out["ids"] == {"here": 2182, "em": 7861, "##bed": 8270, "##ding": 4667, "##s": 2015, "[PAD]": 0,
                          "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
    assert out["embeddings_in_vocab"] is False and out["vocab_size"] == 30522
    # Leicester ##shire needs the cased vocab; offline the uncased one keeps the word whole (and says so)
    assert offline_line("bert-base-cased") + "the uncased vocab" in printed
    assert out["leicester"] == ["leicestershire", "beat", "somerset", "by", "an", "innings"]
    # Korean: the notes' style with a vocab trained here — a syllable stem, then ## pieces, never jamo
    assert offline_line("bert-base-multilingual-cased") in printed and out["ko_opened"] is False
    assert out["ko_style"] == {"개막공연": True, "트라켄토사이루스": True, "싸우면": True}
    assert no_jamo(out["ko_word"] + out["ko_morphemes"] + out["ko_raw"])
    assert out["ko_specials"] == {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}


def test_10_style_check_rejects_jamo_and_bad_pieces():
    examples_common()
    module = _load("example_10_check", next(EXAMPLES.glob("10_*.py")))
    assert module.wordpiece_style("개막공연", ["개막", "##공연"])
    assert not module.wordpiece_style("개막공연", ["ᄀ", "##ᅢ", "##ᄆ", "##ᅡ", "##ᆨ", "##공연"])    # jamo
    assert not module.wordpiece_style("개막공연", ["개막공연"])                                       # not split
    assert not module.wordpiece_style("개막공연", ["개막", "공연"])                                   # no ##


def test_11_masking_the_notes_sentence(ko_vocab):
    out = run_example("11", "--ko-vocab", ko_vocab, "--seed", "3")
    assert out["tokens"] == ["my", "dog", "is", "cute", ".", "he", "likes", "playing"]   # real vocab: 'playing' whole
    assert out["notes_ids"] == [101, 2026, 3899, 2003, 10140, 102, 2002, 7777, 2377, 2075, 102]
    assert out["token_type_ids"] == [0] * 6 + [1] * 5
    assert out["notes_input"] == ["[CLS]", "my", "[MASK]", "is", "cute", "[SEP]", "king", "likes", "play", "##ing",
                                  "[SEP]"]
    assert [i for i, label in enumerate(out["notes_labels"]) if label != -100] == [2, 6, 8]
    (position, original, _), = out["drawn"]                 # round(0.15 × 8 maskable tokens) = exactly 1
    assert original not in ("[CLS]", "[SEP]") and 0 < position < 10
    assert out["drawn"] == run_example("11", "--ko-vocab", ko_vocab, "--seed", "3")["drawn"]   # same seed, same draw
    store = out["store"]
    assert store["mask"] == "[CLS] the man went to the [MASK] [SEP]"
    assert store["keep"] == "[CLS] the man went to the store [SEP]"
    random = store["random"].split()
    assert random[:6] == ["[CLS]", "the", "man", "went", "to", "the"] and random[6] not in ("store", "[MASK]")
    shares = out["shares"]
    assert shares["chosen"] == pytest.approx(0.15, abs=0.01)
    assert shares["mask"] == pytest.approx(0.8, abs=0.03)
    assert shares["random"] == pytest.approx(0.1, abs=0.02) and shares["kept"] == pytest.approx(0.1, abs=0.02)
    pieces = out["korean"]["pieces"]
    assert no_jamo(pieces) and "".join(p.removeprefix("##") for p in pieces) == "나는슈퍼에가서그곳에서빵과우유를샀다"


def test_12_korean_pairs_segment_ids_and_a_tiny_fine_tune(ko_vocab, capsys):
    out = run_example("12", "--ko-vocab", ko_vocab, "--steps", "40", "--lr", "2e-3")
    assert offline_line("bert-base-multilingual-cased") + "a tiny random BERT" in capsys.readouterr().out
    a, b = out["pieces"]["그는 놀고 있다"], out["pieces"]["그는 자고 있다"]
    assert out["tokens"] == ["[CLS]", *a, "[SEP]", *b, "[SEP]"]
    assert out["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert all(no_jamo(p) and "[UNK]" not in p for p in out["pieces"].values())
    assert out["nli_losses"][-1] < out["nli_losses"][0] / 2
    assert out["sts_losses"][-1] < out["sts_losses"][0] / 2
    assert set(out["nli_predicted"]) <= {"참", "거짓", "중립"} and len(out["sts_scores"]) == 3


def test_12_korean_pairs_default_run_fits_as_it_says(ko_vocab, capsys):
    """With its defaults (no --steps/--lr) the offline fall-back really fits the six pairs, and says so
    from the measured losses and answers; --help names the default model and what happens first."""
    out = run_example("12", "--ko-vocab", ko_vocab)
    printed = capsys.readouterr().out
    assert (out["steps"], out["lr"]) == (100, 2e-3) and out["fitted"] is True
    assert out["nli_predicted"] == ["거짓", "참", "중립"]
    assert all(abs(got - gold) < 0.5 for got, gold in zip(out["sts_scores"], [5.0, 3.0, 0.0]))
    assert out["nli_losses"][-1] < out["nli_losses"][0] / 10 and out["sts_losses"][-1] < out["sts_losses"][0] / 10
    assert "the model fits the six training pairs" in printed and f"NLI loss {out['nli_losses'][0]:.4f} →" in printed
    with pytest.raises(SystemExit):
        run_example("12", "--help")
    usage = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))          # argparse wraps at hyphens
    assert "default: bert-base-multilingual-cased: the Hub cache, then one request to the Hub" in usage
    assert "MiniLM" not in usage


def test_13_pos_tagging_word_to_piece_alignment(tiny):
    out = run_example("13", "--model", str(tiny("BertModel")), "--steps", "60", "--lr", "3e-3")
    assert out["tokens"] == ["[CLS]", "john", "smith", "'", "s", "car", "is", "new", "[SEP]"]
    assert out["labels"] == [-100, "NNP", "NNP", "POS", -100, "NN", "VB", "JJ", -100]   # 's: tag on its first piece
    assert out["word_starts"] == [1, 2, 3, 5, 6, 7]
    assert out["losses"][-1] < out["losses"][0] / 3
    assert out["predicted"] == ["NNP", "NNP", "POS", "NN", "VB", "JJ"]
    assert out["pipeline"] and all(tag in ("NNP", "POS", "NN", "VB", "JJ", "DT") for _, tag in out["pipeline"])


def test_14_sagwa_static_vs_contextual(capsys):
    out = run_example("14")
    printed = capsys.readouterr().out
    assert offline_line("bert-base-multilingual-cased") + "the bundled MiniLM" in printed
    assert all(c == pytest.approx(1.0, abs=1e-5) for row in out["static"] for c in row)   # one vector per word
    ctx = out["contextual"]
    assert all(ctx[i][i] == pytest.approx(1.0, abs=1e-5) for i in range(4))
    assert all(ctx[i][j] == pytest.approx(ctx[j][i], abs=1e-6) for i in range(4) for j in range(4))
    assert any(c < 0.999 for row in ctx for c in row)                  # context changes the vector
    assert out["separates"] == (min(out["same"]) > max(out["cross"]))
    assert ("do NOT separate" in printed) != out["separates"]          # printed honestly, either way


def test_15_attention_files_and_the_row_of_it(tmp_path, capsys):
    out = run_example("15", "--out", str(tmp_path / "attention"))
    assert offline_line("bert-base-uncased") in capsys.readouterr().out
    for key in ("html", "png"):
        assert out["files"][key].is_file() and out["files"][key].stat().st_size > 1000
    assert out["tokens"] == ["[CLS]", "a", "robot", "must", "obey", "the", "orders", "given", "it", "[SEP]"]
    assert out["shape"] == [6, 12, 10, 10]
    assert sum(out["it_row"]) == pytest.approx(1.0, abs=1e-4) and sum(out["best_row"]) == pytest.approx(1.0, abs=1e-4)
    assert max(out["best_row"]) == out["best_row"][2]        # the chosen head looks hardest from 'it' to 'robot'
    assert 0 <= out["korean"]["weight"] <= 1


def _answer_windows(out, qid):
    return [w for w in out["windows"][qid] if w["start"]]


def test_16_korquad_sample_char_token_char(ko_vocab, capsys):
    out = run_example("16", "--ko-vocab", ko_vocab, "--max-seq-len", "128", "--doc-stride", "64")
    assert offline_line("bert-base-multilingual-cased") in capsys.readouterr().out
    windows = out["windows"]["5917067-1-1"]
    assert len(windows) >= 3
    assert all(a["chars"][0] < b["chars"][0] < a["chars"][1] for a, b in zip(windows, windows[1:]))   # stride overlap
    hits = _answer_windows(out, "5917067-1-1")
    assert hits and all(w["end"] == 0 for w in windows if w not in hits)        # elsewhere: [CLS] = (0, 0)
    for w in hits:
        assert w["span"][0] == 402                                          # answer_start, exactly
        assert w["text"].startswith("한스 폰 뷔로")                          # the answer, plus at most
        assert w["last_piece"][0] <= 408 < w["last_piece"][1]                # the rest of its last piece
    assert not out["windows"]["n95"]            # '마스크 제작자' is not in its passage: nothing to learn
    assert isinstance(out["pipeline"]["answer"], str)


def test_16_exact_when_the_answer_ends_a_piece(minilm_path):
    out = run_example("16", "--ko-model", str(minilm_path))
    (rain,) = _answer_windows(out, "rain")
    assert rain["text"] == "중력" and rain["span"] == (23, 25)               # chars → tokens → the same chars


@pytest.mark.slow
def test_16_round_trip_over_korquad(ko_vocab):
    from conftest import data_file
    path = data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json")
    data = run_example("16", "--ko-vocab", ko_vocab, "--data", str(path))["data"]
    assert data["questions"] == 3316 and data["placed"] > 3000
    assert data["exact"] / data["placed"] > 0.6


def test_the_counts_of_checked_examples_are_the_tables():
    """README.md and examples/README.md say how many of the notes' examples the tests check, and how: the
    numbers are those of examples/README.md's table (one verdict per example)."""
    import collections
    from pathlib import Path
    import re
    repo = Path(__file__).resolve().parents[1]
    table = (repo / "examples" / "README.md").read_text(encoding="utf-8").split("## The notes' examples")[1]
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| 0")]
    verdicts = collections.Counter(row[3].strip().split(" (")[0] for row in rows)
    answer, tuned, mechanics = (verdicts["the notes' answer"], verdicts["the notes' answer, after fine-tuning on it"],
                                verdicts["mechanics"])
    said = f"of the notes' {len(rows)} concrete examples, {answer + tuned + mechanics} are checked by a test"
    readme = " ".join((repo / "README.md").read_text(encoding="utf-8").split())
    assert said + f" — {answer} assert the notes' answer, {tuned} the notes' answer after fine-tuning" in readme
    assert f"{mechanics} only the mechanics" in readme
    guide = " ".join((repo / "examples" / "README.md").read_text(encoding="utf-8").split())
    assert re.search(rf"Of the notes' {len(rows)} concrete examples .*, {answer + tuned + mechanics} are checked", guide)
    assert f"{answer} assert the notes' answer" in guide and f"{mechanics} only the mechanics" in guide
