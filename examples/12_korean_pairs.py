"""Lecture notes: sentence pairs in Korean — NLI (참 / 거짓 / 중립) and STS (similarity 0-5).

    [CLS] 그는 놀고 있다 [SEP] 그는 자고 있다 [SEP] → R_[CLS] → classifier → 거짓 (contradiction)
    segment ids      0 …           0    1 …           1

The notes' NLI samples (전제, 가설, 레이블) and STS-B samples (문장 1, 문장 2, 점수) are fine-tuned
for a few steps: cross-entropy over three classes for NLI, one output and mean squared error
for STS (the same head with num_labels=1).

Which model: --model, by default bert-base-multilingual-cased (Google's multilingual BERT, the
Korean-capable model of the notes), looked up in the Hugging Face cache first and then with one
request to the Hub (no retries; --offline skips it).  When it cannot be opened, a tiny random
BERT over a small Korean vocab trained here shows the mechanics: with a higher learning rate it
learns the six pairs by heart (it cannot understand them).  The script prints the loss at the
start and the end and the answers, and says whether the pairs were fitted.

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
    p = parser(__doc__.splitlines()[0], model_help=f"checkpoint folder, 'minilm' or Hub name (default: {MULTILINGUAL}: "
               "the Hub cache, then one request to the Hub; if it cannot be opened, a tiny random BERT over a "
               "Korean vocab trained here)", default_model=MULTILINGUAL)
    p.add_argument("--steps", type=int, default=None, help="training steps per task (default: 30; 100 for the tiny "
                   "random fall-back)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 5e-5; 2e-3 for the tiny random "
                   "fall-back, which starts from nothing)")
    p.add_argument("--ko-vocab", default=None, help="Korean vocab folder for the offline fall-back")
    args = p.parse_args(argv)
    setup(args)
    from bertkit import BertTokenizer

    path, pretrained = open_model(
        args.model, instead="a tiny random BERT over a Korean vocab trained here",
        fallback=lambda: tiny_random_model("BertModel", vocab_dir=args.ko_vocab or korean_vocab(),
                                           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        consequence="it can learn the six pairs by heart, it cannot understand them", offline=args.offline)
    args.steps = args.steps or (30 if pretrained else 100)
    args.lr = args.lr or (5e-5 if pretrained else 2e-3)
    tok = BertTokenizer.from_pretrained(path)
    a, b, _ = NLI[0]
    enc = tok(a, text_pair=b)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    print("tokens:        ", tokens)
    print("token_type_ids:", enc["token_type_ids"], " (0 = 전제 premise, 1 = 가설 hypothesis)")
    nli = _fit(path, tok, NLI, args, num_labels=3, id2label=dict(enumerate(LABELS)),
               label2id={l: i for i, l in enumerate(LABELS)})
    sts = _fit(path, tok, STS, args, num_labels=1, problem_type="regression")
    fitted = _verdict(nli, sts, args)
    return {"tokens": tokens, "token_type_ids": enc["token_type_ids"], "pieces": _pieces(tok),
            "nli_losses": nli["losses"], "nli_predicted": nli["predicted"],
            "sts_losses": sts["losses"], "sts_scores": sts["predicted"], "fitted": fitted,
            "steps": args.steps, "lr": args.lr}


def _verdict(nli: dict, sts: dict, args) -> bool:
    """Say, from the numbers, whether the six pairs were fitted: every NLI label as the notes',
    every STS score within 0.5 of the notes'."""
    nli_ok = sum(got == y for (_, _, y), got in zip(NLI, nli["predicted"]))
    sts_ok = sum(abs(got - y) < 0.5 for (_, _, y), got in zip(STS, sts["predicted"]))
    fitted = nli_ok == len(NLI) and sts_ok == len(STS)
    print(f"after {args.steps} steps at lr {args.lr:g}: NLI loss {nli['losses'][0]:.4f} → {nli['losses'][-1]:.4f}, "
          f"{nli_ok}/{len(NLI)} labels as the notes; STS loss {sts['losses'][0]:.4f} → {sts['losses'][-1]:.4f}, "
          f"{sts_ok}/{len(STS)} scores within 0.5 of the notes'")
    print("→ the model fits the six training pairs (memorised: these are the pairs it trained on, not a test)"
          if fitted else "→ the model does NOT fit the six pairs yet: raise --steps or --lr")
    return fitted


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
