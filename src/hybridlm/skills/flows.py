"""Troubleshooting flows: declarative multi-turn scripts the local tier runs across a conversation.

A flow file (YAML) is a list of flows:

    - name: card_not_arrived
      intents: [card_arrival]                 # messages with these intents start the flow
      steps:
        - id: start
          say: "Sorry it has not come yet. How many working days ago did you order it?"
          ask: {slot: days, type: number}
          branches: [{max: 4, goto: wait}, {goto: reorder}]
        - id: wait
          say: "Cards take up to 5 working days; please wait a little longer."
          end: true
        - id: reorder
          say: "I have cancelled that card. Shall I send a new one? (yes/no)"
          ask: {slot: reorder, choices: [yes, no]}
          branches: {yes: sent, no: escalate}
        ...

A step says something (slots fill `{name}` placeholders), may ask for a number or one of some
choices, and goes to the next step by the answer; `end: true` finishes, `escalate: true` hands
the conversation to the LLM. An answer the step cannot read means the customer left the flow:
it escalates too. State is kept per conversation id in SQLite.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridlm.errors import HybridLMError
from hybridlm.skills.yaml_list import read_yaml_list
from hybridlm.sqlite_db import Schema, connect

YES = {"yes", "y", "yeah", "yep", "sure", "please do", "ok", "okay", "correct"}
NO = {"no", "n", "nope", "not", "don't", "do not"}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
WORDS_AS_NUMBERS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
STATE_SCHEMA = Schema("flow state store", [
    ("001_flow_state",
     "CREATE TABLE flow_state (conversation TEXT PRIMARY KEY, flow TEXT, step TEXT, slots TEXT, updated REAL)"),
], legacy_table="flow_state")


class FlowError(HybridLMError):
    """A flow file that cannot run, with its file and line."""


@dataclass(frozen=True)
class Step:
    id: str
    say: str
    line: int
    ask: dict[str, Any] | None = None
    branches: Any = None
    goto: str | None = None
    end: bool = False
    escalate: bool = False


@dataclass(frozen=True)
class Flow:
    name: str
    intents: list[str]
    steps: dict[str, Step]
    first: str


@dataclass(frozen=True)
class FlowTurn:
    flow: str
    reply: str | None  # what the desk says now; None when escalating
    done: bool
    escalate: bool
    reason: str
    slots: dict[str, Any] = field(default_factory=dict)


def _choice(value: Any) -> str:
    """YAML reads a bare yes/no as a boolean; a flow means the word."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).lower()


def _targets(step: Step) -> list[str]:
    if isinstance(step.branches, dict):
        return [str(v) for v in step.branches.values()]
    if isinstance(step.branches, list):
        return [str(b.get("goto")) for b in step.branches if isinstance(b, dict)]
    return [step.goto] if step.goto else []


def read_flows(path: Path) -> list[Flow]:
    flows = []
    for item, node in read_yaml_list(path, FlowError, "flows"):
        where = f"{path}, line {node.start_mark.line + 1}"
        if not isinstance(item, dict) or not item.get("name") or not isinstance(item.get("steps"), list):
            raise FlowError(f"{where}: a flow needs 'name' and a list of 'steps'")
        steps_node = next(v for k, v in node.value if k.value == "steps")
        steps: dict[str, Step] = {}
        for raw, step_node in zip(item["steps"], steps_node.value, strict=True):
            at = f"{path}, line {step_node.start_mark.line + 1}"
            if not isinstance(raw, dict) or not raw.get("id") or not isinstance(raw.get("say", ""), str):
                raise FlowError(f"{at}: a step needs an 'id' (and 'say' text)")
            unknown = set(raw) - {"id", "say", "ask", "branches", "goto", "end", "escalate"}
            if unknown:
                raise FlowError(f"{at}: unknown field(s) {sorted(unknown)}")
            ask = raw.get("ask")
            if ask is not None and (not isinstance(ask, dict) or "slot" not in ask
                                    or not ("choices" in ask or ask.get("type") == "number")):
                raise FlowError(f"{at}: 'ask' needs a 'slot' and either 'choices' or type: number")
            if ask is not None and "choices" in ask:
                ask = {**ask, "choices": [_choice(c) for c in ask["choices"]]}
            branches = raw.get("branches")
            if isinstance(branches, dict):
                branches = {_choice(k): str(v) for k, v in branches.items()}
            steps[str(raw["id"])] = Step(str(raw["id"]), raw.get("say", ""), step_node.start_mark.line + 1, ask,
                                         branches, raw.get("goto"), bool(raw.get("end")), bool(raw.get("escalate")))
        for step in steps.values():
            missing = [t for t in _targets(step) if t not in steps]
            if missing:
                raise FlowError(f"{path}, line {step.line}: step '{step.id}' goes to unknown step(s) {missing}")
        flows.append(Flow(str(item["name"]), [str(i) for i in item.get("intents", [])], steps, next(iter(steps))))
    return flows


def read_answer(step: Step, text: str) -> Any:
    """The value of a reply to the step's question, or None when the reply is not an answer."""
    assert step.ask is not None
    lowered = text.lower().strip(" .!?")
    if step.ask.get("type") == "number":
        match = NUMBER.search(lowered)
        if match:
            return float(match.group(0))
        words = [WORDS_AS_NUMBERS[w] for w in lowered.split() if w in WORDS_AS_NUMBERS]
        return float(words[0]) if words else None
    choices = step.ask["choices"]
    words = set(re.findall(r"[a-z']+", lowered))
    for choice in choices:
        if choice == lowered or choice in words:
            return choice
    if "yes" in choices and (words & YES):
        return "yes"
    if "no" in choices and (words & NO):
        return "no"
    return None


def next_step(step: Step, value: Any) -> str | None:
    if isinstance(step.branches, dict):
        return step.branches.get(value)
    if isinstance(step.branches, list):
        for branch in step.branches:
            if ("max" not in branch or value <= branch["max"]) and ("min" not in branch or value >= branch["min"]):
                return str(branch["goto"])
    return step.goto


class FlowStore:
    """Where each conversation is in its flow: one SQLite row per conversation."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path, STATE_SCHEMA)
        self._lock = threading.Lock()

    def get(self, conversation: str) -> tuple[str, str, dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute("SELECT flow, step, slots FROM flow_state WHERE conversation = ?",
                                   (conversation,)).fetchone()
        return (row[0], row[1], json.loads(row[2])) if row else None

    def put(self, conversation: str, flow: str, step: str, slots: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO flow_state VALUES (?, ?, ?, ?, ?)",
                             (conversation, flow, step, json.dumps(slots), time.time()))

    def clear(self, conversation: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM flow_state WHERE conversation = ?", (conversation,))


class FlowEngine:
    def __init__(self, flows: list[Flow], store: FlowStore) -> None:
        self.flows = {f.name: f for f in flows}
        self.by_intent = {i: f for f in flows for i in f.intents}
        self.store = store

    def active(self, conversation: str | None) -> bool:
        return conversation is not None and self.store.get(conversation) is not None

    def _arrive(self, conversation: str, flow: Flow, step_id: str, slots: dict[str, Any]) -> FlowTurn:
        step = flow.steps[step_id]
        reply = step.say.format_map({k: (int(v) if isinstance(v, float) and v.is_integer() else v)
                                     for k, v in slots.items()})
        if step.escalate:
            self.store.clear(conversation)
            return FlowTurn(flow.name, reply or None, True, True, f"flow '{flow.name}' escalates at '{step.id}'", slots)
        if step.end or (step.ask is None and not step.goto):
            self.store.clear(conversation)
            return FlowTurn(flow.name, reply, True, False, f"flow '{flow.name}' finished at '{step.id}'", slots)
        if step.ask is None and step.goto:
            follow = self._arrive(conversation, flow, step.goto, slots)
            joined = "\n".join(t for t in (reply, follow.reply) if t)
            return FlowTurn(flow.name, joined or None, follow.done, follow.escalate, follow.reason, follow.slots)
        self.store.put(conversation, flow.name, step.id, slots)
        return FlowTurn(flow.name, reply, False, False, f"flow '{flow.name}' at step '{step.id}'", slots)

    def start(self, conversation: str, intent: str) -> FlowTurn | None:
        flow = self.by_intent.get(intent)
        return self._arrive(conversation, flow, flow.first, {}) if flow else None

    def answer(self, conversation: str, text: str) -> FlowTurn:
        state = self.store.get(conversation)
        assert state is not None, "no active flow"
        flow_name, step_id, slots = state
        flow = self.flows.get(flow_name)
        if flow is None or step_id not in flow.steps:
            self.store.clear(conversation)
            return FlowTurn(flow_name, None, True, True, f"flow '{flow_name}' no longer exists")
        step = flow.steps[step_id]
        value = read_answer(step, text)
        target = next_step(step, value) if value is not None else None
        if value is None or target is None:
            self.store.clear(conversation)
            return FlowTurn(flow.name, None, True, True,
                            f"the customer left flow '{flow.name}' at '{step.id}' (not an answer to its question)", slots)
        assert step.ask is not None
        return self._arrive(conversation, flow, target, {**slots, step.ask["slot"]: value})
