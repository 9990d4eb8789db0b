"""Tool routing: can the small model make this function call, or should the LLM?

Before any model runs, three things send a request with tools straight to the remote tier: more
functions on offer than the small model handles well, a request for several steps, or no
offered function that fits the request (the LLM then decides whether to call one or answer).
Otherwise the local model drafts (a cascade) and a verifier reads the draft: a call it was
unsure of, an argument the conversation does not contain, a call of a function that fits the
request poorly, a required call it did not make, or words where a fitting function was on offer.
The verifier is a logistic model over those signals, fitted on the local model's own outcomes on
BFCL (`data/tool_verifier.json`, written by `hybridlm eval tools --save-verifier`); its score is the
probability that the draft is wrong, and a threshold decides, like every other router here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridlm.routing.base import Score, last_user_text
from hybridlm.tools.grounding import ground_call
from hybridlm.tools.protocol import ToolRequest
from hybridlm.tools.relevance import ToolRelevance, foreign_share
from hybridlm.types import Completion, Message

if TYPE_CHECKING:
    from hybridlm.config import ToolRoutingConfig

TOOLS = "tools"
SEVERAL = re.compile(r"\b(and|respectively|both|each|as well|also|plus)\b|,\s*\w+\s*,", re.I)
STEPS = re.compile(r"\b(then|after that|afterwards|and also|as well as|followed by|once (?:that|done|it))\b|;", re.I)
VERIFIER_FILE = "tool_verifier.json"


def several_steps(text: str) -> int:
    """How many step words (then, after that, ...) the request has: each one asks for one more call."""
    return len(STEPS.findall(text))


@dataclass(frozen=True)
class Verifier:
    """Logistic weights over named draft signals; `source` says what they were fitted on."""

    weights: dict[str, float]
    bias: float
    source: str

    @classmethod
    def load(cls, path: Path | None = None) -> Verifier:
        if path is None:
            text = (resources.files("hybridlm.routing") / "data" / VERIFIER_FILE).read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        return cls({str(k): float(v) for k, v in data["weights"].items()}, float(data["bias"]), str(data["source"]))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"weights": self.weights, "bias": self.bias, "source": self.source}, indent=2) + "\n",
                        encoding="utf-8")

    def score(self, signals: dict[str, float]) -> Score:
        parts = {name: self.weights.get(name, 0.0) * value for name, value in signals.items()}
        logit = self.bias + sum(parts.values())
        return Score(1.0 / (1.0 + math.exp(-logit)), parts)


def draft_signals(messages: list[Message], tools: ToolRequest, draft: Completion,
                  relevance: ToolRelevance) -> dict[str, float]:
    """What a local draft says about itself, each in [0, 1]; the verifier's inputs."""
    offered = tools.offered()
    fits = dict(zip((f.name for f in offered), relevance.scores(messages, offered))) if relevance.ready() else {}
    best_fit = max(fits.values(), default=0.0)
    ranked = sorted(fits.values(), reverse=True)
    signals = {
        "functions": min(1.0, math.log1p(len(offered)) / math.log(33)),
        "foreign_script": foreign_share(last_user_text(messages)),
        "close_second": min(1.0, max(0.0, 1.0 - (ranked[0] - ranked[1]) * 4)) if len(ranked) > 1 else 0.0,
        "no_call": 0.0, "required_call_missing": 0.0, "cut_short": float(draft.finish_reason == "length"),
        "doubt": 0.0, "worst_token": 0.0, "argument_not_in_request": 0.0, "optional_not_in_request": 0.0,
        "poor_fit": 0.0, "fitting_tool_unused": 0.0, "hesitated": 0.0, "several_calls": 0.0,
        "more_asked_than_called": 0.0,
    }
    if draft.call_probability is not None:
        signals["hesitated"] = 1.0 - draft.call_probability
    if not draft.tool_calls:
        signals["no_call"] = 1.0
        signals["required_call_missing"] = float(tools.must_call)
        signals["fitting_tool_unused"] = max(0.0, best_fit)
        return signals
    if draft.token_logprobs:
        mean = sum(draft.token_logprobs) / len(draft.token_logprobs)
        signals["doubt"] = 1.0 - math.exp(mean)
        signals["worst_token"] = min(1.0, -min(draft.token_logprobs) / 10.0)
    missing_required = missing_optional = 0
    fit = 1.0
    for call in draft.tool_calls:
        function = tools.function(call.name)
        if function is None:
            missing_required += 1
            continue
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = {}
        grounding = ground_call(function, arguments if isinstance(arguments, dict) else {}, messages)
        missing_required += len(grounding.required_missing)
        missing_optional += len(grounding.optional_missing)
        fit = min(fit, fits.get(call.name, 0.0))
    signals["argument_not_in_request"] = min(1.0, missing_required / 2.0)
    signals["optional_not_in_request"] = min(1.0, missing_optional / 2.0)
    signals["poor_fit"] = 1.0 - max(0.0, fit) if fits else 0.0
    signals["several_calls"] = float(len(draft.tool_calls) > 1)
    signals["more_asked_than_called"] = float(len(draft.tool_calls) == 1
                                              and bool(SEVERAL.search(last_user_text(messages))))
    return signals


class ToolRouter:
    name = TOOLS

    def __init__(self, config: ToolRoutingConfig, relevance: ToolRelevance | None = None,
                 verifier: Verifier | None = None) -> None:
        self.config = config
        self.relevance = relevance or ToolRelevance()
        self._verifier = verifier

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            self._verifier = Verifier.load(self.config.verifier.expanduser() if self.config.verifier else None)
        return self._verifier

    @property
    def threshold(self) -> float:
        return 0.5  # before(): each reason is all or nothing

    @property
    def verify_threshold(self) -> float:
        return self.config.threshold

    def before(self, messages: list[Message], tools: ToolRequest) -> Score:
        """1 when a reason sends the request straight to the LLM; 0 when the small model may draft."""
        offered = tools.offered()
        steps = several_steps(last_user_text(messages))
        judged = not tools.must_call and self.relevance.can_judge(messages)
        best = self.relevance.best(messages, offered) if judged else 1.0
        parts = {
            "many_tools": float(len(offered) > self.config.max_local_tools),
            "several_steps": float(steps >= 1),
            "no_tool_fits": float(best < self.config.min_fit),
        }
        evidence = {"many_tools": [f"{len(offered)} functions > {self.config.max_local_tools}"],
                    "no_tool_fits": [f"best fit {best:.2f} < {self.config.min_fit:.2f}"],
                    "several_steps": [f"{steps} step words"]}
        return Score(min(1.0, sum(parts.values())), parts, {k: v for k, v in evidence.items() if parts[k]})

    def verify(self, messages: list[Message], tools: ToolRequest, draft: Completion) -> Score:
        """The probability that the local draft is wrong, from its signals."""
        return self.verifier.score(draft_signals(messages, tools, draft, self.relevance))

    def describe(self) -> dict[str, Any]:
        return {"threshold": self.config.threshold, "verifier": self.verifier.source}
