"""Lecture notes: contextual embeddings of "I love Paris" — per token, per sentence, from every layer.

* the last encoder layer gives one vector per token ([CLS] i love paris [SEP]), 768 numbers
  each for BERT-base (the default --model, bert-base-uncased);
* a sentence vector: the [CLS] vector, or (usually better) the mean of the real tokens;
* `output_hidden_states=True` returns the embedding layer's output plus every encoder
  layer's: 13 tensors for the 12-layer BERT-base, 7 for the 6-layer MiniLM (the offline fall-back);
* BERT's three embedding tables: WordPiece [30522, H], position [512, H] (learned, not
  sinusoidal), segment [2, H] — the notes' quiz: with H = 768 the segment table is 2 × 768;
* context matters: "bank" gets different vectors in "river bank" and "bank account".

    python examples/02_embeddings.py [--model bert-base-uncased]
"""
from __future__ import annotations

import torch

from _common import ENGLISH, english_model, parser, setup


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], default_model=ENGLISH)
    p.add_argument("--text", default="I love Paris")
    args = p.parse_args(argv)
    setup(args)
    from bertkit import BertModel, BertTokenizer

    path, _ = english_model(args, "6 layers and H=384 instead of BERT-base's 12 and 768", hint="")
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
    tables = embedding_tables(model)
    bank = _bank_similarity(tok, model)
    print(f"'bank' in 'river bank' vs 'bank account': cosine {bank:.3f} (the same word, different contexts)")
    return {"tokens": tokens, "num_hidden_states": len(out.hidden_states), "hidden_size": H,
            "last_shape": tuple(out.last_hidden_state.shape), "bank_cosine": bank, "tables": tables}


def embedding_tables(model) -> dict:
    """The three learned embedding tables and their shapes (the notes' quiz: segment = 2 × H)."""
    emb = model.embeddings
    tables = {"wordpiece": tuple(emb.word_embeddings.weight.shape),           # [V,H]
              "position": tuple(emb.position_embeddings.weight.shape),        # [512,H]
              "segment": tuple(emb.token_type_embeddings.weight.shape)}       # [2,H]
    for name, shape in tables.items():
        print(f"{name:>9} embedding table: {shape}")
    print(f"quiz: with H = 768 the segment table is (2, 768); this model's: {tables['segment']}")
    return tables


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
