"""Fill-mask with a tokenizer that cuts Korean words into morphemes: answers are written as the
input wrote its words ("재미없다"), not spaced by morpheme ("재미 없 다")."""
from __future__ import annotations

import pytest

from pipeline_fixtures import tiny_model_dir

pytest.importorskip("kiwipiepy")

CORPUS = ("이 영화는 정말 재미없다.\n이 영화는 너무 재미있다.\n나는 밥을 먹었다.\n"
          "그 배우는 연기를 정말 잘했다.\n우리는 학교에 갔다.\n") * 20


@pytest.fixture(scope="module")
def korean_mlm(tmp_path_factory):
    from bertkit.text.vocab import train_vocab
    root = tmp_path_factory.mktemp("ko-fill")
    (root / "ko.txt").write_text(CORPUS, encoding="utf-8")
    train_vocab(root / "ko.txt", vocab_size=300, do_lower_case=False, morpheme_splitter="kiwi", out_dir=root / "vocab")
    return tiny_model_dir(root / "mlm", "BertForMaskedLM", root / "vocab")


def test_sequence_glues_the_morphemes_of_one_word(korean_mlm):
    from bertkit import BertTokenizer, pipeline
    tok = BertTokenizer.from_pretrained(korean_mlm)
    pieces = tok.tokenize("재미없다")                                    # 재미없 / 다: morphemes, no "##"
    assert len(pieces) > 1 and "".join(pieces) == "재미없다" and not any(p.startswith("##") for p in pieces)
    fill = pipeline("fill-mask", model=korean_mlm)
    answers = fill("이 영화는 [MASK] 재미없다.", top_k=2, targets=["정말", "너무"])
    assert {a["token_str"] for a in answers} == {"정말", "너무"}
    for a in answers:
        assert a["sequence"] == f"이 영화는 {a['token_str']} 재미없다."
    free = fill("그 배우는 연기를 [MASK] 잘했다.", top_k=3)
    for a in free:                                         # whatever the (random) model puts there
        word = a["token_str"].removeprefix("##")
        assert a["sequence"] == f"그 배우는 연기를 {word} 잘했다."
    assert tok.decode(tok.encode("재미없다", add_special_tokens=False)) == " ".join(pieces)   # plain decode spaces them


def test_decode_as_written_follows_the_offsets():
    from bertkit.text.encoding import decode_spans
    assert decode_spans(["재미", "없", "다", "."], [(0, 2), (2, 3), (3, 4), (4, 5)]) == "재미없다."
    assert decode_spans(["나는", "밥", "을", "먹", "었", "다"],
                        [(0, 2), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9)]) == "나는 밥을 먹었다"
    assert decode_spans(["un", "##believ", "##able", "!"], [(0, 2), (2, 8), (8, 12), (13, 14)]) == "unbelievable !"
    assert decode_spans(["a", "##b", "c"], [(0, 1), (2, 8), (9, 10)]) == "a b c"        # ## in a [MASK]'s place
