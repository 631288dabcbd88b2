"""Modifiers read from free text: ages and reported vital signs (temperature, pulse, SpO2, ...).

Functions take normalised (lower-case) text and return values with their character spans. Values
outside plausible ranges are dropped; temperatures in Fahrenheit are converted to Celsius and blood
glucose in mg/dL to mmol/L.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Found(NamedTuple):
    name: str  # "age_years" or a vital name (see rules.VITALS)
    value: float
    start: int
    end: int


_WORDNUM = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
# compound word numbers first ("twenty six" must not read as 20)
_N = r"(\d{1,3}|(?:" + _TENS + r")[\s-](?:" + _UNITS + r")\b|" + "|".join(_WORDNUM) + r")"
_NUM = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,2})?)(?![\d])")
_UNIT_PER_YEAR = {"year": 1.0, "yr": 1.0, "month": 12.0, "week": 52.0, "day": 365.0}

_AGE_PATTERNS = [
    re.compile(_N + r"[\s-]*(year|yr|month|week|day)s?[\s-]*old\b"),
    re.compile(_N + r"\s*(?:yo|y/o|yrs? old)\b()"),
    re.compile(_N + r" (year)s of age\b"),
    re.compile(
        r"\b(?:i'?m|i am|aged?|he'?s|she'?s|he is|she is|they'?re|baby is|son is|daughter is)\s+" + _N
        + r"(?:\s+(month|week|day)s?\b(?! pregnant))?(?![.,]?\d)"
        r"(?!\s*(?:weeks?|wks?|months?|days?|hours?|hrs?|mins?|minutes?|%|kgs?|kilos?|lbs?|pounds|stone|st|cm|ft|"
        r"feet|degrees?|°|mg|ml|times?|am|pm|o'?clock|bpm|mmol|out of|and a half|minutes|c\b|f\b))"
    ),
    re.compile(r"\bin (?:my|his|her|their) (\d)0'?s\b()"),
]


def _num(s: str) -> float:
    parts = re.split(r"[\s-]+", s)
    if len(parts) == 2 and all(p in _WORDNUM for p in parts):
        return float(_WORDNUM[parts[0]] + _WORDNUM[parts[1]])
    return float(_WORDNUM.get(s, s))


def find_ages(text: str) -> list[Found]:
    out: list[Found] = []
    for i, rx in enumerate(_AGE_PATTERNS):
        for m in rx.finditer(text):
            n = _num(m.group(1))
            unit = (m.group(2) or "year") if m.lastindex and m.lastindex >= 2 else "year"
            if i == len(_AGE_PATTERNS) - 1:  # "in my 70s"
                years = n * 10 + 5
            else:
                years = n / _UNIT_PER_YEAR.get(unit, 1.0)
            if 0 <= years <= 120 and not any(m.start() < f.end and f.start < m.end() for f in out):
                out.append(Found("age_years", round(years, 3), m.start(), m.end()))
    for m in re.finditer(r"\bnew[\s-]?born\b", text):
        out.append(Found("age_years", 0.02, m.start(), m.end()))
    return out


# (name, keyword regex, plausible range, window chars after the keyword)
_KEYWORDS = [
    ("temp_c", r"\b(?:temp(?:erature)?s?|fever|thermometer|temp was|temperature of)\b", 35.0, 43.0),
    ("heart_rate", r"\b(?:heart ?rate|pulse(?: rate)?|hr|heart (?:is )?(?:beating|racing|going) at)\b", 25.0, 250.0),
    ("spo2", r"\b(?:sp ?o2|o2(?: sats?| level)?|sats?|saturations?|oxygen(?: levels?| sats?| saturations?| reading)?|"
             r"pulse ?ox(?:imeter)?|oximeter)\b", 50.0, 100.0),
    ("resp_rate", r"\b(?:breathing rate|respiratory rate|resp rate|rr)\b", 4.0, 80.0),
    ("glucose_mmol", r"\b(?:blood sugars?|sugars?|glucose|bms?|cbg|sugar levels?|sugar reading)\b", 0.5, 60.0),
]
_KW = [(name, re.compile(kw), lo, hi) for name, kw, lo, hi in _KEYWORDS]
_TEMP_UNIT = re.compile(r"(\d{2,3}(?:\.\d{1,2})?)\s*(?:°|º|degrees?|deg)\s*(c|f|celsius|centigrade|fahrenheit)?\b|"
                        r"(\d{2,3}(?:\.\d{1,2})?) ?(c|f)\b")
_HR_UNIT = re.compile(r"(\d{2,3})\s*(?:bpm|beats (?:a|per) min(?:ute)?)\b")
_SPO2_UNIT = re.compile(r"(\d{2,3})\s*%\s*(?:on|oxygen|o2|sats?|saturation)")
_BP = re.compile(r"\b(?:blood pressure|bp)\D{0,20}?(\d{2,3})\s*(?:/|over)\s*(\d{2,3})")


def _temp_c(v: float, unit: str | None) -> float | None:
    if unit and unit.startswith("f") or (not unit and 93 <= v <= 110):
        v = (v - 32) * 5 / 9
    return round(v, 1) if 30.0 <= v <= 45.0 else None


def find_vitals(text: str) -> list[Found]:
    out: list[Found] = []

    def add(name: str, v: float | None, s: int, e: int) -> None:
        if v is not None and not any(f.name == name and f.start < e and s < f.end for f in out):
            out.append(Found(name, v, s, e))

    for m in _TEMP_UNIT.finditer(text):
        raw, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        add("temp_c", _temp_c(float(raw), unit), m.start(), m.end())
    for m in _HR_UNIT.finditer(text):
        add("heart_rate", float(m.group(1)), m.start(), m.end())
    for m in _SPO2_UNIT.finditer(text):
        v = float(m.group(1))
        add("spo2", v if 50 <= v <= 100 else None, m.start(), m.end())
    for m in _BP.finditer(text):
        v = float(m.group(1))
        add("systolic_bp", v if 50 <= v <= 260 else None, m.start(), m.end())
    for name, rx, lo, hi in _KW:
        for m in rx.finditer(text):
            window = text[m.end(): m.end() + 40]
            for n in _NUM.finditer(window):
                v = float(n.group(1))
                tail = window[n.end(): n.end() + 12].lstrip()
                if name == "temp_c":
                    unit = "f" if tail.startswith(("f", "°f", "degrees f", "fahrenheit")) else None
                    v = _temp_c(v, unit)
                elif name == "glucose_mmol" and (v > 35 or tail.startswith("mg")):
                    v = round(v / 18.0, 1)
                if tail.startswith(("days", "day", "hours", "hrs", "weeks", "times", "minutes", "mins")):
                    continue
                if v is not None and lo <= v <= hi:
                    add(name, v, m.start(), m.end() + n.end())
                    break
    return out
