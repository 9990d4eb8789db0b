"""Workers the local model does: classify, extract fields, answer from a passage, summarise one document.

On the local tier each answers as JSON under a grammar made from its schema; on a remote tier (a step
escalated to the LLM) as a JSON object whose fields are told in words, since not every OpenAI-compatible
server takes a schema (and a small model shown a JSON Schema tends to copy it back). Either way
the output is validated, and its confidence (the model's own probability of the values it wrote, not of the
braces and keys its grammar forced; lowered when extracted values are not in the text) decides whether the
LLM does the step again.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, Field

from hybridlm.agents.workers import StepContext, WorkerFailed, worker
from hybridlm.models.base import GenerationParams
from hybridlm.tools.grounding import Evidence
from hybridlm.tools.protocol import ResponseFormat
from hybridlm.types import Completion

JSON_ONLY = "Reply with one JSON object only."


async def ask_json(context: StepContext, instruction: str, text: str, schema: dict[str, Any],
                   max_tokens: int = 256) -> tuple[dict[str, Any], float]:
    """The tier's answer as a JSON object of `schema`, and how sure the model was of it (1.0 when the tier does
    not say)."""
    if context.on_device:
        raw = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
        response_format = ResponseFormat("json_schema", schema, "output", True, raw)
        prompt = text
    else:
        response_format = ResponseFormat("json_object", raw={"type": "json_object"})
        prompt = f"{text}\n\nThe JSON object's fields: {fields_in_words(schema)}"
    messages = [{"role": "system", "content": f"{instruction} {JSON_ONLY}"}, {"role": "user", "content": prompt}]
    answer = await context.call(messages, GenerationParams(max_tokens=max_tokens, temperature=0.0, logprobs=True,
                                                           response_format=response_format))
    try:
        value = json.loads(_json_text(answer.text))
    except json.JSONDecodeError:
        raise WorkerFailed(f"the answer is not JSON: {answer.text[:80]!r}") from None
    if not isinstance(value, dict):
        raise WorkerFailed(f"the answer is JSON but not an object: {answer.text[:80]!r}")
    return value, _confidence(answer)


def fields_in_words(schema: dict[str, Any]) -> str:
    """An object schema's fields as a prompt says them: `label (one of "a", "b"); found (true or false)`."""
    return "; ".join(f"{name} ({_kind_in_words(spec)})" for name, spec in schema.get("properties", {}).items())


def _kind_in_words(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "one of " + ", ".join(json.dumps(v) for v in spec["enum"])
    if "anyOf" in spec:
        return ", or ".join(_kind_in_words(s) for s in spec["anyOf"])
    return {"string": "text", "boolean": "true or false", "integer": "a whole number", "number": "a number",
            "null": "null", "array": "a list", "object": "an object"}.get(spec.get("type", ""), "any value")


def _json_text(text: str) -> str:
    """The object in an answer that wraps it in a code fence or a sentence."""
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else text


def _confidence(answer: Completion) -> float:
    mean = answer.mean_logprob
    return 1.0 if mean is None else round(math.exp(mean), 4)


class ExtractInput(BaseModel):
    text: str
    fields: list[str] = Field(min_length=1, max_length=20)


class Extracted(BaseModel):
    values: dict[str, str | None]
    confidence: float = Field(ge=0.0, le=1.0)


@worker("extract", input=ExtractInput, output=Extracted, kind="model",
        description="the named fields' values from one text, copied as written (figures with units); null if absent")
async def extract(inputs: ExtractInput, context: StepContext) -> Extracted:
    schema = {"type": "object", "required": inputs.fields,
              "properties": {f: {"anyOf": [{"type": "string"}, {"type": "null"}]} for f in inputs.fields}}
    fields = ", ".join(inputs.fields)
    value, confidence = await ask_json(
        context, "Extract the requested fields from the text. Copy each value exactly as the text writes it, "
                 "with its unit and sign; null when the text does not give it.",
        f"Fields: {fields}\n\nText:\n{inputs.text}", schema, max_tokens=48 + 40 * len(inputs.fields))
    if missing := [f for f in inputs.fields if f not in value]:
        raise WorkerFailed(f"the answer lacks the fields {missing}")
    values = {f: None if value[f] is None else str(value[f]) for f in inputs.fields}
    found = [v for v in values.values() if v is not None]
    evidence = Evidence.of(inputs.text)
    grounded = sum(evidence.has_text(v) for v in found) / len(found) if found else 1.0
    return Extracted(values=values, confidence=round(min(confidence, grounded), 4))


class ClassifyInput(BaseModel):
    text: str
    labels: list[str] = Field(min_length=2, max_length=20)
    question: str = ""


class Classified(BaseModel):
    label: str
    confidence: float = Field(ge=0.0, le=1.0)


@worker("classify", input=ClassifyInput, output=Classified, kind="model",
        description="which one of the labels fits the text (optionally: as an answer to the question)")
async def classify(inputs: ClassifyInput, context: StepContext) -> Classified:
    schema = {"type": "object", "required": ["label"], "properties": {"label": {"enum": inputs.labels}}}
    ask = inputs.question or "Which label fits the text best?"
    value, confidence = await ask_json(context, "Classify the text with exactly one of the labels.",
                                       f"{ask}\nLabels: {', '.join(inputs.labels)}\n\nText:\n{inputs.text}", schema,
                                       max_tokens=32)
    label = value.get("label")
    if label not in inputs.labels:
        raise WorkerFailed(f"the label {label!r} is not one of {inputs.labels}")
    return Classified(label=label, confidence=confidence)


class AnswerInput(BaseModel):
    passage: str
    question: str


class Answered(BaseModel):
    answer: str
    found: bool
    confidence: float = Field(ge=0.0, le=1.0)


@worker("answer", input=AnswerInput, output=Answered, kind="model",
        description="a short answer to the question from the passage alone; found=false if it does not say")
async def answer(inputs: AnswerInput, context: StepContext) -> Answered:
    schema = {"type": "object", "required": ["answer", "found"],
              "properties": {"answer": {"type": "string"}, "found": {"type": "boolean"}}}
    value, confidence = await ask_json(
        context, "Answer the question from the passage alone, in a few words; found is false when the passage "
                 "does not answer it.", f"Question: {inputs.question}\n\nPassage:\n{inputs.passage}", schema)
    if not isinstance(value.get("answer"), str) or not isinstance(value.get("found"), bool):
        raise WorkerFailed("the answer needs 'answer' (text) and 'found' (true or false)")
    return Answered(answer=value["answer"], found=value["found"], confidence=confidence)


class SummariseInput(BaseModel):
    text: str
    focus: str = ""
    max_words: int = Field(80, ge=10, le=400)


class Summary(BaseModel):
    summary: str = Field(min_length=1)


@worker("summarise", input=SummariseInput, output=Summary, kind="model",
        description="a summary of one text (on the focus, if given), keeping its figures")
async def summarise(inputs: SummariseInput, context: StepContext) -> Summary:
    focus = f" Keep to what bears on: {inputs.focus}." if inputs.focus else ""
    messages = [{"role": "system", "content": f"Summarise the text in at most {inputs.max_words} words, keeping its "
                                              f"figures exactly.{focus} Say nothing the text does not say."},
                {"role": "user", "content": inputs.text}]
    written = await context.call(messages, GenerationParams(max_tokens=inputs.max_words * 2, temperature=0.0))
    if not written.text.strip():
        raise WorkerFailed("the summary is empty")
    return Summary(summary=written.text.strip())
