"""Lecture notes: contextual embeddings of "I love Paris" — per token, per sentence, from every layer.

* the last encoder layer gives one vector per token ([CLS] i love paris [SEP]);
* a sentence vector: the [CLS] vector, or (usually better) the mean of the real tokens;
* `output_hidden_states=True` returns the embedding layer's output plus every encoder
  layer's: 13 tensors for a 12-layer BERT-base, 7 for the 6-layer MiniLM.
* context matters: "bank" gets different vectors in "river bank" and "bank account".

    python examples/02_embeddings.py [--model DIR]
"""
from __future__ import annotations

import torch

from _common import model_dir, parser, setup


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--text", default="I love Paris")
    args = p.parse_args(argv)
    setup(args)
    from bertkit import BertModel, BertTokenizer

    path = model_dir(args)
    tok, model = BertTokenizer.from_pretrained(path), BertModel.from_pretrained(path).eval()
    enc = tok([args.text], padding="max_length", max_length=7, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    H = model.config.hidden_size
    print(f"tokens: {tokens}")
    print(f"last_hidden_state: {tuple(out.last_hidden_state.shape)}  = [batch, tokens, hidden={H}]")
    print(f"hidden_states: {len(out.hidden_states)} tensors = embeddings + {model.config.num_hidden_layers} "
          f"encoder layers, each {tuple(out.hidden_states[0].shape)}")
    cls_vec = out.last_hidden_state[0, 0]                                   # [H]
    mask = enc["attention_mask"][0].unsqueeze(-1).float()                   # [T,1]
    mean_vec = (out.last_hidden_state[0] * mask).sum(0) / mask.sum()        # [H]: real tokens only
    print(f"sentence vector ([CLS]):  {[round(x, 4) for x in cls_vec[:4].tolist()]} ...")
    print(f"sentence vector (mean):   {[round(x, 4) for x in mean_vec[:4].tolist()]} ...")
    bank = _bank_similarity(tok, model)
    print(f"'bank' in 'river bank' vs 'bank account': cosine {bank:.3f} (the same word, different contexts)")
    return {"tokens": tokens, "num_hidden_states": len(out.hidden_states), "hidden_size": H,
            "last_shape": tuple(out.last_hidden_state.shape), "bank_cosine": bank}


def _bank_similarity(tok, model) -> float:
    vectors = []
    for sentence in ("we sat on the river bank", "i opened a bank account"):
        enc = tok(sentence, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state[0]                           # [T,H]
        position = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist()).index("bank")
        vectors.append(h[position])
    return float(torch.nn.functional.cosine_similarity(vectors[0], vectors[1], dim=0))


if __name__ == "__main__":
    main()
