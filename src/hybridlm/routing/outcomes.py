"""Routing outcome data: for each prompt, how well each model answered and what it cost.

One format (JSONL, one prompt a line):
    {"prompt": "...", "scores": {"model-a": 1.0, "model-b": 0.0},
     "costs": {"model-a": 0.0021, "model-b": 0.0003}, "category": "anatomy",
     "responses": {"model-a": "...", "model-b": "..."}}
`scores` are in [0, 1]; `costs` (US$), `category` and `responses` (what each model answered,
which cascade verifiers learn from) are optional. Loaders turn the
public sets (RouteLLM's MMLU, GSM8K and MT-Bench outcomes, LLMRouter's dcrouter) into it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm.errors import HybridLMError

ROUTELLM_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
ROUTELLM_STRONG = "gpt-4-1106-preview"
# Published list prices ($/M tokens) of the two RouteLLM models, for cost figures only.
ROUTELLM_PRICES = {ROUTELLM_WEAK: (0.24, 0.24), ROUTELLM_STRONG: (10.0, 30.0)}


class OutcomeDataError(HybridLMError, ValueError):
    """Outcome data that cannot be read, with the file and the reason."""


@dataclass
class OutcomeSet:
    """Prompts x models: quality in [0, 1] and cost in US$ per prompt."""

    prompts: list[str]
    models: list[str]
    scores: np.ndarray  # (n_prompts, n_models)
    costs: np.ndarray  # (n_prompts, n_models)
    categories: list[str | None] = field(default_factory=list)
    name: str = "outcomes"
    responses: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        if self.scores.shape != (n, m) or self.costs.shape != (n, m):
            raise OutcomeDataError(f"{self.name}: scores {self.scores.shape} / costs {self.costs.shape} "
                                   f"do not match {n} prompts x {m} models")
        if not self.categories:
            self.categories = [None] * n

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, index: Sequence[int] | np.ndarray) -> OutcomeSet:
        idx = np.asarray(index, dtype=int)
        return OutcomeSet([self.prompts[i] for i in idx], list(self.models), self.scores[idx], self.costs[idx],
                          [self.categories[i] for i in idx], self.name,
                          {m: [texts[i] for i in idx] for m, texts in self.responses.items()})

    def topics(self) -> list[str] | None:
        """The categories, when every prompt has one and they group prompts (several, each shared)."""
        labels = [c for c in self.categories if c is not None]
        if len(labels) == len(self) and 1 < len(set(labels)) < len(labels) // 5:
            return labels
        return None

    def gain(self) -> np.ndarray:
        """Per prompt: the strong model's quality minus the weak one's."""
        weak, strong = self.pair()
        return self.scores[:, strong] - self.scores[:, weak]

    def by_cost(self) -> list[int]:
        """Model indices from cheapest to dearest (mean cost per prompt)."""
        return list(np.argsort(self.costs.mean(axis=0), kind="stable"))

    def pair(self) -> tuple[int, int]:
        """(weak, strong): the cheapest model and the dearest one."""
        order = self.by_cost()
        return order[0], order[-1]

    def to_jsonl(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as out:
            for i, prompt in enumerate(self.prompts):
                row: dict[str, Any] = {
                    "prompt": prompt,
                    "scores": {m: float(self.scores[i, j]) for j, m in enumerate(self.models)},
                    "costs": {m: float(self.costs[i, j]) for j, m in enumerate(self.models)},
                }
                if self.categories[i] is not None:
                    row["category"] = self.categories[i]
                if self.responses:
                    row["responses"] = {m: texts[i] for m, texts in self.responses.items()}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _price_costs(prompts: Sequence[str], models: Sequence[str], prices: dict[str, tuple[float, float]],
                 output_tokens: Sequence[Sequence[int]] | None = None, default_output: int = 256) -> np.ndarray:
    """Cost of each prompt on each model: its tokens at the model's list price."""
    costs = np.zeros((len(prompts), len(models)))
    for i, prompt in enumerate(prompts):
        tokens_in = estimate_tokens(prompt)
        for j, model in enumerate(models):
            price_in, price_out = prices[model]
            tokens_out = output_tokens[i][j] if output_tokens is not None else default_output
            costs[i, j] = (tokens_in * price_in + tokens_out * price_out) / 1e6
    return costs


def _contaminated(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with path.open(encoding="utf-8") as f:
        return {json.loads(line)["eval_prompt"] for line in f if line.strip()}


def _bool(value: str) -> float:
    return 1.0 if value.strip().lower() == "true" else 0.0


def _routellm_root(path: Path) -> Path:
    """The routellm folder, given it, a file or folder inside it."""
    for candidate in (path, *path.parents):
        if (candidate / "contaminated").is_dir():
            return candidate
    return path.parent if path.is_file() else path


def load_routellm_csv(files: Iterable[Path], contaminated: set[str], name: str,
                      with_responses: bool = False) -> OutcomeSet:
    """RouteLLM response CSVs: `prompt,<weak>,<strong>` correctness (True/False), per subject file."""
    models = [ROUTELLM_WEAK, ROUTELLM_STRONG]
    prompts: list[str] = []
    scores: list[list[float]] = []
    categories: list[str | None] = []
    out_tokens: list[list[int]] = []
    responses: dict[str, list[str]] = {m: [] for m in models} if with_responses else {}
    for file in files:
        category = file.stem.removeprefix("mmlu_") if file.stem.startswith("mmlu_") else None
        with file.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = {"prompt", *models} - set(reader.fieldnames or [])
            if missing:
                raise OutcomeDataError(f"{file}: missing columns {sorted(missing)}")
            for row in reader:
                if row["prompt"] in contaminated:
                    continue
                prompts.append(row["prompt"])
                scores.append([_bool(row[m]) for m in models])
                categories.append(category)
                if with_responses:
                    out_tokens.append([estimate_tokens(row.get(f"{m}_response") or "") for m in models])
                    for m in models:
                        responses[m].append(row.get(f"{m}_response") or "")
    if not prompts:
        raise OutcomeDataError(f"{name}: no prompts found")
    costs = _price_costs(prompts, models, ROUTELLM_PRICES, out_tokens if with_responses else None, default_output=1)
    return OutcomeSet(prompts, models, np.array(scores), costs, categories, name, responses)


def load_routellm_mmlu(path: Path) -> OutcomeSet:
    folder = path if path.is_dir() else path.parent
    files = sorted(folder.glob("mmlu_*.csv"))
    if not files:
        raise OutcomeDataError(f"{path}: no mmlu_*.csv files")
    return load_routellm_csv(files, _contaminated(_routellm_root(folder) / "contaminated" / "mmlu.jsonl"), "mmlu")


def load_routellm_gsm8k(path: Path) -> OutcomeSet:
    return load_routellm_csv([path], _contaminated(_routellm_root(path) / "contaminated" / "gsm8k.jsonl"), "gsm8k",
                             with_responses=True)


def load_mt_bench(path: Path) -> OutcomeSet:
    """MT-Bench: first-turn prompt; quality = the GPT-4 judge's mean score over both turns / 10."""
    folder = path if path.is_dir() else path.parent
    contaminated = _contaminated(_routellm_root(folder) / "contaminated" / "mt_bench.jsonl")
    questions = [json.loads(line) for line in (folder / "question.jsonl").open(encoding="utf-8") if line.strip()]
    judged: dict[tuple[int, str], list[float]] = {}
    for line in (folder / "judgements.jsonl").open(encoding="utf-8"):
        if line.strip():
            j = json.loads(line)
            judged.setdefault((j["question_id"], j["model"]), []).append(float(j["score"]))
    models = [ROUTELLM_WEAK, ROUTELLM_STRONG]
    prompts, scores, categories = [], [], []
    for q in questions:
        if any(turn in contaminated for turn in q["turns"]):
            continue
        if not all((q["question_id"], m) in judged for m in models):
            continue
        prompts.append(q["turns"][0])
        scores.append([float(np.mean(judged[(q["question_id"], m)])) / 10.0 for m in models])
        categories.append(q.get("category"))
    costs = _price_costs(prompts, models, ROUTELLM_PRICES, default_output=400)
    return OutcomeSet(prompts, models, np.array(scores), costs, categories, "mt_bench")


def load_dcrouter(path: Path, models_file: Path | None = None) -> OutcomeSet:
    """LLMRouter's dcrouter JSON: `question`, per-model `scores`; prices from models.json beside it."""
    models_file = models_file or path.with_name("models.json")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        catalogue = json.loads(models_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise OutcomeDataError(f"{path}: cannot read dcrouter data ({err})") from None
    models = sorted(rows[0]["scores"])
    unknown = [m for m in models if m not in catalogue]
    if unknown:
        raise OutcomeDataError(f"{models_file}: no price for {unknown}")
    prices = {m: (float(catalogue[m]["input_price"]), float(catalogue[m]["output_price"])) for m in models}
    prompts = [r["question"] for r in rows]
    scores = np.array([[float(r["scores"][m]) for m in models] for r in rows])
    categories = [str(r.get("cluster_id")) if r.get("cluster_id") is not None else None for r in rows]
    return OutcomeSet(prompts, models, scores, _price_costs(prompts, models, prices), categories, path.stem)


def load_jsonl(path: Path) -> OutcomeSet:
    prompts, rows = [], []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                prompts.append(str(row["prompt"]))
                if not isinstance(row["scores"], dict) or not row["scores"]:
                    raise KeyError("scores")
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise OutcomeDataError(f"{path}, line {number}: not an outcome row ({err})") from None
            rows.append(row)
    if not rows:
        raise OutcomeDataError(f"{path}: no rows")
    models = sorted(rows[0]["scores"])
    try:
        scores = np.array([[float(r["scores"][m]) for m in models] for r in rows])
        costs = np.array([[float((r.get("costs") or {}).get(m, 0.0)) for m in models] for r in rows])
    except KeyError as err:
        raise OutcomeDataError(f"{path}: a row lacks model {err}") from None
    responses: dict[str, list[str]] = {}
    if all(isinstance(r.get("responses"), dict) for r in rows):
        responses = {m: [str(r["responses"].get(m, "")) for r in rows] for m in models}
    return OutcomeSet(prompts, models, scores, costs, [r.get("category") for r in rows], path.stem, responses)


MIN_LOG_PAIRS = 10


def from_log_pairs(pairs: Sequence[dict[str, Any]], name: str = "request-log") -> OutcomeSet:
    """Outcome rows from the request log: prompts answered by two tiers (served + shadow), both rated."""
    if len(pairs) < MIN_LOG_PAIRS:
        raise OutcomeDataError(
            f"the request log has {len(pairs)} prompts answered by two tiers and rated; at least {MIN_LOG_PAIRS} "
            "are needed. Set router.shadow_share so the LLM also answers a sample of what the SLM served, "
            "then rate both answers with POST /v1/feedback")
    models = sorted({p["served_tier"] for p in pairs} | {p["shadow_tier"] for p in pairs})
    scores, costs = np.zeros((len(pairs), len(models))), np.zeros((len(pairs), len(models)))
    for i, p in enumerate(pairs):
        for side in ("served", "shadow"):
            j = models.index(p[f"{side}_tier"])
            scores[i, j], costs[i, j] = p[f"{side}_score"], p[f"{side}_cost"]
    return OutcomeSet([p["prompt"] for p in pairs], models, scores, costs, [], name)


FORMATS = {
    "mmlu": load_routellm_mmlu,
    "gsm8k": load_routellm_gsm8k,
    "mt_bench": load_mt_bench,
    "dcrouter": load_dcrouter,
    "jsonl": load_jsonl,
}


def detect_format(path: Path) -> str:
    if path.is_dir():
        if any(path.glob("mmlu_*.csv")):
            return "mmlu"
        if (path / "judgements.jsonl").is_file():
            return "mt_bench"
    elif path.suffix == ".jsonl":
        return "jsonl"
    elif path.suffix == ".json":
        return "dcrouter"
    elif path.suffix == ".csv":
        return "mmlu" if path.name.startswith("mmlu_") else "gsm8k"
    raise OutcomeDataError(f"{path}: cannot tell the format; name it with --format ({', '.join(FORMATS)})")


def load_outcomes(path: str | Path, fmt: str | None = None) -> OutcomeSet:
    p = Path(path)
    if not p.exists():
        raise OutcomeDataError(f"{p}: no such file or folder")
    fmt = fmt or detect_format(p)
    if fmt not in FORMATS:
        raise OutcomeDataError(f"unknown format '{fmt}'; known: {', '.join(FORMATS)}")
    if fmt == "mmlu" and p.is_file():
        return load_routellm_csv([p], _contaminated(_routellm_root(p) / "contaminated" / "mmlu.jsonl"), p.stem)
    return FORMATS[fmt](p)
