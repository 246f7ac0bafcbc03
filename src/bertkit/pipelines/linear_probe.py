"""The feature-based route of the lecture notes: a frozen BERT makes sentence vectors, a
separate small classifier learns from them.

Fine-tuning updates every weight of BERT for the task.  The other route the BERT paper
tried (its feature-based experiments on NER) keeps BERT frozen and trains only a small
model on top of its vectors.  Here that model is multinomial logistic regression on
mean-pooled sentence vectors:

    probe = LinearProbe(model="minilm").fit(train_texts, train_labels)
    probe.predict(["a gorgeous, witty film"])      # → ["1"]
    probe.score(valid_texts, valid_labels)         # accuracy

Cheap: every text goes through BERT once (no backward pass, no epochs over BERT), and the
classifier is fitted in seconds with L-BFGS.  `bertkit finetune --freeze-encoder` is the
same idea inside the fine-tuning loop (BERT frozen, the usual head trained by AdamW).
`bench/bench_frozen.py` compares the three on the same split (score and time).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from bertkit.common.errors import InputError
from bertkit.pipelines.similarity import SentenceSimilarityPipeline


def logistic_regression(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float = 1e-3,
                        steps: int = 200) -> torch.nn.Linear:
    """Multinomial logistic regression (softmax + cross-entropy + L2), fitted with L-BFGS.

    x [N, H] features, y [N] class ids → a Linear(H, C) layer whose softmax gives probabilities.
    """
    layer = torch.nn.Linear(x.shape[1], num_classes)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(x), y) + l2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return layer


class LinearProbe:
    """Frozen BERT sentence vectors (mean-pooled, normalised) + logistic regression."""

    def __init__(self, model="minilm", l2: float = 1e-3, batch_size: int = 64, device=None, **pipeline_options):
        self.encoder = SentenceSimilarityPipeline(model=model, device=device, batch_size=batch_size,
                                                  **pipeline_options)
        self.l2 = l2
        self.labels: list[str] = []
        self.classifier: torch.nn.Linear | None = None

    def vectors(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.from_numpy(self.encoder.embed(list(texts)))              # [N, H]

    def fit(self, texts: Sequence[str], labels: Sequence) -> "LinearProbe":
        if len(texts) != len(labels) or not texts:
            raise InputError(f"fit needs as many labels as texts (got {len(texts)} texts, {len(labels)} labels)")
        self.labels = sorted({str(label) for label in labels})
        if len(self.labels) < 2:
            raise InputError(f"fit needs at least two different labels, got {self.labels}")
        y = torch.tensor([self.labels.index(str(label)) for label in labels])
        self.classifier = logistic_regression(self.vectors(texts), y, len(self.labels), self.l2)
        return self

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.classifier is None:
            raise InputError("call fit(texts, labels) before predict")
        return torch.softmax(self.classifier(self.vectors(texts)), dim=-1).numpy()    # [N, C]

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts).argmax(-1)]

    def score(self, texts: Sequence[str], labels: Sequence) -> float:
        """Accuracy on (texts, labels)."""
        return float(np.mean([p == str(g) for p, g in zip(self.predict(texts), labels)]))
