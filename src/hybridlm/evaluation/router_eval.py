"""Evaluate routers on outcome data: k-fold (or a given train/test split) or a trained router file.

Two models: RouteLLM's PGR curve, APGR, CPT(50%), CPT(80%), beside random, the oracle and, when
the prompts have categories (MMLU's subjects), routing by the category alone.
More models: RouterBench's AIQ and the cost-quality frontier, beside every single model, a kNN
baseline and the oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hybridlm.evaluation.routing_metrics import CurvePoint, aiq, apgr, cpt, oracle_scores, pgr_curve
from hybridlm.models.encoder import EmbeddingCache, load_encoder
from hybridlm.routing.cascade import CascadeRouter
from hybridlm.routing.learned import (
    Inputs,
    LearnedRouter,
    MultiModelRouter,
    WITHOUT_EMBEDDINGS,
    RandomRouter,
    fit_multi,
    fit_router,
)
from hybridlm.routing.features import feature_matrix
from hybridlm.routing.outcomes import OutcomeSet

COST_WEIGHTS = np.concatenate([[0.0], np.geomspace(1e-3, 10.0, 40)])
CATEGORY_ALONE = "category alone"  # a reference line: does a router learn more than the category?
REFERENCES = ("random", CATEGORY_ALONE, "oracle")
Progress = Callable[[str], None]


@dataclass
class TwoModelResult:
    name: str
    curve: list[CurvePoint]
    apgr: float
    cpt50: float
    cpt80: float

    def metrics(self) -> dict[str, float]:
        return {"apgr": round(self.apgr, 4), "cpt50": round(self.cpt50, 4), "cpt80": round(self.cpt80, 4)}


@dataclass
class MultiModelResult:
    name: str
    points: list[tuple[float, float]]  # (mean cost per prompt, mean quality)
    aiq: float

    def metrics(self) -> dict[str, float]:
        return {"aiq": round(self.aiq, 4)}


@dataclass
class Evaluation:
    data: str
    prompts: int
    models: list[str]
    protocol: str
    two_model: list[TwoModelResult] = field(default_factory=list)
    multi_model: list[MultiModelResult] = field(default_factory=list)
    weak_quality: float = 0.0
    strong_quality: float = 0.0
    max_cost: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The headline metrics (of the first, main router) plus every router's."""
        out: dict[str, Any] = {"data": self.data, "prompts": self.prompts, "protocol": self.protocol}
        if self.two_model:
            out.update(self.two_model[0].metrics())
            out["router"] = self.two_model[0].name
        if self.multi_model:
            out["aiq"] = round(self.multi_model[0].aiq, 4)
            out.setdefault("router", self.multi_model[0].name)
        out["routers"] = {r.name: r.metrics() for r in self.two_model}
        for r in self.multi_model:
            out["routers"].setdefault(r.name, {}).update(r.metrics())
        return out


def embed(outcomes: OutcomeSet, encoder_name: str) -> Inputs:
    cache = EmbeddingCache()
    try:
        E = cache.encode(load_encoder(encoder_name), outcomes.prompts)
    finally:
        cache.close()
    return Inputs(E, feature_matrix(outcomes.prompts))


def kfold_splits(n: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of a shuffled k-fold split; the same seed gives the same folds."""
    parts = np.array_split(np.random.default_rng(seed).permutation(n), folds)
    return [(np.concatenate([p for j, p in enumerate(parts) if j != i]), parts[i]) for i in range(folds)]


def category_prior(data: OutcomeSet, splits: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """Each prompt's category mean gain, learnt on the training side of its split: the score of a
    router that knows the category and nothing else (None when the data has no usable categories)."""
    topics = data.topics()
    if topics is None:
        return None
    labels, gain = np.array(topics), data.gain()
    out = np.zeros(len(data))
    for train, test in splits:
        means = {c: gain[train][labels[train] == c].mean() for c in np.unique(labels[train])}
        out[test] = [means.get(c, gain[train].mean()) for c in labels[test]]
    return out


def _subset(x: Inputs, idx: np.ndarray) -> Inputs:
    return Inputs(x.E[idx], x.F[idx])


def two_model_result(name: str, scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> TwoModelResult:
    curve = pgr_curve(scores, weak, strong)
    wm, sm = float(weak.mean()), float(strong.mean())
    return TwoModelResult(name, curve, apgr(curve, wm, sm), cpt(curve, wm, sm, 0.5), cpt(curve, wm, sm, 0.8))


def multi_points(chosen_per_weight: list[np.ndarray], outcomes: OutcomeSet) -> list[tuple[float, float]]:
    rows = np.arange(len(outcomes))
    return [(float(outcomes.costs[rows, c].mean()), float(outcomes.scores[rows, c].mean()))
            for c in chosen_per_weight]


def multi_result(name: str, points: list[tuple[float, float]], max_cost: float) -> MultiModelResult:
    costs, qualities = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    return MultiModelResult(name, points, aiq(costs, qualities, max_cost))


class RouterEvaluator:
    """Runs the protocol; `kinds` are trained per fold, `routers` are scored as they are."""

    def __init__(self, encoder_name: str, k: int = 50, progress: Progress | None = None) -> None:
        self.encoder_name = encoder_name
        self.k = k
        self.progress = progress or (lambda _: None)

    def _oof(self, kind: str, data: OutcomeSet, x: Inputs | None, splits: list[tuple[np.ndarray, np.ndarray]],
             multi: bool) -> np.ndarray:
        """Out-of-fold outputs: two-model scores (n,), or predicted qualities (n, m) for multi."""
        shape = (len(data), len(data.models)) if multi else (len(data),)
        out = np.zeros(shape)
        for train_idx, test_idx in splits:
            train = data.subset(train_idx)
            xs = _subset(x, train_idx) if x is not None else None
            xt = _subset(x, test_idx) if x is not None else None
            if multi and kind == "random":
                out[test_idx] = np.random.default_rng(len(test_idx)).random((len(test_idx), len(data.models)))
            elif multi:
                assert xs is not None and xt is not None
                router = fit_multi(train, xs, self.encoder_name, self.k)
                if kind == "knn":
                    out[test_idx] = router.knn.raw(xt.E, xt.F)
                else:
                    out[test_idx] = router.predict_quality(xt)
            else:
                out[test_idx] = self._scores(fit_router(kind, train, xs, self.encoder_name, self.k),
                                             data.subset(test_idx), xt)
        return out

    def out_of_fold(self, data: OutcomeSet, kind: str, folds: int = 5, seed: int = 0) -> np.ndarray:
        """Each prompt's two-model score from a router of `kind` trained on the other folds."""
        x = embed(data, self.encoder_name) if kind not in WITHOUT_EMBEDDINGS else None
        return self._oof(kind, data, x, kfold_splits(len(data), folds, seed), multi=False)

    @staticmethod
    def _scores(router: LearnedRouter, data: OutcomeSet, x: Inputs | None) -> np.ndarray:
        """Two-model scores of a router on data: from the draft for a cascade, else from the prompt."""
        if isinstance(router, CascadeRouter):
            weak = data.models[data.pair()[0]]
            if weak not in data.responses:
                raise ValueError(f"{data.name}: a cascade needs the small model's answers, and this data has none")
            return router.score_pairs(data.prompts, data.responses[weak])
        if x is None or isinstance(router, RandomRouter):
            return router.score_texts(data.prompts)
        return router.score_inputs(x)

    def evaluate(self, data: OutcomeSet, kinds: list[str], routers: dict[str, LearnedRouter],
                 folds: int = 5, train: OutcomeSet | None = None, seed: int = 0) -> Evaluation:
        if train is not None:
            combined = OutcomeSet(train.prompts + data.prompts, data.models,
                                  np.vstack([train.scores, data.scores]), np.vstack([train.costs, data.costs]),
                                  train.categories + data.categories, data.name)
            if train.models != data.models:
                raise ValueError(f"train models {train.models} differ from test models {data.models}")
            test_idx = np.arange(len(train), len(combined))
            splits = [(np.arange(len(train)), test_idx)]
            protocol = f"trained on {train.name} ({len(train)}), tested on {data.name} ({len(data)})"
        else:
            combined, test_idx = data, np.arange(len(data))
            splits = kfold_splits(len(data), folds, seed)
            protocol = (f"{folds}-fold cross-validation on {data.name} ({len(data)} prompts)" if kinds
                        else f"router file(s) scored on all {len(data)} prompts of {data.name}, no retraining")
        needs_embeddings = any(k not in WITHOUT_EMBEDDINGS for k in kinds)
        self.progress(f"embedding {len(combined)} prompts with {self.encoder_name}")
        x = embed(combined, self.encoder_name) if needs_embeddings else None

        weak_i, strong_i = data.pair()
        weak, strong = data.scores[:, weak_i], data.scores[:, strong_i]
        result = Evaluation(data.name, len(data), list(data.models), protocol,
                            weak_quality=float(weak.mean()), strong_quality=float(strong.mean()),
                            max_cost=float(data.costs.mean(axis=0).max()))
        multi = len(data.models) > 2
        trained: dict[str, np.ndarray] = {}
        for kind in kinds:
            self.progress(f"training and scoring '{kind}'")
            trained[kind] = self._oof(kind, combined, x, splits, multi)[test_idx]
        for name, router in routers.items():
            self.progress(f"scoring router file '{name}'")
            if multi and isinstance(router, MultiModelRouter):
                trained[name] = router.predict_quality(router.inputs(data.prompts))
            else:
                trained[name] = self._scores(router, data, None)

        order = [*routers, *kinds]
        if multi:
            self._multi(data, order, trained, result)
            return result
        for name in order:
            result.two_model.append(two_model_result(name, trained[name], weak, strong))
        prior = category_prior(combined, splits) if kinds else None
        if prior is not None:
            result.two_model.append(two_model_result(CATEGORY_ALONE, prior[test_idx], weak, strong))
        result.two_model.append(two_model_result("oracle", oracle_scores(weak, strong), weak, strong))
        return result

    def _multi(self, data: OutcomeSet, order: list[str], outputs: dict[str, np.ndarray], result: Evaluation) -> None:
        rel_cost = data.costs.mean(axis=0) / data.costs.mean(axis=0).max()
        for name in order:
            quality = outputs[name]
            if quality.ndim == 2:
                chosen = [np.argmax(quality - w * rel_cost[None, :], axis=1) for w in COST_WEIGHTS]
                result.multi_model.append(multi_result(name, multi_points(chosen, data), result.max_cost))
        oracle = [np.argmax(data.scores - w * rel_cost[None, :], axis=1) for w in COST_WEIGHTS]
        result.multi_model.append(multi_result("oracle", multi_points(oracle, data), result.max_cost))
        for j, model in enumerate(data.models):
            point = [(float(data.costs[:, j].mean()), float(data.scores[:, j].mean()))]
            result.multi_model.append(multi_result(model, point, result.max_cost))
