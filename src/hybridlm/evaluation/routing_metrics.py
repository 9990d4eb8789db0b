"""The field's routing metrics, defined exactly as published so figures compare.

Two models (RouteLLM): thresholds at the deciles of the router's scores; at each, the share of
calls to the strong model and the mean quality. PGR = (quality - weak) / (strong - weak);
APGR = trapezoid area under that curve normalised the same way; CPT(x) = the strong-call share
at which quality first reaches weak + x (strong - weak), read off the curve by interpolation.

Many models (RouterBench): AIQ = area under the non-decreasing convex hull of a router's
(cost, quality) points, extended flat to the largest cost, divided by that cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CurvePoint:
    strong_share: float  # in [0, 1]
    quality: float
    threshold: float


def pgr_curve(router_scores: np.ndarray, weak_quality: np.ndarray, strong_quality: np.ndarray,
              num_results: int = 10) -> list[CurvePoint]:
    """RouteLLM's sweep: `num_results + 1` thresholds at the score quantiles; the last routes nothing."""
    scores = np.asarray(router_scores, dtype=float)
    thresholds = np.quantile(scores, np.linspace(0.0, 1.0, num_results + 1))
    points = []
    for i, t in enumerate(thresholds):
        to_strong = scores > t if i == len(thresholds) - 1 else scores >= t
        quality = np.where(to_strong, strong_quality, weak_quality).mean()
        points.append(CurvePoint(float(to_strong.mean()), float(quality), float(t)))
    return sorted(points, key=lambda p: p.strong_share)


def _xy(curve: list[CurvePoint]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([p.strong_share for p in curve]), np.array([p.quality for p in curve])


def apgr(curve: list[CurvePoint], weak_mean: float, strong_mean: float) -> float:
    x, y = _xy(curve)
    area = np.trapezoid(y, x)
    weak_area = np.trapezoid(np.full_like(x, weak_mean), x)
    strong_area = np.trapezoid(np.full_like(x, strong_mean), x)
    return float((area - weak_area) / (strong_area - weak_area))


def cpt(curve: list[CurvePoint], weak_mean: float, strong_mean: float, fraction: float) -> float:
    """Share of strong calls needed to recover `fraction` of the quality gap (np.interp, as RouteLLM)."""
    x, y = _xy(curve)
    target = weak_mean + fraction * (strong_mean - weak_mean)
    return float(np.interp(target, y, x))


def oracle_scores(weak_quality: np.ndarray, strong_quality: np.ndarray) -> np.ndarray:
    """A router that knows the outcomes: the strong model's gain, ties broken by nothing."""
    return np.asarray(strong_quality, dtype=float) - np.asarray(weak_quality, dtype=float)


def nondecreasing_hull(costs: np.ndarray, qualities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper convex hull of the points, cut where quality stops rising."""
    order = np.lexsort((-np.asarray(qualities), np.asarray(costs)))
    pts = [(float(costs[i]), float(qualities[i])) for i in order]
    hull: list[tuple[float, float]] = []
    for p in pts:
        if hull and p[0] == hull[-1][0]:
            continue  # same cost, lower quality (sorted so the best came first)
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()  # hull[-1] lies under the segment hull[-2] -> p
            else:
                break
        hull.append(p)
    best = int(np.argmax([q for _, q in hull]))
    hull = hull[: best + 1]
    return np.array([c for c, _ in hull]), np.array([q for _, q in hull])


def aiq(costs: np.ndarray, qualities: np.ndarray, max_cost: float) -> float:
    """Area under the non-decreasing hull, extended flat to `max_cost`, divided by `max_cost`."""
    hc, hq = nondecreasing_hull(np.asarray(costs, float), np.asarray(qualities, float))
    if max_cost < hc[-1] * (1 - 1e-9):
        raise ValueError(f"max_cost {max_cost} is below a point's cost {hc[-1]}")
    max_cost = max(max_cost, float(hc[-1]))
    area = float(np.trapezoid(hq, hc)) + float(hq[-1]) * (max_cost - float(hc[-1]))
    return area / max_cost
