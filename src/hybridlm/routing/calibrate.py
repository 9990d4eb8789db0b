"""Pick a router threshold for a target on the user's own data, and say how sure that is.

Targets: a share of LLM calls, a mean cost per request, or a minimum quality as a fraction of
the LLM's. The threshold is chosen on one half of the data (calibration) and checked on the
other (held out); a bootstrap over the held-out half gives the 95% interval of what it delivers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Target = Literal["llm_share", "cost", "quality"]


@dataclass(frozen=True)
class Delivered:
    """What routing at a threshold gives on a set of prompts."""

    llm_share: float
    quality: float  # mean quality
    quality_vs_llm: float  # mean quality / the LLM's mean quality
    cost: float  # mean $ per prompt

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 6) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Calibration:
    target: Target
    value: float
    threshold: float
    calibration: Delivered
    held_out: Delivered
    interval: dict[str, tuple[float, float]]  # 95% bootstrap interval per Delivered field
    met_on_held_out: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target, "value": self.value, "threshold": round(self.threshold, 6),
            "calibration": self.calibration.as_dict(), "held_out": self.held_out.as_dict(),
            "ci95": {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in self.interval.items()},
            "met_on_held_out": self.met_on_held_out,
        }


def deliver(scores: np.ndarray, threshold: float, weak_q: np.ndarray, strong_q: np.ndarray,
            weak_c: np.ndarray, strong_c: np.ndarray) -> Delivered:
    to_llm = scores >= threshold
    quality = np.where(to_llm, strong_q, weak_q).mean()
    return Delivered(float(to_llm.mean()), float(quality), float(quality / max(strong_q.mean(), 1e-12)),
                     float(np.where(to_llm, strong_c, weak_c).mean()))


def choose_threshold(scores: np.ndarray, target: Target, value: float, weak_q: np.ndarray, strong_q: np.ndarray,
                     weak_c: np.ndarray, strong_c: np.ndarray) -> float:
    """The threshold that meets the target: fewest LLM calls for share and quality, best quality for cost."""
    if target == "llm_share":
        if value <= 0:
            return float(np.inf)
        return float(np.quantile(scores, 1.0 - min(value, 1.0), method="higher"))
    chosen = float(np.inf)  # nothing to the LLM
    for t in np.concatenate([np.unique(scores)[::-1], [-np.inf]]):  # from few LLM calls to all
        d = deliver(scores, float(t), weak_q, strong_q, weak_c, strong_c)
        if target == "quality" and d.quality_vs_llm >= value:
            return float(t)
        if target == "cost":
            if d.cost > value:
                break
            chosen = float(t)
    return chosen if target == "cost" else float(-np.inf)


def guaranteed_quality_threshold(scores: np.ndarray, value: float, weak_q: np.ndarray, strong_q: np.ndarray,
                                 confidence: float, rng: np.random.Generator, resamples: int = 200) -> float:
    """The highest threshold whose quality / LLM quality stays >= value in `confidence` of bootstrap
    resamples: a one-sided guarantee instead of a point estimate, paid for with more LLM calls."""
    idx = rng.integers(0, len(scores), size=(resamples, len(scores)))
    s, w, q = scores[idx], weak_q[idx], strong_q[idx]
    strong_mean = np.maximum(q.mean(axis=1), 1e-12)
    for t in np.quantile(scores, np.linspace(1.0, 0.0, 201)):
        quality = np.where(s >= t, q, w).mean(axis=1) / strong_mean
        if np.quantile(quality, 1.0 - confidence) >= value:
            return float(t)
    return float(-np.inf)


def _meets(d: Delivered, target: Target, value: float) -> bool:
    if target == "quality":
        return d.quality_vs_llm >= value
    if target == "cost":
        return d.cost <= value
    return abs(d.llm_share - value) <= 0.05


def calibrate(scores: np.ndarray, target: Target, value: float, weak_q: np.ndarray, strong_q: np.ndarray,
              weak_c: np.ndarray, strong_c: np.ndarray, seed: int = 0, resamples: int = 1000,
              guarantee: float | None = None) -> Calibration:
    """`guarantee` (quality targets only): pick the threshold so the target holds with that confidence."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(scores))
    cal, held = order[: len(order) // 2], order[len(order) // 2:]
    arrays = (weak_q, strong_q, weak_c, strong_c)
    if guarantee is not None and target == "quality":
        threshold = guaranteed_quality_threshold(scores[cal], value, weak_q[cal], strong_q[cal], guarantee, rng)
    else:
        threshold = choose_threshold(scores[cal], target, value, *(a[cal] for a in arrays))
    at_cal = deliver(scores[cal], threshold, *(a[cal] for a in arrays))
    at_held = deliver(scores[held], threshold, *(a[held] for a in arrays))
    draws = []
    for _ in range(resamples):
        idx = rng.choice(held, size=len(held), replace=True)
        draws.append(deliver(scores[idx], threshold, *(a[idx] for a in arrays)))
    interval = {}
    for name in ("llm_share", "quality", "quality_vs_llm", "cost"):
        values = np.array([getattr(d, name) for d in draws])
        interval[name] = (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975)))
    field = {"llm_share": "llm_share", "cost": "cost", "quality": "quality_vs_llm"}[target]
    lo, hi = interval[field]
    met = _meets(at_held, target, value) or lo <= value <= hi
    return Calibration(target, value, threshold, at_cal, at_held, interval, met)
