"""hybridlm.yaml: tiers, their backends and prices, the router, profiles and limits.

Secrets never live in the file: a tier names the environment variable that holds its key.
With no file at all, the defaults run: the embedded SLM, plus an LLM tier when
OPENAI_BASE_URL or OPENAI_API_KEY is set.

This is the schema alone: it imports no backend and no router, so reading a configuration
imports nothing beyond pydantic and PyYAML. Whether each tier's backend exists and takes its
options, and whether the router kind exists, is checked against the registries by
`hybridlm.plugins.load_checked_config`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hybridlm.errors import HybridLMError

CONFIG_ENV = "HYBRIDLM_CONFIG"
DATA_DIR_ENV = "HYBRIDLM_DATA_DIR"
DEFAULT_CONFIG_NAME = "hybridlm.yaml"
DEFAULT_LLM_MODEL = "gpt-4o-mini"
DEFAULTS_SOURCE = "defaults"


class ConfigError(HybridLMError):
    """A configuration that cannot run, with a message that says where and why."""


class Price(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid")
    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


class TierConfig(BaseModel):
    """One model tier. Fields beyond these belong to the backend and are checked by it."""

    model_config = ConfigDict(extra="allow")
    backend: str
    price: Price = Field(default_factory=Price)
    budget_usd_per_day: float | None = Field(
        None, ge=0, description="No more calls to this tier (routed or forced) once today's spend reaches it."
    )
    budget_usd_per_month: float | None = Field(
        None, ge=0, description="No more calls to this tier once this calendar month's spend reaches it."
    )
    redact: bool | None = Field(None, description="Redact personal data before it reaches this tier (default: "
                                                   "privacy.redact for remote tiers, off for local ones).")
    wrappers: list[str] = Field(default_factory=list, description="Registered backend wrappers around this tier, "
                                                                   "innermost first.")

    @property
    def options(self) -> dict[str, Any]:
        """The backend's own fields."""
        return dict(self.model_extra or {})


class ToolRoutingConfig(BaseModel):
    """Requests with `tools`: when the small model may draft the call, and when its draft is kept."""

    model_config = ConfigDict(extra="forbid")
    max_local_tools: int = Field(8, ge=1, description="More functions on offer than this: straight to the LLM.")
    min_fit: float = Field(0.25, ge=-1.0, le=1.0, description="No offered function fits the request better than "
                                                             "this (cosine): straight to the LLM.")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="The verifier's probability that the local draft is "
                                                              "wrong at or above which the LLM answers instead.")
    verifier: Path | None = Field(None, description="Verifier weights from `hybridlm eval tools --save-verifier` "
                                                     "(default: the shipped ones).")


class RouterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = "heuristic"
    artifact: Path | None = Field(None, description="A router file from `hybridlm train router` (kind: learned).")
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    resamples: int = Field(
        0, ge=0, le=8,
        description="Router kind 'selfcheck': extra answers the small model samples and compares with its draft "
                    "(self-consistency); 0 reads the draft's token log-probabilities only.",
    )
    local_tier: str = "slm"
    remote_tier: str = "llm"
    fallback: bool = Field(True, description="Serve from the local tier when the remote tier fails.")
    tools: ToolRoutingConfig = Field(default_factory=ToolRoutingConfig)
    shadow_share: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Share of requests the local tier served that are also sent to the remote tier in the background, "
                    "so both answers can be rated (POST /v1/feedback) and become training data.",
    )

    @model_validator(mode="after")
    def _learned_has_artifact(self) -> RouterConfig:
        if self.kind == "learned" and self.artifact is None:
            raise ValueError("router kind 'learned' needs 'artifact': a file from `hybridlm train router`")
        return self


class ProfileConfig(BaseModel):
    """A named variant of routing, chosen by the client with model `hybrid/<name>`."""

    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(..., ge=0.0, le=1.0)


class SupportConfig(BaseModel):
    """The `hybrid/support` profile: FAQ answers, intents and sentiment decide between KB, SLM and LLM."""

    model_config = ConfigDict(extra="forbid")
    intent_model: Path | None = Field(None, description="A file from `hybridlm train intent`.")
    kb_files: list[Path] = Field(default_factory=list, description="FAQ files, beside those added with `hybridlm kb add`.")
    flow_files: list[Path] = Field(default_factory=list, description="Troubleshooting flows (YAML).")
    faq_threshold: float = Field(0.75, ge=0.0, le=1.0)
    sentiment: Literal["learned", "lexicon"] = Field(
        "lexicon", description="'lexicon': VADER alone; 'learned': the calibrated model (needs the support extra; "
        "VADER without it), which escalates far more unhappy customers and far more traffic (docs/BENCHMARKS.md).")
    sentiment_model: Path | None = Field(None, description="A file from `hybridlm train sentiment` (default: the "
                                         "shipped one, trained on GoEmotions).")
    escalate_sentiment: float = Field(-0.5, ge=-1.0, le=1.0, description="The lexicon's compound score at or "
                                      "below which it escalates.")
    max_routine_words: int = Field(60, gt=0)
    min_intent_confidence: float = Field(0.65, ge=0.0, le=1.0, description="Less sure than this -> LLM.")
    llm_intents: list[str] = Field(default_factory=list)


class RagConfig(BaseModel):
    """The `hybrid/rag` profile: retrieve, grade, answer with citations, fact-check, correct."""

    model_config = ConfigDict(extra="forbid")
    top_k: int = Field(5, gt=0, le=50, description="Chunks retrieved per question, before grading.")
    grader: Path | None = Field(None, description="A file from `hybridlm train grader` (default: the shipped one).")
    factcheck_model: Path | None = Field(None, description="A file from `hybridlm train factcheck` (default: shipped).")
    nli_model: Path | None = Field(None, description="A local NLI cross-encoder folder that scores claims instead.")
    when_nothing_relevant: Literal["say", "llm"] = Field(
        "say", description="'say': answer that the documents do not cover it; 'llm': let the LLM answer unaided.")
    check_answers: bool = Field(True, description="Fact-check every grounded answer against its sources.")
    max_correction_rounds: int = Field(2, ge=0, le=5, description="Times a flagged answer goes back for correction.")
    remove_unsupported: bool = Field(True, description="Drop claims still flagged after the last round.")


LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1", "[::1]"]


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_body_bytes: int = Field(1_000_000, gt=0)
    default_max_tokens: int = Field(256, gt=0)
    store_text: bool = Field(False, description="Keep full prompts and answers in the request log (for training); "
                                                "off, only a redacted preview is kept.")
    retention_days: float | None = Field(90.0, gt=0, description="Rows older than this are deleted (at start-up "
                                                                 "and by `hybridlm logs --purge`); null keeps all.")
    allowed_hosts: list[str] = Field(default_factory=lambda: list(LOOPBACK_HOSTS),
                                     description="Host headers the dashboard and admin endpoints answer to "
                                                 "(against DNS rebinding); '*' allows any.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed cross-site; none by default.")
    allow_open: bool = Field(False, description="Serve on a non-loopback address with no API keys (anyone who can "
                                                "reach it may spend the budget).")
    workers: int = Field(4, ge=1, le=64, description="Threads for CPU-bound work off the event loop (encoders, "
                                                     "skills, grading, fact-checks).")
    deadline_s: float = Field(120.0, gt=0, description="Seconds a request may take in all: retries, failover and "
                                                       "every remote call stop waiting once it has passed.")


Entity = Literal["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
                 "STREET_ADDRESS", "DATE_OF_BIRTH"]
PII_ENTITIES: list[str] = list(get_args(Entity))


class PrivacyConfig(BaseModel):
    """Personal data replaced by placeholders before any remote tier sees it, restored in the answer."""

    model_config = ConfigDict(extra="forbid")
    redact: bool = Field(True, description="On for every remote tier unless the tier says `redact: false`.")
    entities: list[Entity] = Field(default_factory=lambda: list(PII_ENTITIES), description="Entity types redacted.")
    min_score: float = Field(0.4, ge=0.0, le=1.0, description="Detections less sure than this are left as they are.")


class LocalOnlyRules(BaseModel):
    """What keeps a request on the local tier whatever the router says."""

    model_config = ConfigDict(extra="forbid")
    pii: list[Entity] = Field(default_factory=list, description="Entity types whose presence keeps the request local.")
    intents: list[str] = Field(default_factory=list, description="Sensitive intents (support desk) kept local.")
    patterns: list[str] = Field(default_factory=list, description="Regular expressions; a match keeps it local.")

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"pattern {pattern!r} is not a regular expression: {err}") from None
        return patterns


class PoliciesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    local_only: LocalOnlyRules = Field(default_factory=LocalOnlyRules)
    tenants: dict[str, LocalOnlyRules] = Field(default_factory=dict, description="Further rules for the keys of "
                                                                                 "a tenant (`hybridlm keys create --tenant`).")


class BudgetsConfig(BaseModel):
    """How budgets (per tier in `tiers`, per key in the key store) count and what happens when one is spent."""

    model_config = ConfigDict(extra="forbid")
    timezone: str | None = Field(None, description="IANA zone where days and months start (default: the machine's).")
    when_exhausted: Literal["degrade", "refuse"] = Field(
        "degrade", description="'degrade': the local tier answers (marked); 'refuse': 429 budget_exhausted.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str | None) -> str | None:
        if name is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {name!r} (an IANA name such as 'Europe/Paris')") from None
        return name


class AgentsConfig(BaseModel):
    """Tasks (`hybridlm run`, `HybridLM.run`, `hybrid/agent`): the LLM plans, local workers do the steps, the LLM
    writes the answer."""

    model_config = ConfigDict(extra="forbid")
    max_steps: int = Field(12, ge=1, le=64, description="A plan with more steps than this is sent back.")
    max_replans: int = Field(2, ge=0, le=5, description="Times an invalid plan goes back to its planner, with "
                             "what is wrong.")
    step_timeout_s: float = Field(60.0, gt=0, description="Seconds one attempt of one step may take.")
    step_retries: int = Field(1, ge=0, le=5, description="Attempts after the first when a step fails or times out "
                              "(a model step's invalid output goes on to the LLM at once: greedy, it would repeat).")
    min_confidence: float = Field(0.5, ge=0.0, le=1.0, description="A local step less sure than this is done "
                                  "again by the LLM.")
    concurrency: int = Field(4, ge=1, le=32, description="Steps of one task run at the same time.")
    budget_usd: float | None = Field(None, gt=0, description="What one task may spend; once spent, no new step "
                                     "starts and the local tier writes the answer from what was done.")
    budget_tokens: int | None = Field(None, gt=0, description="Tokens one task may use, counted like budget_usd.")
    local_planning: bool = Field(True, description="A task the router scores below its threshold is planned by "
                                 "the local model alone (with no valid plan from it, each document is read for "
                                 "what the task asks).")
    shrink_tokens: int = Field(1500, gt=0, description="The most the steps' results may take in the LLM's final "
                               "prompt; longer ones are narrowed to what the task asks.")
    escalation_tokens: int = Field(200, gt=0, description="The most each long text of a step may take when the "
                                   "step is done again by the LLM; longer texts are narrowed to what the step "
                                   "asks, so an escalated step does not cost the LLM a whole document.")


class ContextConfig(BaseModel):
    """Long context cut to its best sentences for the question before a remote tier reads it (`hybridlm.shrinking`)."""

    model_config = ConfigDict(extra="forbid")
    shrink: bool = Field(False, description="Shrink long context in calls to remote tiers.")
    budget_tokens: int = Field(1024, gt=0, description="Tokens (estimated) the kept sentences of the long messages "
                                                       "may take in all, their names, positions and gaps included.")
    min_tokens: int = Field(2048, gt=0, description="Requests of this many tokens (estimated) or fewer are sent whole.")


TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"


class TelemetryConfig(BaseModel):
    """OpenTelemetry traces of each request's stages (`hybridlm.telemetry.tracing`): made and sent only when an
    endpoint is set, here or in the standard OpenTelemetry variables."""

    model_config = ConfigDict(extra="forbid")
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces "
                                      f"(default: ${TRACES_ENDPOINT_ENV}, else ${OTLP_ENDPOINT_ENV} + /v1/traces; "
                                      "none: nothing is traced). Needs hybridlm[otel].")
    service_name: str = Field("hybridlm", min_length=1, description="The spans' service.name.")
    headers: dict[str, str] = Field(default_factory=dict, description="Sent with every export (a collector's key, "
                                    "say), over those of $OTEL_EXPORTER_OTLP_TRACES_HEADERS or "
                                    "$OTEL_EXPORTER_OTLP_HEADERS; `hybridlm config` masks their values.")

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL, such as http://127.0.0.1:4318/v1/traces")
        return url

    def endpoint(self) -> str | None:
        """Where spans go: the configured URL, else the traces variable, else the base variable with the traces
        path; None: nowhere."""
        if self.otlp_endpoint:
            return self.otlp_endpoint
        if url := os.environ.get(TRACES_ENDPOINT_ENV):
            return url
        if base := os.environ.get(OTLP_ENDPOINT_ENV):
            return f"{base.rstrip('/')}/v1/traces"
        return None


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data_dir: Path | None = None
    tiers: dict[str, TierConfig]
    router: RouterConfig = Field(default_factory=RouterConfig)
    profiles: dict[str, ProfileConfig] = Field(
        default_factory=lambda: {
            "cheap": ProfileConfig(threshold=0.7),
            "quality": ProfileConfig(threshold=0.3),
        }
    )
    server: ServerConfig = Field(default_factory=ServerConfig)
    support: SupportConfig = Field(default_factory=SupportConfig)
    rag: RagConfig = Field(default_factory=RagConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    policies: PoliciesConfig = Field(default_factory=PoliciesConfig)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)

    @model_validator(mode="after")
    def _router_tiers_exist(self) -> Config:
        if self.router.local_tier not in self.tiers:
            raise ValueError(f"router.local_tier '{self.router.local_tier}' is not one of the tiers {sorted(self.tiers)}")
        reserved = {"hybrid", "faq", "flow", "no_source"}
        clash = reserved & set(self.tiers)
        if clash:
            raise ValueError(f"tier name {sorted(clash)} is reserved for routing")
        if self.router.shadow_share > 0 and not self.server.store_text:
            raise ValueError("router.shadow_share collects training pairs, which need the full prompts: "
                             "set server.store_text: true")
        return self

    @property
    def remote_tier(self) -> str | None:
        """The LLM tier, or None when none is configured (everything stays local)."""
        name = self.router.remote_tier
        return name if name in self.tiers else None

    def resolved_data_dir(self) -> Path:
        if os.environ.get(DATA_DIR_ENV):
            return Path(os.environ[DATA_DIR_ENV]).expanduser()
        if self.data_dir is not None:
            return self.data_dir.expanduser()
        from platformdirs import user_data_dir

        return Path(user_data_dir("hybridlm"))


def default_config_dict() -> dict[str, Any]:
    """The zero-configuration setup: embedded SLM, and the environment's OpenAI endpoint if any."""
    tiers: dict[str, Any] = {"slm": {"backend": "local"}}
    base_url = os.environ.get("OPENAI_BASE_URL")
    if base_url or os.environ.get("OPENAI_API_KEY"):
        tiers["llm"] = {
            "backend": "openai",
            "base_url": base_url or "https://api.openai.com/v1",
            "model": os.environ.get("HYBRIDLM_LLM_MODEL", DEFAULT_LLM_MODEL),
            "api_key_env": "OPENAI_API_KEY",
            "price": {"input": 0.15, "output": 0.60},
        }
    return {"tiers": tiers}


def invalid_config(source: str, problems: Iterable[tuple[str, str]]) -> ConfigError:
    """The one shape of a bad configuration: the file, then each field and what is wrong with it."""
    lines = "\n".join(f"  {where}: {message}" for where, message in problems)
    return ConfigError(f"{source}: invalid configuration\n{lines}")


def validation_problems(err: ValidationError, top: str = "(top level)") -> Iterator[tuple[str, str]]:
    """(field, what is wrong) for each error, without pydantic's "Value error, " prefix."""
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or top
        yield where, str(e["msg"]).removeprefix("Value error, ")


def parse_config(data: Any, source: str = "<config>") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    if "tiers" not in data:
        data = {**default_config_dict(), **data}
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise invalid_config(source, validation_problems(err)) from None


def find_config(path: str | Path | None = None) -> Path | None:
    """The file named, else $HYBRIDLM_CONFIG, else ./hybridlm.yaml; None when the defaults run."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = os.environ[CONFIG_ENV]
    if path is None and Path(DEFAULT_CONFIG_NAME).is_file():
        path = DEFAULT_CONFIG_NAME
    return None if path is None else Path(path)


def load_config(path: str | Path | None = None) -> Config:
    """The configuration `find_config` finds, checked against the schema (not the registries)."""
    p = find_config(path)
    if p is None:
        return parse_config(default_config_dict(), DEFAULTS_SOURCE)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read config file ({err.strerror or err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    return parse_config(data, str(p))
