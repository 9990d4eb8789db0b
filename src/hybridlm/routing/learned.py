"""Routers learned from outcome data.

- `knn`: the strong model's mean gain over the k most similar training prompts.
- `ensemble` (the default): kNN, a topic model and a ridge model on embedding + text shape,
  each put on a percentile scale and averaged; the score is how much this prompt looks like
  the ones where the large model did better.
- `multi`: predicted quality of every model; picks the best value for money (RouterBench style).
- `cascade`: the small model drafts, a verifier reads the draft and escalates (see cascade.py).
- `random`: a reference line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm.artifacts import ArtifactError
from hybridlm.heads import Head, KNNHead, LinearHead, Percentiles, TopicHead
from hybridlm.models.encoder import Encoder, EncoderError, load_encoder
from hybridlm.models.encoder import encoder_name as resolve_encoder  # `encoder_name` names parameters here
from hybridlm.routing import artifact
from hybridlm.routing.base import Score, last_user_text
from hybridlm.routing.cascade import CascadeRouter, fit_cascade
from hybridlm.routing.features import feature_matrix
from hybridlm.routing.outcomes import OutcomeSet
from hybridlm.types import Message

DEFAULT_KIND = "ensemble"
DEFAULT_ENCODER = "minilm-static"
DEFAULT_K = 50
INLINE_NEIGHBOURS = 10_000  # training prompts a query is compared with, at most, for a score cheaper than the hop


@dataclass
class Component:
    name: str
    head: Head
    weight: float
    scale: Percentiles


@dataclass
class Inputs:
    """A batch of prompts as the heads see them."""

    E: np.ndarray
    F: np.ndarray

    @classmethod
    def of(cls, encoder: Encoder, texts: Sequence[str]) -> Inputs:
        return cls(encoder.encode(texts), feature_matrix(texts))


class EncoderRouter:
    """Shared by the learned routers: the encoder (loaded on first use), scoring and saving."""

    kind = "base"

    def __init__(self, encoder_name: str, header: dict[str, Any], encoder: Encoder | None = None) -> None:
        self.encoder_name = encoder_name
        self.header = header
        self._encoder = encoder

    @property
    def name(self) -> str:
        return self.kind

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.encoder_name)
        return self._encoder

    @property
    def cheap(self) -> bool:
        """Scored on the event loop, no worker hop: with a static encoder and a small neighbour search a
        score costs about 0.15 ms, less than the hop to a worker and back, and at 32 clients the hop's
        contention for the interpreter lock cost more than the score (see docs/BENCHMARKS.md)."""
        return getattr(self.encoder, "cheap", False) and self.neighbour_rows() <= INLINE_NEIGHBOURS

    def neighbour_rows(self) -> int:
        """How many training prompts each query is compared with."""
        return 0

    def inputs(self, texts: Sequence[str]) -> Inputs:
        return Inputs.of(self.encoder, texts)

    def score_inputs(self, x: Inputs) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.score_inputs")

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.score_inputs(self.inputs(texts))

    def _base_header(self) -> dict[str, Any]:
        return {**self.header, "kind": self.kind, "encoder": self.encoder_name}


class TwoModelRouter(EncoderRouter):
    """Scores in [0, 1]: the weighted mean of its components' percentiles."""

    def __init__(self, kind: str, encoder_name: str, components: list[Component], header: dict[str, Any],
                 encoder: Encoder | None = None) -> None:
        super().__init__(encoder_name, header, encoder)
        self.kind = kind
        self.components = components

    def neighbour_rows(self) -> int:
        return sum(len(c.head.embeddings) for c in self.components if isinstance(c.head, KNNHead))

    def parts(self, x: Inputs) -> dict[str, np.ndarray]:
        total = sum(c.weight for c in self.components)
        return {c.name: c.weight / total * c.scale(c.head.raw(x.E, x.F)) for c in self.components}

    def score_inputs(self, x: Inputs) -> np.ndarray:
        return np.sum(list(self.parts(x).values()), axis=0)

    def score(self, messages: list[Message]) -> Score:
        text = last_user_text(messages)
        x = self.inputs([text])
        parts = {name: round(float(v[0]), 4) for name, v in self.parts(x).items()}
        evidence = {}
        knn = next((c for c in self.components if isinstance(c.head, KNNHead)), None)
        if knn is not None:
            idx, sims = knn.head.neighbours(x.E)
            gains = knn.head.targets[idx[0]]
            evidence[knn.name] = [f"{len(gains)} similar prompts: large model better on {np.mean(gains > 0):.0%}, "
                                  f"small better on {np.mean(gains < 0):.0%}"]
        return Score(round(float(sum(parts.values())), 4), parts, evidence)

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        specs = []
        for c in self.components:
            head_arrays, params = artifact.head_arrays(c.name, c.head)
            arrays.update(head_arrays)
            arrays[f"{c.name}.percentiles"] = c.scale.edges
            specs.append({"name": c.name, "type": artifact.head_type(c.head), "weight": c.weight, "params": params})
        artifact.save(path, {**self._base_header(), "components": specs}, arrays)


class MultiModelRouter(EncoderRouter):
    """Predicts each model's quality (kNN and ridge, averaged) and picks by quality minus cost."""

    kind = "multi"

    def __init__(self, encoder_name: str, models: list[str], mean_costs: np.ndarray, knn: KNNHead,
                 linear: LinearHead, scale: Percentiles, header: dict[str, Any], encoder: Encoder | None = None,
                 cost_weight: float = 0.0) -> None:
        super().__init__(encoder_name, header, encoder)
        self.models = models
        self.mean_costs = mean_costs
        self.knn = knn
        self.linear = linear
        self.scale = scale
        self.cost_weight = cost_weight

    def neighbour_rows(self) -> int:
        return len(self.knn.embeddings)

    def predict_quality(self, x: Inputs) -> np.ndarray:
        return (self.knn.raw(x.E, x.F) + self.linear.raw(x.E, x.F)) / 2.0

    def choose(self, quality: np.ndarray, cost_weight: float) -> np.ndarray:
        """Index of the model with the best predicted quality minus cost_weight x relative cost."""
        relative_cost = self.mean_costs / self.mean_costs.max()
        return np.argmax(quality - cost_weight * relative_cost[None, :], axis=1)

    def _headroom(self, quality: np.ndarray) -> np.ndarray:
        cheapest = int(np.argmin(self.mean_costs))
        return quality.max(axis=1) - quality[:, cheapest]

    def score_inputs(self, x: Inputs) -> np.ndarray:
        """For two-tier use: how much better than the cheapest model the best one is predicted to be."""
        return self.scale(self._headroom(self.predict_quality(x)))

    def score(self, messages: list[Message]) -> Score:
        x = self.inputs([last_user_text(messages)])
        quality = self.predict_quality(x)
        pick = self.models[int(self.choose(quality, self.cost_weight)[0])]
        value = float(self.scale(self._headroom(quality))[0])
        evidence = {"predicted_quality": [f"{m}={q:.2f}" for m, q in zip(self.models, quality[0], strict=True)],
                    "pick": [pick]}
        return Score(round(value, 4), {"quality_headroom": round(value, 4)}, evidence)

    def save(self, path: Path) -> None:
        arrays = {"models.mean_costs": self.mean_costs, "quality.percentiles": self.scale.edges}
        knn_arrays, knn_params = artifact.head_arrays("knn", self.knn)
        linear_arrays, _ = artifact.head_arrays("linear", self.linear)
        arrays.update(knn_arrays)
        arrays.update(linear_arrays)
        artifact.save(path, {**self._base_header(), "models": self.models, "knn_params": knn_params,
                             "cost_weight": self.cost_weight}, arrays)


@dataclass
class RandomRouter:
    """A stable pseudo-random score per prompt: the line every router must beat."""

    seed: int = 0
    header: dict[str, Any] = field(default_factory=dict)
    kind = "random"
    name = "random"

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([int.from_bytes(hashlib.sha1(f"{self.seed}:{t}".encode()).digest()[:8], "big") / 2**64
                         for t in texts])

    def score(self, messages: list[Message]) -> Score:
        value = float(self.score_texts([last_user_text(messages)])[0])
        return Score(round(value, 4), {"random": round(value, 4)})

    def save(self, path: Path) -> None:
        artifact.save(path, {**self.header, "kind": self.kind, "seed": self.seed}, {})


LearnedRouter = TwoModelRouter | MultiModelRouter | RandomRouter | CascadeRouter


# ---- training ---------------------------------------------------------------------------------


def _header(outcomes: OutcomeSet) -> dict[str, Any]:
    weak, strong = outcomes.pair()
    return {"trained_on": {"name": outcomes.name, "prompts": len(outcomes), "models": outcomes.models},
            "weak": outcomes.models[weak], "strong": outcomes.models[strong]}


def fit_knn_component(name: str, x: Inputs, y: np.ndarray, k: int, weight: float = 1.0) -> Component:
    head = KNNHead(x.E.astype(np.float16), y.astype(np.float32), k)
    return Component(name, head, weight, Percentiles.fit(head.leave_one_out()))


def fit_two_model(kind: str, outcomes: OutcomeSet, x: Inputs, encoder_name: str, k: int = DEFAULT_K,
                  encoder: Encoder | None = None) -> TwoModelRouter:
    gain = outcomes.gain()
    components = [fit_knn_component("neighbours", x, gain, k)]
    if kind == "ensemble":
        linear = LinearHead.fit(x.E, x.F, gain)
        components.append(Component("shape", linear, 1.0, Percentiles.fit(linear.raw(x.E, x.F))))
        topics = outcomes.topics()
        if topics is not None:
            topic = TopicHead.fit(x.E, topics, gain)
            components.append(Component("topic", topic, 1.0, Percentiles.fit(topic.raw(x.E, x.F))))
    return TwoModelRouter(kind, encoder_name, components, _header(outcomes), encoder)


def fit_multi(outcomes: OutcomeSet, x: Inputs, encoder_name: str, k: int = DEFAULT_K,
              encoder: Encoder | None = None) -> MultiModelRouter:
    knn = KNNHead(x.E.astype(np.float16), outcomes.scores.astype(np.float32), k)
    linear = LinearHead.fit(x.E, x.F, outcomes.scores)
    router = MultiModelRouter(encoder_name, list(outcomes.models), outcomes.costs.mean(axis=0), knn, linear,
                              Percentiles(np.zeros(1)), _header(outcomes), encoder)
    router.scale = Percentiles.fit(router._headroom(router.predict_quality(x)))
    return router


KINDS = ("ensemble", "knn", "multi", "cascade", "random")
WITHOUT_EMBEDDINGS = ("cascade", "random")  # they read the draft or nothing, not the prompt's embedding


def fit_router(kind: str, outcomes: OutcomeSet, x: Inputs | None, encoder_name: str, k: int = DEFAULT_K,
               encoder: Encoder | None = None) -> LearnedRouter:
    if kind == "random":
        return RandomRouter(header=_header(outcomes))
    if kind == "cascade":
        return fit_cascade(outcomes)
    assert x is not None
    if kind == "multi":
        return fit_multi(outcomes, x, encoder_name, k, encoder)
    if kind in ("ensemble", "knn"):
        return fit_two_model(kind, outcomes, x, encoder_name, k, encoder)
    raise ValueError(f"unknown router kind '{kind}'; known: {', '.join(KINDS)}")


# ---- loading ----------------------------------------------------------------------------------


def load_router(path: str | Path) -> LearnedRouter:
    p = Path(path)
    header, arrays = artifact.load(p)
    kind = header.get("kind")
    try:
        if kind == "random":
            return RandomRouter(int(header.get("seed", 0)), header)
        if kind == "cascade":
            return CascadeRouter.load(p, header, arrays)
        try:
            encoder = resolve_encoder(str(header["encoder"]))
        except EncoderError:
            raise ArtifactError(f"{p}: this router reads prompts with the encoder '{header['encoder']}', which is "
                                "not here (neither built in nor a folder on this machine); put the folder back "
                                "or train the router again") from None
        if kind in ("ensemble", "knn"):
            components = []
            for spec in header["components"]:
                head, scale = artifact.build_head(p, spec, arrays)
                components.append(Component(spec["name"], head, float(spec["weight"]), scale))
            return TwoModelRouter(kind, encoder, components, header)
        if kind == "multi":
            knn, _ = artifact.build_head(p, {"name": "knn", "type": "knn", "params": header["knn_params"]},
                                         {**arrays, "knn.percentiles": arrays["quality.percentiles"]})
            linear, _ = artifact.build_head(p, {"name": "linear", "type": "linear"},
                                            {**arrays, "linear.percentiles": arrays["quality.percentiles"]})
            return MultiModelRouter(encoder, list(header["models"]), arrays["models.mean_costs"], knn,  # type: ignore[arg-type]
                                    linear, Percentiles(arrays["quality.percentiles"]), header,  # type: ignore[arg-type]
                                    cost_weight=float(header.get("cost_weight", 0.0)))
    except KeyError as err:
        raise ArtifactError(f"{p}: router file lacks {err}") from None
    raise ArtifactError(f"{p}: unknown router kind {kind!r}")
