"""Lecture notes: self-attention puts context into a token — "a robot must obey the orders given it".

The notes' picture (from The Illustrated GPT-2) shows the query 'it' spreading its attention:
a 0.3, robot 0.5, it 0.19, the others ≈ 0, so the new vector of 'it' is mostly the robot's.
BERT has L layers × A heads of such rows (each a softmax: it sums to 1); this script

* writes every layer and head to attention.png (grid) and attention.html (browse, hover for
  the weights) with `bertkit.apps.viz.save_attention`;
* prints the row of 'it' averaged over the heads of the last layer, and the head that looks
  hardest from 'it' to 'robot', beside the notes' numbers (GPT-2 reads left to right only;
  BERT also sees [CLS], [SEP] and the words after — the rows differ in kind, not only in value);
* does the same for "아이유는 1993년에 태어났다. 그녀는 최근에 드라마 호텔 델루나에 출연했다": how much
  '그녀' (she) attends to '아이유' (--ko-model).

Default --model bert-base-uncased; offline the bundled MiniLM (real, pretrained attention heads).

    python examples/15_attention_it.py [--model bert-base-uncased] [--out runs/examples/attention]
"""
from __future__ import annotations

import numpy as np

from _common import ENGLISH, MULTILINGUAL, NO_KOREAN, minilm, open_model, parser, setup

ROBOT = "a robot must obey the orders given it"
NOTES_ROW = {"a": 0.3, "robot": 0.5, "must": 0.002, "obey": 0.001, "the": 0.0003, "orders": 0.005, "given": 0.002,
             "it": 0.19}
IU = ("아이유는 1993년에 태어났다. 그녀는 최근에 드라마 호텔 델루나에 출연했다", "그녀", "아이유")


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0], default_model=ENGLISH)
    p.add_argument("--ko-model", default=MULTILINGUAL)
    p.add_argument("--out", default="runs/examples/attention", help="folder for attention.png / attention.html")
    p.add_argument("--no-png", action="store_true", help="only the HTML page (no matplotlib needed)")
    args = p.parse_args(argv)
    setup(args)
    from bertkit.apps.viz import attention_maps, save_attention

    path, _ = open_model(args.model, instead="the bundled MiniLM", fallback=minilm, offline=args.offline,
                         consequence="its heads are pretrained too, but not BERT-base's 12 × 12")
    saved = save_attention(ROBOT, path, args.out, png=not args.no_png)
    print(f"wrote {saved['html']}" + (f" and {saved['png']}" if saved["png"] else "") + f"; attention {saved['shape']}")
    maps = attention_maps(ROBOT, path)
    tokens, attn = maps["tokens"], maps["attentions"]                       # [T], [L,A,T,T]
    it, robot = tokens.index("it"), tokens.index("robot")
    mean_row = attn[-1, :, it].mean(0)                                      # [T]: last layer, mean over heads
    layer, head = np.unravel_index(attn[:, :, it, robot].argmax(), attn.shape[:2])
    best_row = attn[layer, head, it]                                        # [T]
    print(f"{'token':>8} {'notes':>7} {'mean, last layer':>17} {f'layer {layer} head {head}':>17}")
    for t, m, b in zip(tokens, mean_row, best_row):
        print(f"{t:>8} {NOTES_ROW.get(t, '-'):>7} {m:17.3f} {b:17.3f}")
    korean = _she(args)
    return {"files": saved, "tokens": tokens, "shape": list(attn.shape), "it_row": mean_row.tolist(),
            "best_head": (int(layer), int(head)), "best_row": best_row.tolist(), "korean": korean}


def _she(args) -> dict:
    """How much '그녀' attends to '아이유': its pieces' rows, summed over 아이유's pieces, best head."""
    from bertkit import BertTokenizer
    from bertkit.apps.viz import attention_maps
    path, _ = open_model(args.ko_model, instead="the bundled MiniLM", fallback=minilm, consequence=NO_KOREAN,
                         offline=args.offline)
    text, she, iu = IU
    enc = BertTokenizer.from_pretrained(path)(text, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    pieces = lambda word: [i for i, (s, e) in enumerate(offsets)                      # noqa: E731
                           if e > s and s < text.index(word) + len(word) and e > text.index(word)]
    attn = attention_maps(text, path)["attentions"]                                    # [L,A,T,T]
    weight = attn[:, :, pieces(she)][:, :, :, pieces(iu)].sum(-1).mean(-1)             # [L,A]
    layer, head = np.unravel_index(weight.argmax(), weight.shape)
    print(f"'{she}' → '{iu}': {float(weight.max()):.3f} of its attention in layer {layer} head {head} "
          f"(mean over all heads and layers {float(weight.mean()):.3f})")
    return {"weight": float(weight.max()), "mean": float(weight.mean()), "head": (int(layer), int(head))}


if __name__ == "__main__":
    main()
