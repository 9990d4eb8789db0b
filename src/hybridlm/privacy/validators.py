"""Checksums and number rules that tell a real card, IBAN, SSN or IP address from any digits that look like one.

Pure functions on the matched text, so each recogniser's regex can be loose and its precision
comes from here.
"""

from __future__ import annotations

import ipaddress
import re

_NOT_DIGIT = re.compile(r"\D")


def digits(text: str) -> str:
    return _NOT_DIGIT.sub("", text)


def luhn_ok(number: str) -> bool:
    """The Luhn check every payment card number passes (and 9 in 10 random numbers fail)."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Lengths by country (ISO 13616 registry), for the countries whose IBANs people paste most.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24,
    "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GI": 23, "GL": 18, "GR": 27,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "ME": 22, "MK": 19, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26,
    "UA": 29,
}


def iban_ok(text: str) -> bool:
    """ISO 13616: a known country's length and the mod-97 checksum (any case, spaces allowed)."""
    iban = re.sub(r"[\s-]", "", text).upper()
    if len(iban) < 15 or not iban.isalnum() or IBAN_LENGTHS.get(iban[:2]) not in (None, len(iban)):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def ssn_ok(text: str) -> bool:
    """The SSA's rules: no area 000, 666 or 9xx, no group 00, no serial 0000, not all one digit."""
    number = digits(text)
    if len(number) != 9 or len(set(number)) == 1:
        return False
    area, group, serial = number[:3], number[3:5], number[5:]
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
