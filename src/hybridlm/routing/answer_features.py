"""What a draft answer itself says about whether it can be trusted.

The signals a verifier reads: arithmetic the answer states but gets wrong (recomputed by a
small safe evaluator, never `eval`), a missing final answer, hedging, looping repetition and
an abrupt end.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Sequence

import numpy as np

EQUATION = re.compile(r"((?:\(?\s*-?[\d.,]+\s*\)?\s*[-+*/x×÷]\s*)+\(?\s*-?[\d.,]+\s*\)?)\s*=\s*\$?\s*(-?[\d.,]+)")
ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
FINAL = re.compile(r"(####\s*-?[\d.,]+|answer is|final answer|\\boxed\{|therefore|so the answer|in total)", re.IGNORECASE)
HEDGE = re.compile(r"\b(assume|assuming|approximately|however|wait|actually|mistake|unclear|not possible|cannot|"
                   r"not sure|i think|maybe|perhaps|it seems)\b", re.IGNORECASE)
OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

NAMES = (
    "equations_checked", "equations_wrong", "any_equation_wrong", "no_final_answer", "hedges", "log_answer_chars",
    "answer_to_prompt_length", "repeated_line_share", "ends_abruptly",
)


def safe_arithmetic(expression: str) -> float | None:
    """The value of + - * / over numbers and parentheses, or None for anything else."""
    text = expression.replace("×", "*").replace("x", "*").replace("÷", "/").replace(",", "")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError("not arithmetic")

    try:
        return walk(tree)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").rstrip("."))
    except ValueError:
        return None


def check_arithmetic(answer: str) -> tuple[int, int]:
    """(equations checked, equations whose stated result is wrong)."""
    checked = wrong = 0
    for match in [*ANNOTATION.finditer(answer), *EQUATION.finditer(answer)]:
        value, stated = safe_arithmetic(match.group(1)), _number(match.group(2))
        if value is None or stated is None:
            continue
        checked += 1
        if not (math.isclose(value, stated, rel_tol=1e-6, abs_tol=0.01) or abs(round(value, 2) - stated) < 0.01):
            wrong += 1
    return checked, wrong


def answer_features(prompt: str, answer: str) -> list[float]:
    checked, wrong = check_arithmetic(answer)
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    repeated = 1.0 - len(set(lines)) / len(lines) if lines else 0.0
    stripped = answer.rstrip()
    return [
        float(checked), float(wrong), float(wrong > 0), float(FINAL.search(answer) is None),
        float(len(HEDGE.findall(answer))), math.log1p(len(answer)), len(answer) / max(1, len(prompt)), repeated,
        float(bool(stripped) and stripped[-1] not in ".!?)]}*\"'0123456789"),
    ]


def answer_matrix(prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    rows = [answer_features(p, a) for p, a in zip(prompts, answers, strict=True)]
    return np.array(rows, dtype=np.float32).reshape(len(rows), len(NAMES))
