"""The pattern recognisers hybridlm adds to Presidio, where Presidio's own miss or over-match.

Each is a Presidio `PatternRecognizer`: a loose regex for the candidates, a checksum or number
rule (`validators`) that throws out the ones that cannot be real, and context words that raise
the score of a weak match (Presidio's context enhancer looks a few words back). A pattern's score
is the confidence when it validates; a failed check drops the match.

Why not Presidio's: its card regex wants 13+ digits with a known prefix and misses 12-digit
Maestro cards; its IBAN recogniser is upper case only; its phone recogniser only knows a list of
regions and misses the local formats of most countries; its e-mail recogniser asks tldextract,
which downloads the public-suffix list on first use (ours reads the snapshot tldextract ships);
it has no street address and no date of birth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import regex
import tldextract
from presidio_analyzer import Pattern, PatternRecognizer

from hybridlm.privacy import validators
from hybridlm.privacy.addresses import AddressRecognizer
from hybridlm.privacy.names import NameListRecognizer

# The public-suffix list tldextract ships, and no fetch: suffix_list_urls=() and no disk cache.
_OFFLINE_TLD = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


class CheckedRecognizer(PatternRecognizer):
    """A pattern recogniser whose matches must pass `check` (the pattern's score is kept, not raised to 1)."""

    def __init__(self, entity: str, patterns: list[Pattern], context: list[str],
                 check: Callable[[str], bool] | None = None) -> None:
        super().__init__(supported_entity=entity, name=f"hybridlm_{entity.lower()}", patterns=patterns,
                         context=context, supported_language="en")
        self._check = check

    def invalidate_result(self, pattern_text: str) -> bool:
        return self._check is not None and not self._check(pattern_text)


def _email_ok(text: str) -> bool:
    return _OFFLINE_TLD(text.rpartition("@")[2]).suffix != ""


def _card_ok(text: str) -> bool:
    number = validators.digits(text)
    return 12 <= len(number) <= 19 and validators.luhn_ok(number)


_ISO_DATE = regex.compile(r"(?:19|20)\d\d-[01]\d-[0-3]\d\b")


def _phone_ok(text: str) -> bool:
    if _ISO_DATE.match(text):
        return False
    number = validators.digits(text.split("x")[0].split("ext")[0])
    return 7 <= len(number) <= 15 and len(set(number)) > 2


# Digit groups of 2-4, joined by single spaces or dashes, as cards are written.
_CARD = r"(?<![\w.-])(?:\d{12,19}|\d{4}(?:[ -]\d{2,6}){2,4})(?![\w-])"
_PHONE_GROUPS = r"\(?\d{1,5}\)?(?:[ .-]?\(?\d{1,5}\)?){1,6}"
_PHONE = (r"(?<![\w.+/-])(?:\+|00)?" + _PHONE_GROUPS + r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w/-]|\.\d)")
PHONE_CONTEXT = ["phone", "telephone", "tel", "mobile", "cell", "cellphone", "fax", "call", "desk", "office",
                 "contact", "number", "reach", "text", "whatsapp", "landline", "home", "work"]


# A name as people write it: capitalised words, perhaps a middle initial (case-sensitive: Presidio matches
# patterns case-insensitively unless told).
_PERSON_NAME = r"(?-i:(?!(?:She|He|They|It|We|You|I|This|That|Who|There|Here|The|My|Our|Your)\b)\p{Lu}[\p{Ll}'’-]+(?:[ ](?:\p{Lu}\.?|(?:de|da|van|von|ten|le|la|del|di)[ ])?\p{Lu}[\p{Ll}'’-]+){0,2})"
_PERSON_LEAD_IN = (r"(?<=(?:\bname(?:[ ]is)?[ ]*:?[ ]*|\b(?:hi|hello|dear|hey|thanks|regards|sincerely|mr|mrs|ms|miss|dr|prof)"
                   r"\.?,?[ ]+|\bi'?m[ ]|\bi[ ]am[ ]|\bthis[ ]is[ ]))")


def build_recognizers() -> list[Any]:
    """Every recogniser hybridlm registers, for the leak types and dates of birth."""
    return [
        CheckedRecognizer("EMAIL_ADDRESS", [Pattern(
            "email", r"\b[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+\b", 0.9)], ["email", "e-mail", "mail"],
            _email_ok),
        CheckedRecognizer("CREDIT_CARD", [
            Pattern("card 13-19 digits", _CARD, 0.6),
        ], ["card", "credit", "debit", "visa", "mastercard", "amex", "cc", "maestro", "discover", "jcb", "diners"],
            _card_ok),
        CheckedRecognizer("IBAN_CODE", [Pattern(
            "iban", r"(?i)\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,4})?\b", 0.9)],
            ["iban", "account", "bank", "transfer", "wire"], validators.iban_ok),
        CheckedRecognizer("US_SSN", [
            Pattern("ssn dashed", r"\b\d{3}-\d{2}-\d{4}\b", 0.7),
            Pattern("ssn spaced", r"\b\d{3} \d{2} \d{4}\b", 0.35),
            Pattern("ssn plain", r"\b\d{9}\b", 0.1),
        ], ["ssn", "social", "security", "ss#", "ssn#"], validators.ssn_ok),
        CheckedRecognizer("IP_ADDRESS", [
            Pattern("ipv4", r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)", 0.85),
            Pattern("ipv6", r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])", 0.85),
        ], ["ip", "address", "server", "host", "ipv4", "ipv6"], validators.ip_ok),
        CheckedRecognizer("PHONE_NUMBER", [
            Pattern("phone international", r"(?<![\w+])\+\d{1,3}[ .-]?" + _PHONE_GROUPS + r"(?![\w/-])", 0.7),
            Pattern("phone grouped", _PHONE, 0.45),
        ], PHONE_CONTEXT, _phone_ok),
        CheckedRecognizer("DATE_OF_BIRTH", [Pattern(
            "date after born/dob",
            r"(?i)(?<=born on |born in |born |dob: |dob |birth: |birthday: |birth date: |birthday is )"
            r"(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\w+ \d{1,2}(?:st|nd|rd|th)?,? \d{4}|\d{1,2} \w+ \d{4})", 0.8)],
            ["born", "birth", "dob", "birthday"]),
        CheckedRecognizer("PERSON", [
            Pattern("name after a greeting or title", _PERSON_LEAD_IN + _PERSON_NAME, 0.7),
            # above spaCy NER's 0.85, so the full name wins over the surname alone that NER tags
            Pattern("name with a middle initial", r"(?-i:\b\p{Lu}\p{Ll}+[ ]\p{Lu}\.?[ ]\p{Lu}[\p{Ll}'’-]+)\b", 0.86),
            Pattern("name before what people do", _PERSON_NAME + r"(?=[ ](?:lives|had[ ]given|was[ ]born|is[ ]a|works|said|wrote"
                    r"|asked|told|replied|shouted|yelled|whispered)\b)", 0.7),
            Pattern("name spoken to", r"(?<=\b(?:asked|told|(?:said|replied|shouted|yelled|whispered|spoke|talked)[ ](?:to|at))[ ])"
                    + _PERSON_NAME, 0.7),
            Pattern("name after call me, named, called", r"(?<=\b(?:calls?[ ]me|named|called)[ ])" + _PERSON_NAME, 0.6),
            Pattern("lower-case name after my name is", r"(?-i:(?<=\bmy[ ]name[ ]is[ ])\p{Ll}{2,}(?:[ ]\p{Ll}{2,})?(?=[ ]*(?:[.,!?\n]|\Z)))",
                    0.6),
            Pattern("name alone on a text's first line", r"\A[ ]*\K" + _PERSON_NAME + r"(?=[ ]*\n)", 0.6),
        ], []),
        AddressRecognizer(),
        NameListRecognizer(),
    ]
