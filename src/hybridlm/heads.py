"""Small learned models stored as plain arrays: the parts of learned routers, and the scorers of
drafts, retrieved chunks and claims.

Each head turns a prompt's embedding (E) and text features (F) into a raw number; a
`Percentiles` map puts every head on the same [0, 1] scale (its rank among training prompts),
so heads can be averaged and a threshold means the same thing whichever heads are used.
Nothing here is pickled: every head is saved and loaded as named numpy arrays. The logistic
head scores drafts (cascade), retrieved chunks (grading) and claims (fact-checking).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from hybridlm.artifacts import ArtifactError
from hybridlm.extras import require

QUANTILES = np.linspace(0.0, 1.0, 201)


@dataclass
class Percentiles:
    """Raw score -> share of training prompts scoring lower."""

    edges: np.ndarray

    def __post_init__(self) -> None:
        # np.interp needs increasing x; ties among edges collapse to their mean rank (once, not per query)
        self._x, index = np.unique(self.edges, return_inverse=True)
        self._y = np.bincount(index, weights=QUANTILES[: len(self.edges)]) / np.bincount(index)

    @classmethod
    def fit(cls, raw: np.ndarray) -> Percentiles:
        return cls(np.quantile(np.asarray(raw, dtype=np.float64), QUANTILES))

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if len(self._x) == 1:
            return np.full(np.shape(raw), 0.5)
        return np.interp(raw, self._x, self._y)


def standardise(F: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (F - mean) / std


@dataclass
class KNNHead:
    """Mean target of the k most similar training prompts (cosine similarity)."""

    embeddings: np.ndarray  # (n, d) float16 on disk, L2-normalised
    targets: np.ndarray  # (n,) or (n, m)
    k: int

    def __post_init__(self) -> None:
        self._matrix = np.ascontiguousarray(self.embeddings, dtype=np.float32)  # once, not per query

    def neighbours(self, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sims = E.astype(np.float32) @ self._matrix.T
        k = min(self.k, sims.shape[1])
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        return idx, np.take_along_axis(sims, idx, axis=1)

    def raw(self, E: np.ndarray, F: np.ndarray) -> np.ndarray:
        idx, _ = self.neighbours(E)
        return self.targets[idx].mean(axis=1)

    def leave_one_out(self) -> np.ndarray:
        """Training-set scores without each prompt seeing itself, for honest percentiles."""
        out = []
        for start in range(0, len(self._matrix), 1024):
            block = self._matrix[start:start + 1024]
            sims = block @ self._matrix.T
            rows = np.arange(len(block))
            sims[rows, start + rows] = -np.inf
            k = min(self.k, sims.shape[1] - 1)
            idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            out.append(self.targets[idx].mean(axis=1))
        return np.concatenate(out)


@dataclass
class LinearHead:
    """Ridge regression on [embedding, standardised features]; closed form, no solver state."""

    coef: np.ndarray
    intercept: np.ndarray
    feature_mean: np.ndarray
    feature_std: np.ndarray

    @classmethod
    def fit(cls, E: np.ndarray, F: np.ndarray, y: np.ndarray, alpha: float = 10.0,
            feature_scale: float = 0.2) -> LinearHead:
        mean, std = F.mean(axis=0), F.std(axis=0) + 1e-6
        X = np.hstack([E, feature_scale * standardise(F, mean, std)]).astype(np.float64)
        x_mean, y_mean = X.mean(axis=0), y.mean(axis=0)
        Xc, yc = X - x_mean, y - y_mean
        coef = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ yc)
        coef_scaled = coef.copy()
        coef_scaled[E.shape[1]:] *= feature_scale
        return cls(coef_scaled, np.atleast_1d(y_mean - x_mean @ coef), mean, std)

    def raw(self, E: np.ndarray, F: np.ndarray) -> np.ndarray:
        X = np.hstack([E, standardise(F, self.feature_mean, self.feature_std)])
        out = X @ self.coef + self.intercept
        return out


@dataclass
class TopicHead:
    """P(topic | prompt) x the mean target of each topic: what the subject says about difficulty."""

    coef: np.ndarray  # (topics, d)
    intercept: np.ndarray  # (topics,)
    topic_targets: np.ndarray  # (topics,)

    @classmethod
    def fit(cls, E: np.ndarray, topics: list[str], y: np.ndarray, C: float = 10.0) -> TopicHead:
        labels = np.asarray(topics)
        model = require("sklearn.linear_model").LogisticRegression(C=C, max_iter=500).fit(E, labels)
        means = np.array([y[labels == t].mean() for t in model.classes_])
        return cls(model.coef_.astype(np.float32), model.intercept_.astype(np.float32), means)

    def raw(self, E: np.ndarray, F: np.ndarray) -> np.ndarray:
        logits = E @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p @ self.topic_targets


@dataclass
class LogisticHead:
    """Logistic regression on standardised features: a probability from a handful of numbers."""

    coef: np.ndarray
    intercept: np.ndarray
    feature_mean: np.ndarray
    feature_std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, C: float = 1.0, balanced: bool = False) -> LogisticHead:
        """`balanced` weighs both classes equally, however rare one of them is."""
        mean, std = X.mean(axis=0), X.std(axis=0) + 1e-6
        model = require("sklearn.linear_model").LogisticRegression(C=C, max_iter=2000,
                                                                   class_weight="balanced" if balanced else None)
        model.fit(standardise(X, mean, std), y)
        return cls(model.coef_[0].astype(np.float64), model.intercept_.astype(np.float64), mean, std)

    def probability(self, X: np.ndarray) -> np.ndarray:
        z = standardise(X, self.feature_mean, self.feature_std) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's push on the log-odds, for explanations."""
        return standardise(X, self.feature_mean, self.feature_std) * self.coef

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{f.name}": np.asarray(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_arrays(cls, path: Path, arrays: dict[str, np.ndarray], prefix: str) -> LogisticHead:
        try:
            return cls(**{f.name: arrays[f"{prefix}.{f.name}"] for f in fields(cls)})
        except KeyError as err:
            raise ArtifactError(f"{path}: lacks array {err}") from None


Head = KNNHead | LinearHead | TopicHead
