"""Street addresses: a street line found by its shape, then the lines of the address that follow it.

No NER model tags street addresses, and their shapes differ by country: "90 Whitchurch Road",
"Via Tasso 129", "Schachterlweg 62", "172 Maneeži 75", "Apt. 501", "PSC 9009, Box 9725 / APO AA
33274". A street line is one of those shapes (or, after "lives at", "address:" and the like,
any capitalised words and a house number); from it the match runs on over what an address has
after its street, separated by commas, newlines or spaces: units, post codes, state codes and
place names, until a word or punctuation that no address has. A street line in lower case ("3911
fourth avenue", "2613 avenida praia 1") may have lower-case place names after it, but only before a
comma, a line's end or a post code, and never a stop word (so "12 main street near the park" ends
at "street"). A unit written before the street line ("Suite 541 6343 Skogstien 106") is part of it.
"""

from __future__ import annotations

import functools
from typing import Any

import regex
from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult

_CAP = r"\p{Lu}[\p{L}'’\-]*\.?"
_LINK = (r"(?:de|del|della|delle|dei|degli|di|da|dal|do|dos|das|des|van|von|der|den|la|le|les|du|u\.|út|utca|tér|kapu|sor|köz|körút|fasor|"
         r"nad|pod|am|an|im|op|ter|y)")
_NAME = rf"{_CAP}(?:[ ](?:{_LINK}[ ])?{_CAP}){{0,3}}(?:[ ]{_LINK})?"
_NUM = r"\d{1,5}(?:[A-Za-z](?!\w))?(?:[-/]\d{1,4})?\.?"
_SUFFIX = (r"(?:Street|Str|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Square|Sq|"
           r"Terrace|Trail|Parkway|Pkwy|Highway|Hwy|Circle|Crescent|Close|Mill|Mills|Lodge|Gardens|Grove|Hill|"
           r"Hills|Row|Walk|Park|Plaza|Mews|Alley|Crossing|Heights|Ridge|Loop|Path|Pike|Run|View|Meadow|Meadows|"
           r"Green|Glen|Bridge|Creek|Springs|Estates?|Junction|Point|Port|Harbou?r|Lakes?|Valley|Vale|Woods?|"
           r"Fields?|Manor|Rise|Parade|Esplanade|Quay|Wharf|Gate|Cove|Falls|Ford|Forge|Haven|Knolls?|Landing|"
           r"Mount|Orchard|Pass|Pines?|Plains|Ranch|Shores?|Station|Summit|Trace|Turnpike|Villa|Vista|Wells?|"
           r"Dale|Heath|Hollow|Isle|Oval|Stream|Cape|Causeway|Cliffs?|Common|Corners?|Courts?|Curve|Ferry|Forest|"
           r"Garden|Gateway|Groves|Keys?|Locks?|Extension|Ways|Wall|Underpass|Overpass|Expressway|Freeway|Motorway"
           r")\b\.?")
_PREFIX = (r"(?i:via|viale|rua|avenida|av\.?|avda\.?|calle|carrer|rue|avenue|boulevard|bd\.?|chemin|place|impasse|"
           r"all[ée]e|ul\.|ulica|al\.|aleja|plac|os\.|piazza|piazzale|corso|strada|largo|vicolo|travessa|pra[çc]a|"
           r"camino|paseo|quadra|rambla|ronda|carretera|avinguda|cesta|utca|λεωφόρος|λεωφ\.|οδός)")
_COMPOUND = (r"\p{L}[\p{L}\-]*(?i:stra(?:ß|ss)e|str\.|weg|gasse|platz|allee|ring|damm|gatan|v[äa]gen|gr[äa]nd|"
             r"veien|vegen|gata|vej|gade|laan|straat|dreef|kade|singel|plein|katu|tie|kuja|polku|utca|iela|gatve|"
             r"ulica|steeg|wei|stee|torg|torget|tori|rinne|kaari|v[äa]g|bakken|lund|hof|markt|graben|ufer)")
# A street word written apart from the street's name, then the house number: "Villacher Strasse 89", "Trenerys gate 232".
_DETACHED = (r"(?i:stra(?:ß|ss)e|str\.|gate|gata|gatan|vej|gade|weg|gasse|platz|allee|utca|útja|út|u\.|ulica|iela|katu|tie"
             r"|straat|laan|vegen|veien|vei|veg|v[äa]gen|terrasse|plass|allé|rkp\.|rakpart|krt\.|körút|tér|köz|sétány)")
_UNIT = r"(?i:apt\.?|apartment|suite|ste\.|unit|flat|room|floor|fl\.|bldg\.?|building)[ ]?#?\d{1,5}[A-Za-z]?\b"
_TITLE = r"(?:Mr|Mrs|Ms|Dr|Prof)\.?[ ]"  # "Dr. Wells," is a person, not a street named by its suffix alone
_MILITARY = (r"(?i:(?:psc|unit|cmr)[ ]\d{3,5},?[ ]box[ ]\d{3,5}|(?:uss|usns|usnv|usns|uscgc)[ ]\p{L}+(?:[ ]\p{L}+)?"
             r"|p\.?[ ]?o\.?[ ]box[ ]\d{1,6})")
_MILITARY_CITY = r"(?i:(?:apo|fpo|dpo)[ ](?:aa|ae|ap)[ ]\d{5})"

# Lower-case street lines: a house number, words and a street word, or a house number, a street word first,
# words and a number ("3911 fourth avenue", "2613 avenida praia 1"); the tail after them may be lower case too.
_LOWER = r"\p{Ll}[\p{Ll}'’\-]*"
_LOWER_SUFFIX = (r"(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|square|"
                 r"terrace|parkway|pkwy|highway|hwy|circle|crescent|close|trail|alley|plaza)\b\.?")
# Street lines that are addresses by their shape alone.
_STREET = regex.compile(
    rf"(?:\b\d{{1,6}}[ ])?(?:"
    rf"\b{_NUM}[ ]{_NAME}[ ]{_SUFFIX}"  # 90 Whitchurch Road
    rf"|(?:\b{_NUM}[ ])?\b{_PREFIX}[ ](?:{_LINK}[ ])?{_NAME}(?:[ ]{_NUM}(?!\d))?"  # Via Tasso 129, 33 avenue de Provence
    rf"|(?:\b{_CAP}[ ])?\b{_COMPOUND}[ ]{_NUM}(?!\d)"  # Schachterlweg 62
    rf"|\b\d{{1,6}}[ ]{_NAME}[ ]\d{{1,5}}\b\.?"  # 172 Maneeži 75
    rf"|(?:\b{_NUM}[ ])?\b{_CAP}(?:[ ]{_CAP})?[ ]{_DETACHED}[ ]{_NUM}(?!\d)"  # Villacher Strasse 89, 808 Kálmán Imre u. 12.
    rf"|\b(?!{_TITLE})(?:{_NAME})[ ]{_SUFFIX}(?=[ ]?(?:,|\n|$| and\b| street\b))"  # Diakou Street, (not Dr. Wells,)
    rf"|(?i:the[ ])?(?i:corner[ ]of)[ ](?:[^\n,.?!]|\.(?=[ ])){{3,60}}?[ ]and[ ]{_NAME}"  # the corner of X and Y
    rf"|\b{_NUM}[ ](?:{_LOWER}[ ]){{1,3}}{_LOWER_SUFFIX}"  # 3911 fourth avenue
    rf"|\b{_NUM}[ ]{_PREFIX}[ ](?:{_LOWER}[ ]){{1,3}}\d{{1,5}}(?!\d)"  # 2613 avenida praia 1
    rf"|\b{_MILITARY}(?:[ ]?[,\n][ ]*{_MILITARY_CITY})?"
    rf"|\b{_MILITARY_CITY}"
    rf")"
)
# Capitalised words and a house number, or a unit: an address only after words that say one follows.
_LEAD_IN = (r"(?i:lives?[ ](?:at|on)|living[ ](?:at|on)|address(?:[ ]is)?:?|located[ ]at|(?:office|restaurant|shop)[ ]is[ ]at"
            r"|meet[ ](?:me|you|us)[ ]at|sent[ ]to|send[ ](?:it|this|them)?[ ]?to|ship(?:ped)?[ ]to|deliver(?:ed)?[ ]to"
            r"|moved[ ]to|drops[ ]you[ ]off[ ]at|enter[ ]on|user:)[ \n]+")
_LED_STREET = regex.compile(rf"(?<={_LEAD_IN})(?:\b{_NAME}[ ]{_NUM}(?!\d)|(?:\d{{1,6}}[ ])?\d{{1,5}}[ ]{_NAME}|\b{_UNIT}"
                            rf"|(?:\d{{1,6}}[ ])?\d{{1,5}}[ ]{_LOWER}(?:[ ]{_LOWER}){{0,2}}[ ]\d{{1,5}}(?!\d))")
# A unit alone on a line (of a quoted message too: "> Apt. 316").
_QUOTE = r"[>|•*·]"  # what starts a quoted or bulleted line
_UNIT_LINE = regex.compile(r"(?m)^[ ]*(?:[^\w\s]+[ ]*)?\K" + _UNIT + r"(?=[ ]*$)")
# A unit written before the street line: "Suite 541 6343 Skogstien 106".
# (or the unit's word alone, when the street line took its number as a house number: "Suite 541 6343 Skogstien").
_UNIT_BEFORE = regex.compile(rf"\b(?:{_UNIT}[ ]*,?[ ]*|(?i:apt\.?|apartment|suite|ste\.|unit|flat|room)[ ]?#?)\Z")
_TAIL_SEGMENT = regex.compile(
    rf"(?:{_UNIT}|\d{{4,6}}(?:-\d{{3,4}})?|\d{{3}}[ ]\d{{2}}|\d{{4}}[ ]?\p{{Lu}}{{2}}|\p{{Lu}}\d\p{{Lu}}[ ]?\d\p{{Lu}}\d"
    rf"|\p{{Lu}}{{1,2}}\d[\p{{Lu}}\d]?[ ]\d\p{{Lu}}{{2}}|\p{{Lu}}{{2}}|nan|{_NAME}|\({_NAME}\)|{_MILITARY_CITY}"
    rf"|\d{{1,3}}(?=[ ]*(?:[,\n]|$)))(?=[ ]*(?:[,\n?!;:)]|\.(?:\s|$)|$)|[ ])"
)
# Place names in lower case, after a lower-case street line only, and only before a comma, a line's end or a post code.
_LOWER_TAIL = regex.compile(rf"{_LOWER}(?:[ ]{_LOWER})?(?=[ ]*(?:[,\n;)]|\.(?:\s|$)|$|[ ]\d{{4,6}}\b))")
_SEPARATOR = regex.compile(rf"(?:[ ]*(?:,|\n[ ]*(?:{_QUOTE}+[ ]*)?))+[ ]*|[ ]")
MAX_TAIL = 6
SCORE = 0.9  # above spaCy NER's 0.85: a street name is often tagged PERSON


def _tail_end(text: str, end: int, lower: bool = False) -> int:
    """Where the address that has a street line ending at `end` ends: after the units, codes and places that follow
    (lower-case place names too if `lower`, unless they are stop words)."""
    for _ in range(MAX_TAIL):
        sep = _SEPARATOR.match(text, end)
        if not sep:
            break
        segment = _TAIL_SEGMENT.match(text, sep.end())
        if lower and (not segment or segment.end() == sep.end()):
            segment = _LOWER_TAIL.match(text, sep.end())
            if segment and any(w in _stop_words() for w in segment.group().split()):
                segment = None
        if not segment or segment.end() == sep.end():
            break
        end = segment.end()
    last_word = text[:end].rsplit(" ", 1)[-1]
    if last_word.endswith(".") and len(last_word) > 4:  # a full stop, not an abbreviation ("St.", "u. 15.")
        end -= 1
    return end


@functools.cache
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def _start(text: str, start: int) -> int:
    """Where the address whose street line starts at `start` starts: before a unit written ahead of it."""
    before = _UNIT_BEFORE.search(text, max(0, start - 24), start)
    return before.start() if before else start


class AddressRecognizer(LocalRecognizer):
    """STREET_ADDRESS: the street line and the rest of the address after it."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["STREET_ADDRESS"], name="hybridlm_street_address",
                         supported_language="en")

    def load(self) -> None:
        """Nothing to load: the patterns compile at import."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        """Every candidate, overlapping ones too: the detector keeps the surest of those that overlap."""
        metadata = {RecognizerResult.RECOGNIZER_NAME_KEY: self.name, RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}
        return [RecognizerResult("STREET_ADDRESS", _start(text, match.start()),
                                 _tail_end(text, match.end(), lower=match.group().islower()), SCORE,
                                 analysis_explanation=AnalysisExplanation(self.name, SCORE, pattern_name=kind),
                                 recognition_metadata=dict(metadata))
                for kind, pattern in (("street", _STREET), ("after a lead-in", _LED_STREET), ("unit line", _UNIT_LINE))
                for match in pattern.finditer(text, overlapped=False)]
