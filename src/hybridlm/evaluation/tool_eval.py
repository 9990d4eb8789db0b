"""Function calling on BFCL: the local model alone, and the tool router in front of it.

Each BFCL item goes to the local backend exactly as a gateway request would (its functions as
`tools`, `tool_choice: auto`), and BFCL's AST rule judges the calls. The same draft then goes
through the tool router: the reasons to skip the small model, and the verifier of its draft.
The verifier is fitted on outcomes like these, so its figures here are out-of-fold (k-fold: each
item is scored by a verifier fitted on the other folds), unless a fixed verifier file is given.

Outcomes are appended to a JSONL file as they come, so a long run can stop and resume, and the
router can be studied again without running the model.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm.evaluation.bfcl import BfclItem, check
from hybridlm.extras import require
from hybridlm.models.base import ChatBackend, GenerationParams
from hybridlm.routing.tools import ToolRouter, Verifier, draft_signals
from hybridlm.tools.protocol import parse_tools
from hybridlm.types import Completion, ToolCall, Usage

FOLDS = 5
MAX_TOKENS = 160  # room for four short calls; a longer answer in words is cut (BFCL does not read it)


@dataclass
class ToolOutcome:
    """One item: what the local model wrote, and whether BFCL counts it right. The router's view of
    it (`skip`, `signals`) is computed from these by the current code, never stored."""

    id: str
    category: str
    model: str
    correct: bool
    reason: str
    calls: list[list[str]]  # [id, name, arguments JSON]
    text: str
    finish_reason: str
    call_probability: float | None
    token_logprobs: list[float] | None
    seconds: float
    prompt_tokens: int
    completion_tokens: int
    skip: dict[str, float] = field(default_factory=dict, compare=False)
    signals: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def skipped(self) -> bool:
        return sum(self.skip.values()) >= 0.5

    def draft(self) -> Completion:
        return Completion(self.text, self.model, Usage(self.prompt_tokens, self.completion_tokens), self.finish_reason,
                          tuple(self.token_logprobs) if self.token_logprobs else None,
                          tuple(ToolCall(*call) for call in self.calls), self.call_probability)

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("skip", "signals")}


def read_outcomes(path: Path | None, model: str) -> dict[str, ToolOutcome]:
    if path is None or not path.is_file():
        return {}
    done = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("model") == model:
                done[row["id"]] = ToolOutcome(**row)
    return done


def read_by_router(outcome: ToolOutcome, item: BfclItem, router: ToolRouter) -> ToolOutcome:
    """The router's reasons to skip the small model, and the signals of its draft, for this item."""
    tools = parse_tools(item.tools) if item.tools else None  # a few irrelevance items offer no function at all
    if tools is None:
        outcome.skip, outcome.signals = {}, {"no_call": 1.0}
    else:
        outcome.skip = router.before(item.messages, tools).contributions
        outcome.signals = draft_signals(item.messages, tools, outcome.draft(), router.relevance)
    return outcome


async def run_items(backend: ChatBackend, items: Sequence[BfclItem], router: ToolRouter, *,
                    outcomes: Path | None = None, progress: Callable[[int, int, ToolOutcome], None] | None = None,
                    ) -> list[ToolOutcome]:
    """Each item through the local backend (resuming from `outcomes`), judged and read by the router."""
    done = read_outcomes(outcomes, backend.model_name)
    results = []
    sink = outcomes.open("a", encoding="utf-8") if outcomes else None
    try:
        for index, item in enumerate(items):
            outcome = done.get(item.id) or await _run_one(backend, item)
            if item.id not in done and sink is not None:
                sink.write(json.dumps(outcome.row()) + "\n")
                sink.flush()
            results.append(read_by_router(outcome, item, router))
            if progress:
                progress(index + 1, len(items), outcome)
    finally:
        if sink is not None:
            sink.close()
    return results


async def _run_one(backend: ChatBackend, item: BfclItem) -> ToolOutcome:
    tools = parse_tools(item.tools) if item.tools else None
    started = time.perf_counter()
    draft = await backend.complete(item.messages, GenerationParams(max_tokens=MAX_TOKENS, temperature=0.0, tools=tools))
    seconds = time.perf_counter() - started
    verdict = check(item, [(c.name, json.loads(c.arguments)) for c in draft.tool_calls])
    return ToolOutcome(
        item.id, item.category, backend.model_name, verdict.correct, verdict.reason,
        [[c.id, c.name, c.arguments] for c in draft.tool_calls], draft.text, draft.finish_reason,
        draft.call_probability, list(draft.token_logprobs) if draft.token_logprobs else None, seconds,
        draft.usage.prompt_tokens, draft.usage.completion_tokens)


def fit_verifier(outcomes: Sequence[ToolOutcome], source: str, prior: Verifier | None = None) -> Verifier:
    """Logistic regression of 'the draft is wrong' on the draft's signals.

    A signal that never varies in these outcomes (a required argument missing, when the local tier
    asks for it instead of calling) says nothing here: it keeps its weight from `prior`.
    """
    names = sorted({name for o in outcomes for name in o.signals})
    x = np.array([[o.signals.get(n, 0.0) for n in names] for o in outcomes])
    y = np.array([0 if o.correct else 1 for o in outcomes])
    if not len(y):  # nothing to learn from (a fold of a tiny sample): the prior, else no opinion
        return prior or Verifier({}, 0.0, source)
    if len(set(y.tolist())) < 2:
        return Verifier(dict.fromkeys(names, 0.0), 6.0 if y[0] else -6.0, source)
    model = require("sklearn.linear_model").LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    weights = {n: float(w) for n, w in zip(names, model.coef_[0])}
    for column, name in enumerate(names):
        if prior is not None and np.ptp(x[:, column]) == 0 and name in prior.weights:
            weights[name] = prior.weights[name]
    return Verifier(weights, float(model.intercept_[0]), source)


def out_of_fold_doubt(outcomes: Sequence[ToolOutcome], folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Each draft's doubt from a verifier fitted on the other folds (stratified by category)."""
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(outcomes), dtype=int)
    by_category: dict[str, list[int]] = defaultdict(list)
    for i, o in enumerate(outcomes):
        by_category[o.category].append(i)
    for indices in by_category.values():
        order = rng.permutation(indices)
        fold_of[order] = np.arange(len(order)) % folds
    doubt = np.zeros(len(outcomes))
    for fold in range(folds):
        train = [o for o, f in zip(outcomes, fold_of) if f != fold]
        verifier = fit_verifier(train, "fold")
        for i in np.flatnonzero(fold_of == fold):
            doubt[i] = verifier.score(outcomes[i].signals).value
    return doubt


@dataclass
class ToolReport:
    model: str
    local: dict[str, Any]
    routed: dict[str, Any] | None = None
    curve: list[dict[str, float]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, **self.local}
        if self.routed is not None:
            out.update(self.routed)
        if self.curve:
            out["curve"] = self.curve
        return out


def _accuracy(outcomes: Sequence[ToolOutcome]) -> dict[str, Any]:
    categories: dict[str, list[bool]] = defaultdict(list)
    for o in outcomes:
        categories[o.category].append(o.correct)
    return {
        "n": len(outcomes),
        "accuracy": round(float(np.mean([o.correct for o in outcomes])), 4) if outcomes else 0.0,
        "categories": {c: {"n": len(v), "accuracy": round(float(np.mean(v)), 4)} for c, v in sorted(categories.items())},
        "seconds_per_item": round(float(np.mean([o.seconds for o in outcomes])), 3) if outcomes else 0.0,
    }


def _routed(outcomes: Sequence[ToolOutcome], doubt: np.ndarray, threshold: float) -> dict[str, Any]:
    kept = [(o, d < threshold and not o.skipped) for o, d in zip(outcomes, doubt)]
    per: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for o, keep in kept:
        per[o.category].append((keep, o.correct))
    n_kept = sum(1 for _, keep in kept if keep)
    right_kept = sum(1 for o, keep in kept if keep and o.correct)
    return {
        "threshold": threshold,
        "local_share": round(n_kept / len(outcomes), 4) if outcomes else 0.0,
        "local_accuracy": round(right_kept / n_kept, 4) if n_kept else None,
        "skipped_share": round(sum(o.skipped for o in outcomes) / len(outcomes), 4) if outcomes else 0.0,
        "routed_categories": {
            c: {"n": len(v), "local_share": round(sum(k for k, _ in v) / len(v), 4),
                "local_accuracy": round(sum(k and r for k, r in v) / max(1, sum(k for k, _ in v)), 4)}
            for c, v in sorted(per.items())},
    }


def report(outcomes: Sequence[ToolOutcome], *, routed: bool, threshold: float,
           verifier: Verifier | None = None) -> ToolReport:
    """Local accuracy per category; with `routed`, the share kept local and its accuracy, out-of-fold
    unless a fixed `verifier` is given, and the curve of both over thresholds."""
    result = ToolReport(outcomes[0].model if outcomes else "", _accuracy(outcomes))
    if not routed or not outcomes:
        return result
    doubt = (np.array([verifier.score(o.signals).value for o in outcomes]) if verifier is not None
             else out_of_fold_doubt(outcomes))
    result.routed = {**_routed(outcomes, doubt, threshold),
                     "verifier": verifier.source if verifier is not None else f"out-of-fold ({FOLDS} folds)"}
    for t in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.01):
        point = _routed(outcomes, doubt, t)
        result.curve.append({"threshold": t, "local_share": point["local_share"],
                             "local_accuracy": point["local_accuracy"] or 0.0})
    return result
