"""How sure the local model was of a JSON answer: read from its values' tokens, not from the braces, keys
and quotes its grammar forced."""

from __future__ import annotations

import math

from hybridlm.models.local_generation import _value_logprobs, json_value_spans


def _values(text: str) -> list[str]:
    return [text[a:b] for a, b in json_value_spans(text)]


def test_values_are_found_and_keys_and_punctuation_are_not() -> None:
    assert _values('{"label":"on track"}') == ["on track"]
    assert _values('{"a": 1.5, "b": [true, "x\\"y"], "c": {"d": null}, "e": -2}') == \
        ["1.5", "true", 'x\\"y', "null", "-2"]
    assert _values('{"a": {"b": "c"}, "d": "e"}') == ["c", "e"]  # a key after a nested object is still a key
    assert _values('{"a": "cut sho') == ["cut sho"]  # a text cut short: as far as it goes
    assert _values("{}") == []


def test_confidence_comes_from_the_values_tokens() -> None:
    written = '{"label":"on track"}'
    tokens = ['{"', "label", '":"', "on", " track", '"}']
    probabilities = [0.05, 0.95, 0.7, 0.9, 0.99, 0.97]  # the forced opening brace: the model wanted a fence
    scored, offset = [], 0
    for token, p in zip(tokens, probabilities, strict=True):
        scored.append((offset, offset + len(token), math.log(p)))
        offset += len(token)
    assert [round(math.exp(lp), 2) for lp in _value_logprobs(written, scored)] == [0.9, 0.99]
    assert len(_value_logprobs("{}", [(0, 2, -1.0)])) == 1  # no value: every token counts
