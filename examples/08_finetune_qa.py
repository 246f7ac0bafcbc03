"""Lecture notes, fine-tuning figure 4: extractive question answering.

    [CLS] question [SEP] paragraph [SEP] → R_i for every token →
    P_start(i) = softmax_i(S · R_i),  P_end(i) = softmax_i(E · R_i) → the span start..end

S and E are the two learned vectors (the rows of the QA head `qa_outputs`).  The notes'
example: "면역 체계는 무엇입니까?" → "질병으로부터 보호하는 유기체 내의 다양한 생물학적 구조와 과정의 시스템입니다".
A few steps on this one example teach the model to point at that span.  (The uncased
MiniLM vocab splits Hangul into jamo pieces; a Korean vocab from `bertkit vocab` is far shorter.)

    python examples/08_finetune_qa.py [--model DIR] [--steps 60]
"""
from __future__ import annotations

from _common import finetune_args, model_dir, train_steps, with_new_head

QUESTION = "면역 체계는 무엇입니까?"
CONTEXT = ("면역 체계는 질병으로부터 보호하는 유기체 내의 다양한 생물학적 구조와 과정의 시스템입니다. "
           "제대로 기능하려면 면역 체계가 바이러스에서 기생충에 이르기까지 병원균으로 알려진 다양한 물질을 "
           "탐지하고 유기체의 건강한 조직과 구별해야 합니다.")
ANSWER = "질병으로부터 보호하는 유기체 내의 다양한 생물학적 구조와 과정의 시스템입니다"


def main(argv=None) -> dict:
    args = finetune_args(__doc__, argv, steps=60, lr=2e-4)
    from bertkit import BertForQuestionAnswering, BertTokenizer, pipeline
    from bertkit.tasks import QAExample, QATask

    path = model_dir(args)
    tok = BertTokenizer.from_pretrained(path)
    model = with_new_head(BertForQuestionAnswering, path, num_labels=2)
    start = CONTEXT.index(ANSWER)
    example = QAExample(id="immune", question=QUESTION, context=CONTEXT,
                        answers=[{"text": ANSWER, "answer_start": start}], answer_ok=[True])
    task = QATask()
    features = task.encode([example], tok, max_length=256, training=True)
    batch = task.collate(features)
    s, e = int(batch["start_positions"][0]), int(batch["end_positions"][0])
    print(f"answer tokens {s}..{e}: {tok.convert_ids_to_tokens(features[0]['input_ids'][s:e + 1])[:6]} ...")
    print(f"S and E: the two rows of qa_outputs.weight {tuple(model.qa_outputs.weight.shape)}")
    losses = train_steps(model, [{k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask",
                                                         "start_positions", "end_positions")}], args.steps, lr=args.lr)
    qa = pipeline("question-answering", model=model, tokenizer=tok, device="cpu")
    # uncased MiniLM splits Hangul into jamo pieces, so this answer is ~70 pieces: allow long spans
    result = qa(question=QUESTION, context=CONTEXT, max_answer_length=128)
    print(f"question: {QUESTION}\nanswer:   {result['answer']}  (score {result['score']:.2f})")
    return {"losses": losses, "answer": result["answer"], "expected": ANSWER}


if __name__ == "__main__":
    main()
