"""Lecture notes: one word, two meanings — '사과' is an apple (먹는 과일) and an apology (용서를 빈다).

A static embedding (Word2Vec, GloVe, BERT's own input table) gives '사과' one vector whatever the
sentence: cosine 1 between any two uses.  BERT's output vector of '사과' is computed from the
whole sentence, so the two senses can move apart: same-sense pairs should be more similar than
cross-sense pairs.  '사과' is often split into pieces (사 ##과, or with its particle, 사과 ##를):
its vector is the mean of the output vectors of the pieces that overlap its two characters.

Default --model: bert-base-multilingual-cased (Korean-capable).  Offline, the bundled MiniLM
is used: it was never trained on Korean (its uncased vocab cuts Hangul into jamo), so its
numbers need not separate the senses — the script prints them and says whether they do.

    python examples/14_contextual_sagwa.py [--model bert-base-multilingual-cased] [--layer -1]
"""
from __future__ import annotations

import torch

from _common import MULTILINGUAL, NO_KOREAN, minilm, open_model, parser, setup

WORD = "사과"
# '사과를' everywhere: the same word form, so the same pieces — only the context differs
SENTENCES = [("나는 아침에 사과를 하나 먹었다.", "apple"), ("시장에서 빨간 사과를 한 봉지 샀다.", "apple"),
             ("그는 늦어서 친구에게 사과를 했다.", "apology"), ("정부는 피해자들에게 공식적으로 사과를 했다.", "apology")]


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], default_model=MULTILINGUAL)
    p.add_argument("--layer", type=int, default=-1, help="which hidden state (-1: the last layer, 0: embeddings)")
    args = p.parse_args(argv)
    setup(args)
    from bertkit import BertModel, BertTokenizer

    path, opened = open_model(args.model, instead="the bundled MiniLM", fallback=minilm, consequence=NO_KOREAN,
                              offline=args.offline)
    tok, model = BertTokenizer.from_pretrained(path), BertModel.from_pretrained(path).eval()
    contextual, static = zip(*(word_vectors(tok, model, s, args.layer) for s, _ in SENTENCES))
    ctx, fixed = _cosines(torch.stack(contextual)), _cosines(torch.stack(static))     # [4,4] each
    senses = [sense for _, sense in SENTENCES]
    same = [ctx[i][j] for i in range(4) for j in range(i + 1, 4) if senses[i] == senses[j]]
    cross = [ctx[i][j] for i in range(4) for j in range(i + 1, 4) if senses[i] != senses[j]]
    for i, (sentence, sense) in enumerate(SENTENCES):
        print(f"  {sense:>7}  {sentence:<28} " + " ".join(f"{c:6.3f}" for c in ctx[i]))
    separates = min(same) > max(cross)
    print(f"static (input table) cosine of every pair: {min(min(r) for r in fixed):.3f} (one vector per word)")
    print(f"contextual: same sense {sum(same) / len(same):.3f} (min {min(same):.3f}), "
          f"different sense {sum(cross) / len(cross):.3f} (max {max(cross):.3f}) → "
          + ("the senses separate" if separates else "the senses do NOT separate with this model"
             + ("" if opened else " (expected: MiniLM was never trained on Korean)")))
    return {"opened": opened, "contextual": ctx, "static": fixed, "same": same, "cross": cross,
            "separates": separates, "hidden_size": model.config.hidden_size}


@torch.no_grad()
def word_vectors(tok, model, sentence: str, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(contextual, static) vector of WORD in `sentence`: the mean over the pieces overlapping its characters."""
    start = sentence.index(WORD)
    end = start + len(WORD)
    enc = tok(sentence, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    rows = [i for i, (s, e) in enumerate(offsets) if s < end and e > start and e > s]
    hidden = model(**enc, output_hidden_states=True).hidden_states[layer][0]          # [T,H]
    table = model.embeddings.word_embeddings(enc["input_ids"][0])                      # [T,H]
    return hidden[rows].mean(0), table[rows].mean(0)


def _cosines(vectors: torch.Tensor) -> list[list[float]]:
    unit = torch.nn.functional.normalize(vectors, dim=-1)                              # [N,H]
    return (unit @ unit.T).tolist()


if __name__ == "__main__":
    main()
