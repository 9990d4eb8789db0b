"""A sentence encoder tuned to one company's intents, and the out-of-scope distance in its space.

Tuning the encoder on the labelled intents (cross-entropy through a linear head) pulls each
intent's messages together and apart from the others. In that space the Mahalanobis distance to
the nearest intent's centre tells out-of-scope messages apart better than a frozen encoder's
confidence does (docs/BENCHMARKS.md). It costs minutes of CPU per thousand examples, once, at
training time; the tuned weights travel inside the intent model file.

The encoder is MiniLM (shipped with the package) unless a local sentence-transformers folder is
named: a larger one, such as all-mpnet-base-v2, tunes several times slower and is more accurate
with few examples per intent (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybridlm.extras import require
from hybridlm.models.encoder import load_transformer, pool

TUNED = "tuned"  # the encoder named in a model file: tuned, weights in the file
BASE = "base"  # a named encoder folder, used as it is
MAX_TOKENS = 64
BATCH = 32
ENCODER_LEARNING_RATE = 5e-5
HEAD_LEARNING_RATE = 1e-2
WARMUP = 0.1  # share of the steps with a rising learning rate
LOGIT_SCALE = 5.0  # unit vectors into the head: scaled so its softmax can become sure
SHRINKAGE = 1e-3  # added to the covariance's diagonal: hundreds of dimensions, few examples per intent


def tune_encoder(texts: Sequence[str], labels: Sequence[str], epochs: int, base: Path | None = None, seed: int = 0,
                 progress: Callable[[int, float], None] | None = None) -> dict[str, np.ndarray]:
    """The weights of the encoder (`base`, else MiniLM) tuned to tell `labels` apart (float16, for a
    smaller file)."""
    torch = require("torch")
    torch.manual_seed(seed)
    tokenizer, transformer = load_transformer(base)
    classes = sorted(set(labels))
    targets = torch.tensor([classes.index(label) for label in labels])
    head = torch.nn.Linear(transformer.config.hidden_size, len(classes))
    optimiser = torch.optim.AdamW([{"params": transformer.parameters(), "lr": ENCODER_LEARNING_RATE},
                                   {"params": head.parameters(), "lr": HEAD_LEARNING_RATE}], weight_decay=0.01)
    steps = max(1, epochs * -(-len(texts) // BATCH))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, step / (WARMUP * steps)) * max(0.0, 1.0 - step / steps))
    transformer.train()
    for epoch in range(epochs):
        loss = torch.zeros(())
        for batch_rows in torch.randperm(len(texts)).split(BATCH):
            batch = tokenizer([texts[i] for i in batch_rows], padding=True, truncation=True,
                              max_length=MAX_TOKENS, return_tensors="pt")
            vectors = pool(transformer(**batch).last_hidden_state, batch["attention_mask"])
            loss = torch.nn.functional.cross_entropy(head(vectors * LOGIT_SCALE), targets[batch_rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        if progress:
            progress(epoch + 1, loss.item())
    return {name: tensor.detach().numpy().astype(np.float16)
            for name, tensor in transformer.state_dict().items()}


@dataclass(frozen=True)
class OutlierDistance:
    """Squared Mahalanobis distance to the nearest intent's centre, one covariance shared by all."""

    means: np.ndarray  # (intents, dims)
    precision: np.ndarray  # inverse of the shared covariance, (dims, dims)

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: Sequence[str]) -> OutlierDistance:
        labels_array = np.asarray(labels)
        classes = sorted(set(labels_array.tolist()))
        means = np.stack([vectors[labels_array == c].mean(axis=0) for c in classes])
        residuals = vectors - means[np.searchsorted(classes, labels_array)]
        covariance = residuals.T @ residuals / len(residuals) + SHRINKAGE * np.eye(vectors.shape[1])
        return cls(means.astype(np.float32), np.linalg.inv(covariance).astype(np.float32))

    def distance(self, vectors: np.ndarray) -> np.ndarray:
        projected = vectors @ self.precision
        squared = ((projected * vectors).sum(axis=1)[:, None] - 2 * projected @ self.means.T
                   + ((self.means @ self.precision) * self.means).sum(axis=1)[None, :])
        return squared.min(axis=1)
