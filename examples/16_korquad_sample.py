"""Lecture notes: the KorQuAD sample — "파우스트 교향곡에 감탄하여 피아노곡으로 편곡한 사람은?" → 한스 폰 뷔로.

    {'answers': [{'answer_start': 402, 'text': '한스 폰 뷔로'}], 'id': '5917067-1-1', 'question': '파우스트 …'}

An answer is given as characters (answer_start = 402 in the 504-character paragraph); BERT
predicts token positions.  The way there and back, as `bertkit.tasks.QATask` does it:

1. the paragraph is tokenized once with the character span of every piece;
2. it is cut into windows ([CLS] question [SEP] window [SEP]), each `doc_stride` pieces after
   the previous one; a window that holds the whole answer gets its first and last piece as the
   start/end targets, the others point at [CLS] (position 0);
3. back: context[char start of the start piece : char end of the end piece] — the very
   characters of the paragraph.  The answer comes back exactly when it ends where a piece
   ends; when a particle shares the last piece ('뷔로가' → 뷔 ##로가), the model can only answer
   '한스 폰 뷔로가': answers are made of whole pieces.  The script says which case it is.

The notes' other QA samples go the same way: "강우가 떨어지도록 영향을 주는 것은?" → 중력, and the
N95 passage, whose answer '마스크 제작자' is not in its own (translated) passage — which says
'마스크 제조업체' — so there is no span to learn: the example is left out of training, and said so.
This sample is from KorQuAD's train set (not in the shared half of dev), so its text is the notes'.
The tokenizer is --ko-model's (default bert-base-multilingual-cased); offline a small Korean
vocab trained here.  `--data FILE` checks the round trip for every question of a KorQuAD file.

    python examples/16_korquad_sample.py [--max-seq-len 128] [--doc-stride 64] [--data KorQuAD_v1.0_dev_half_a.json]
"""
from __future__ import annotations

from _common import add_korean_options, korean_tokenizer_dir, parser, setup, tiny_random_model

CONTEXT = (
    "한편 1840년부터 바그너와 알고 지내던 리스트가 잊혀져 있던 1악장을 부활시켜 1852년에 바이마르에서 연주했다. 이것을 계기로 "
    "바그너도 이 작품에 다시 관심을 갖게 되었고, 그 해 9월에는 총보의 반환을 요구하여 이를 서곡으로 간추린 다음 수정을 했고 "
    "브라이트코프흐 & 헤르텔 출판사에서 출판할 개정판도 준비했다. 1853년 5월에는 리스트가 이 작품이 수정되었다는 것을 "
    "인정했지만, 끝내 바그너의 출판 계획은 무산되고 말았다. 이후 1855년에 리스트가 자신의 작품 파우스트 교향곡을 거의 "
    "완성하여 그 사실을 바그너에게 알렸고, 바그너는 다시 개정된 총보를 리스트에게 보내고 브라이트코프흐 & 헤르텔 "
    "출판사에는 20루이의 금을 받고 팔았다. 또한 그의 작품을 “하나하나의 음표가 시인의 피로 쓰여졌다”며 극찬했던 한스 폰 "
    "뷔로가 그것을 피아노 독주용으로 편곡했는데, 리스트는 그것을 약간 변형되었을 뿐이라고 지적했다. 이 서곡의 총보 "
    "첫머리에는 파우스트 1부의 내용 중 한 구절을 인용하고 있다.")
SAMPLES = [("5917067-1-1", "파우스트 교향곡에 감탄하여 피아노곡으로 편곡한 사람은?", CONTEXT, "한스 폰 뷔로", 402),
           ("rain", "강우가 떨어지도록 영향을 주는 것은?",
            "기상학에서 강우는 대기 수증기가 응결되어 중력의 영향을 받고 떨어지는 것을 의미합니다. 강우의 주요 형태는 이슬비, "
            "비, 진눈깨비, 눈, 싸락눈 및 우박이 있습니다.", "중력", None),
           ("n95", "N95 인공 호흡기 마스크가 바이러스로부터 보호 할 수 있다고 누가 말합니까?",
            "일부 전문가들은 마스크의 효능이 결정적이지 않다고보고합니다.그러나 마스크 제조업체는 N95 인공 호흡기 마스크와 "
            "같은 자사 제품이 바이러스로부터 보호 할 수 있다고 주장합니다.", "마스크 제작자", None)]


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], "a KorQuAD-fine-tuned QA model (default: a tiny random one)")
    add_korean_options(p)
    p.add_argument("--max-seq-len", type=int, default=128)
    p.add_argument("--doc-stride", type=int, default=64)
    p.add_argument("--data", default=None, help="a KorQuAD/SQuAD JSON file: check the round trip of every answer")
    args = p.parse_args(argv)
    setup(args)
    from bertkit import BertTokenizer, pipeline
    from bertkit.tasks import QAExample, QATask

    path, _ = korean_tokenizer_dir(args)
    tok = BertTokenizer.from_pretrained(path)
    task = QATask("korquad", metric="korquad", doc_stride=args.doc_stride)
    found = {}
    for qid, question, context, answer, start in SAMPLES:
        start = context.find(answer) if start is None else start
        where = f"context[{start}:{start + len(answer)}] = {context[start:start + len(answer)]!r}" if start >= 0 \
            else "not in the passage"
        print(f"\n{qid}: {question}  (answer {answer!r}, answer_start {start}; {where})")
        example = QAExample(id=qid, question=question, context=context,
                            answers=[{"text": answer, "answer_start": start}], answer_ok=[start >= 0])
        features = task.encode([example], tok, max_length=args.max_seq_len, training=True)
        if not features:
            print(f"  no training windows: {features.report}")
        found[qid] = [_window(tok, f, context, n, answer) for n, f in enumerate(features)]
    qa = pipeline("question-answering", device="cpu",
                  model=args.model or tiny_random_model("BertForQuestionAnswering", vocab_dir=path))
    predicted = qa(question=SAMPLES[0][1], context=CONTEXT, max_seq_len=args.max_seq_len, doc_stride=args.doc_stride)
    print(f"\npipeline (start argmax … end argmax over all windows): {predicted['answer']!r} "
          f"(notes: '한스 폰 뷔로'; a random model's answer is noise)")
    out = {"windows": found, "pipeline": predicted, "tokenizer": str(path)}
    if args.data:
        out["data"] = round_trip(args.data, tok, task, args.max_seq_len)
    return out


def _window(tok, feature: dict, context: str, n: int, answer: str) -> dict:
    """One window: its character range, and the answer read back from its start/end targets."""
    offsets, first = feature["context_offsets"], feature["context_start"]
    s, e = feature["start_positions"], feature["end_positions"]
    span = (offsets[s - first][0], offsets[e - first][1]) if s else None
    back = context[span[0]:span[1]] if s else None
    tokens = tok.convert_ids_to_tokens(feature["input_ids"])
    if not s:
        where = "answer not in this window → [CLS] (0, 0)"
    else:
        how = "exact" if back == answer else f"the last piece runs on by {back[len(answer):]!r}"
        where = f"tokens {s}..{e} {tokens[s:e + 1]} → chars {span[0]}..{span[1]} → {back!r} ({how})"
    print(f"  window {n}: chars {offsets[0][0]}..{offsets[-1][1]}, {len(tokens)} tokens: {where}")
    return {"chars": (offsets[0][0], offsets[-1][1]), "start": s, "end": e, "span": span, "text": back,
            "last_piece": offsets[e - first] if s else None}


def round_trip(path, tok, task, max_length: int) -> dict:
    """Every question of a KorQuAD file: does char → token → char give back the answer exactly?"""
    examples = task.read(path)
    features = task.encode(examples, tok, max_length=max_length, training=True)
    exact, total, seen = 0, 0, set()
    for f in features:
        ex = examples[f["example_index"]]
        if f["start_positions"] == 0 or ex.id in seen:
            continue
        seen.add(ex.id)
        offsets, first = f["context_offsets"], f["context_start"]
        back = ex.context[offsets[f["start_positions"] - first][0]:offsets[f["end_positions"] - first][1]]
        exact += back == ex.answers[0]["text"]
        total += 1
    print(f"{path}: {len(examples)} questions, {total} answers placed in a window, {exact} read back exactly "
          f"({exact / max(total, 1):.1%}; the rest end inside a piece, e.g. an answer without the particle that "
          f"shares a piece with it)")
    return {"questions": len(examples), "placed": total, "exact": exact}


if __name__ == "__main__":
    main()
