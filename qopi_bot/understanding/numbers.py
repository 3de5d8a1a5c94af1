"""Numbers as practices write them: "82.5 %", "OQS 0.81", "seventy-eight percent"."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
_WORD = "|".join(sorted([*_UNITS, *_TENS, "hundred", "point", "and"], key=len, reverse=True))
# A run of number words: "seventy-eight", "seventy eight point five", "one hundred".
NUMBER_WORDS = re.compile(rf"\b(?:{_WORD})(?:[\s-]+(?:and a (?:half|quarter)|{_WORD}))*\b")


_YEAR_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_YEAR_WORDS = re.compile(rf"\b(?:twenty|two thousand(?: and)?)[\s-]+(?:twenty[\s-]+({_YEAR_UNITS})|(twenty))\b")


def years_to_digits(text: str) -> str:
    """'twenty twenty four' and 'two thousand twenty-five' -> '2024', '2025' (dictated years)."""
    def swap(m: re.Match[str]) -> str:
        unit = m.group(1)
        return str(2020 + (_UNITS[unit] if unit else 0))
    return _YEAR_WORDS.sub(swap, text)


def words_to_decimal(phrase: str) -> Decimal | None:
    """'seventy-eight point five' -> 78.5; None when the words do not make one number."""
    tokens = [t for t in re.split(r"[\s-]+", phrase.lower()) if t and t != "and"]
    # "seventy seven and a half" -> 77.5
    part = {"half": "5", "quarter": "25"}.get(tokens[-1]) if len(tokens) >= 3 and tokens[-2] == "a" else None
    if part is not None:
        whole_part = words_to_decimal(" ".join(tokens[:-2]))
        return Decimal(f"{whole_part}.{part}") if whole_part is not None and whole_part == int(whole_part) else None
    if not tokens:
        return None
    whole, fraction_digits, in_fraction, seen = 0, "", False, False
    for token in tokens:
        if token == "point":
            if in_fraction or not seen:
                return None
            in_fraction = True
        elif in_fraction:
            if token not in _UNITS or _UNITS[token] > 9:
                return None
            fraction_digits += str(_UNITS[token])
        elif token == "hundred":
            whole = (whole or 1) * 100
            seen = True
        elif token in _TENS:
            if whole % 100 not in (0,):
                return None
            whole += _TENS[token]
            seen = True
        elif token in _UNITS:
            if whole % 10 and whole % 100 >= 10 or (whole % 100 and whole % 100 < 10):
                return None
            whole += _UNITS[token]
            seen = True
        else:
            return None
    if not seen:
        return None
    return Decimal(f"{whole}.{fraction_digits}") if fraction_digits else Decimal(whole)


def parse_decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None
