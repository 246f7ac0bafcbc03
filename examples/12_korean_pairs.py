"""Lecture notes: sentence pairs in Korean — NLI (참 / 거짓 / 중립) and STS (similarity 0-5).

    [CLS] 그는 놀고 있다 [SEP] 그는 자고 있다 [SEP] → R_[CLS] → classifier → 거짓 (contradiction)
    segment ids      0 …           0    1 …           1

The notes' NLI samples (전제, 가설, 레이블) and STS-B samples (문장 1, 문장 2, 점수) are fine-tuned
for a few steps: cross-entropy over three classes for NLI, one output and mean squared error
for STS (the same head with num_labels=1).  Default --model: bert-base-multilingual-cased
(Google's multilingual BERT, the Korean-capable model of the notes).  Offline, a tiny random
BERT over a small Korean vocab trained here shows the mechanics (it can fit six pairs, it
cannot understand them).

    python examples/12_korean_pairs.py [--model bert-base-multilingual-cased] [--steps 30]
"""
from __future__ import annotations

import torch

from _common import MULTILINGUAL, korean_vocab, open_model, parser, setup, tiny_random_model, train_steps, \
    with_new_head

NLI = [("그는 놀고 있다", "그는 자고 있다", "거짓"),
       ("여러 남성이 플레이하는 축구 게임", "몇몇 남자들이 스포츠를 하고 있다", "참"),
       ("웃고 있는 노인과 청년", "두 남자가 바닥에서 놀고 있는 강아지들을 보고 웃고 있다", "중립")]
LABELS = ["참", "거짓", "중립"]            # entailment, contradiction, neutral
STS = [("비행기가 이륙하고 있습니다.", "비행기가 이륙하고 있습니다.", 5.0),
       ("여자가 뭔가를 먹고 있어요.", "여자가 고기를 먹고 있어요.", 3.0),
       ("여자가 춤을 추고 있어요.", "한 남자가 말하고 있습니다.", 0.0)]


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], default_model=MULTILINGUAL)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--ko-vocab", default=None, help="Korean vocab folder for the offline fall-back")
    args = p.parse_args(argv)
    setup(args)
    from bertkit import BertTokenizer

    path, _ = open_model(args.model, instead="a tiny random BERT over a Korean vocab trained here",
                         fallback=lambda: tiny_random_model("BertModel", vocab_dir=args.ko_vocab or korean_vocab()),
                         consequence="it fits the six pairs, it does not understand them", offline=args.offline)
    tok = BertTokenizer.from_pretrained(path)
    a, b, _ = NLI[0]
    enc = tok(a, text_pair=b)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    print("tokens:        ", tokens)
    print("token_type_ids:", enc["token_type_ids"], " (0 = 전제 premise, 1 = 가설 hypothesis)")
    nli = _fit(path, tok, NLI, args, num_labels=3, id2label=dict(enumerate(LABELS)),
               label2id={l: i for i, l in enumerate(LABELS)})
    sts = _fit(path, tok, STS, args, num_labels=1, problem_type="regression")
    return {"tokens": tokens, "token_type_ids": enc["token_type_ids"], "pieces": _pieces(tok),
            "nli_losses": nli["losses"], "nli_predicted": nli["predicted"],
            "sts_losses": sts["losses"], "sts_scores": sts["predicted"]}


def _fit(path, tok, rows, args, **config) -> dict:
    """Fine-tune a fresh pair head on `rows` (text, pair, gold), then read the pipeline's answers."""
    from bertkit import BertForSequenceClassification, pipeline
    regression = config.get("num_labels") == 1
    print("STS (1 output, mean squared error):" if regression else "NLI (3 classes, cross-entropy):")
    model = with_new_head(BertForSequenceClassification, path, **config)
    batch = dict(tok([a for a, _, _ in rows], text_pair=[b for _, b, _ in rows], padding=True, return_tensors="pt"))
    gold = [y for _, _, y in rows]
    batch["labels"] = torch.tensor(gold, dtype=torch.float) if regression else torch.tensor([LABELS.index(y) for y in gold])
    losses = train_steps(model, [batch], args.steps, lr=args.lr)
    clf = pipeline("text-classification", model=model, tokenizer=tok, device="cpu")
    predicted = [clf({"text": a, "text_pair": b})["score" if regression else "label"] for a, b, _ in rows]
    for (a, b, y), got in zip(rows, predicted):
        print(f"  {a} / {b}: notes {y}, ours {got:.2f}" if regression else f"  {a} / {b}: notes {y}, ours {got}")
    return {"losses": losses, "predicted": predicted}


def _pieces(tok) -> dict[str, list[str]]:
    """Every sentence of the notes, as word pieces."""
    return {s: tok.tokenize(s) for rows in (NLI, STS) for a, b, _ in rows for s in (a, b)}


if __name__ == "__main__":
    main()
