"""Lecture notes: KorQuAD — a paragraph longer than one window is read with a stride.

"동숲 섬에 몇 명까지 살 수 있음?" over a long passage: the passage is cut into overlapping
windows ([CLS] question [SEP] window [SEP]), each window proposes its best span with
logit = start logit + end logit, and the candidate with the highest logit over all
windows is the answer (in the notes: "8명", logit 12.98).

Pass a model fine-tuned on KorQuAD (`bertkit finetune --task korquad ...`) to get real
answers; without --model a tiny random QA model shows the windows and the mechanics.
`--data` takes a KorQuAD JSON and uses its first long paragraph instead.

    python examples/09_korquad_stride.py [--model DIR] [--max-seq-len 128] [--doc-stride 64]
"""
from __future__ import annotations

import json
from pathlib import Path

from _common import model_dir, parser, setup

QUESTION = "동숲 섬에 몇 명까지 살 수 있음?"
PASSAGE = (
    "이미 존재하던 마을의 주인이 되어 살아가는 기존 작품들에서 나아가, 아무것도 없는 무인도에 초기 주민 둘과 함께 "
    "이주해 처음부터 섬을 개척해 나가는 게임이다. 벌과 나비부터 다량어와 상어에 이르는 다양한 생물을 채집하여 "
    "박물관을 완성해 나가고, 직접 모은 재료를 가공해 만든 도구로 실내와 섬의 이곳저곳을 아름답게 꾸미고, 개성이 "
    "확실한 수많은 동물 주민들과 온라인으로 만난 다른 플레이어들과 교감하며 유유자적한 삶을 보내는 것이 주 "
    "콘텐츠다. 게임 진행에 따라서는 도로나 다리와 같은 큰 규모의 시설을 건설하는 것은 물론 지형까지 마음대로 "
    "수정할 수 있게 되어 마인크래프트나 심즈 시리즈와 각종 건설 경영 시뮬레이션 게임이 부럽지 않은 나만의 공간을 "
    "만들어낼 수도 있다. 시리즈 전통에 따라 플레이어가 거주하는 섬은 게임 계정과 무관하게 본체 1개당 하나로 "
    "제한되어 있으며, 하나의 섬에서 최대 8명까지 함께 생활할 수 있다. 컨트롤러 여러 개를 사용하면 화면을 조작할 "
    "수 있는 권한이 있는 한 명을 중심으로 최대 4명까지 동시에 본체 하나로 멀티플레이가 가능하다. 지원 언어는 "
    "기존의 한국어, 영어, 일본어, 스페인어, 프랑스어, 독일어, 이탈리아어에 더해 네덜란드어, 포르투갈어, 러시아어, "
    "중국어(간체, 번체)가 처음으로 추가되었다. 통신을 통해 친구의 섬에 놀러가거나 친구를 자신의 섬으로 초대하는 "
    "멀티플레이 기능도 존재한다. 로컬 통신이나 인터넷 접속을 통해 최대 동시 8명까지 하나의 섬에서 모여 놀 수 있다.")


def _from_korquad(path: Path) -> tuple[str, str]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    para = max((p for a in data for p in a["paragraphs"]), key=lambda p: len(p["context"]))
    return para["qas"][0]["question"], para["context"]


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], "a QA model (default: a tiny random one)")
    p.add_argument("--max-seq-len", type=int, default=128)
    p.add_argument("--doc-stride", type=int, default=64)
    p.add_argument("--data", default=None, help="a KorQuAD/SQuAD JSON file: use its longest paragraph")
    args = p.parse_args(argv)
    setup(args)
    from bertkit import pipeline
    from bertkit.pipelines.qa import span_candidates
    from bertkit.tasks import QAExample

    question, context = _from_korquad(Path(args.data)) if args.data else (QUESTION, PASSAGE)
    qa = pipeline("question-answering", model=model_dir(args, "BertForQuestionAnswering"), device="cpu")
    task = qa.task(doc_stride=args.doc_stride)
    example = QAExample(id="q", question=question, context=context)
    features = task.encode([example], qa.tokenizer, max_seq_length=min(args.max_seq_len, qa.max_length))
    outputs = task.run_model(qa.model, features, device=qa.device)
    print(f"question: {question}\npassage: {len(context)} characters → {len(features)} windows "
          f"(max_seq_len={args.max_seq_len}, doc_stride={args.doc_stride})")
    windows = []
    for n, ((start_logits, end_logits), feature) in enumerate(zip(outputs, features)):
        tokens = qa.tokenizer.convert_ids_to_tokens(feature["input_ids"])
        first, last = feature["context_offsets"][0][0], feature["context_offsets"][-1][1]
        best = span_candidates(task, start_logits, end_logits, feature)[:1]
        answer, logit = (context[best[0][1]:best[0][2]], best[0][0]) if best else ("", float("-inf"))
        windows.append({"chars": (first, last), "answer": answer, "logit": logit})
        print(f"  window {n}: {' '.join(tokens[:8])} ... chars {first}..{last} → {answer!r} (logit = {logit:.2f})")
    final = qa(question=question, context=context, max_seq_length=args.max_seq_len, doc_stride=args.doc_stride)
    print(f"highest logit over all windows → {final['answer']!r} (logit = {final['logit']:.2f})")
    return {"windows": windows, "answer": final}


if __name__ == "__main__":
    main()
