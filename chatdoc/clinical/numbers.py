"""Numbers in a patient's turn, read as typed, normalised quantities (vital signs, age, time, dose...).

``find_quantities(text, now=...)`` takes the ORIGINAL text (any case, curly quotes, typos such as "temp 38.9c")
and returns every quantity found, in order of position, with its span in that text. Matching runs on a
length-preserving fold of the text (lower case, straight quotes, plain spaces and dashes), so spans map 1:1.

Conventions
-----------
* Numbers: a decimal is one number ("38.9" never reads as 38 and 9); a European comma is a decimal point when
  one or two digits follow ("38,5" = 38.5). Digits glued to letters ("b12", "x2"), money, clock times ("3pm",
  "10:30"), dates ("14/03/1961") and phone-number-like runs (9+ digits) are never read. Word numbers
  ("twenty-six", "twenty six") are read whole.
* temperature: degrees C, 1 decimal. A value written in F ("102.2F", "101 degrees f", "103 fahrenheit") or a bare
  value of 93-110 ("temp 101") is Fahrenheit. Kept only if 30-45 C. A bare decimal 35.0-42.9 with no keyword
  and no unit ("it was 38.9") is read as a temperature, at the lowest priority.
* heart_rate bpm 20-250, resp_rate /min 4-80, spo2 % 50-100, blood_pressure systolic 50-300 mmHg with
  ``value2`` the diastolic (20-200, below the systolic), glucose mmol/L 0.5-60 (mg/dL, or a bare value
  over 35, is divided by 18 and rounded to 1 decimal). Vital signs need a keyword ("sats", "BP", "sugar"...) or
  a unit ("bpm", "mg/dl", "% on air", "150 over 95" / "120/80" for blood pressure).
* age: years, 4 decimals; months /12, weeks *7/365.25, days /365.25 (3 weeks = 0.0575). "newborn" = 0.02.
  "in my 70s" = 75 ("early" +2 = 72, "mid" +5, "late" +8 = 78; "teens" = 15). "I'm N" is not an age when a
  unit follows ("I'm 32 weeks pregnant" -> gestation, "I'm 70 kg" -> weight, "I'm 6 foot", "I'm 5 days late").
* gestation: weeks, 2 decimals ("36+2 weeks" = 36.29; "N months pregnant" = N * 52/12). Needs "pregnant" /
  "gestation", "I'm/she's N weeks" or "at N weeks" (4-44).
* duration (how long): hours. minute 1/60, day/night 24, week 168, fortnight 336, month 720 (30 days),
  year 8760 (365 days). "a/an/one" = 1, "a couple (of)" = 2, "a few"/"several" = 3, "half an hour" = 0.5,
  "... and a half" adds 0.5 of the unit, a range ("2-3 days", "2 or 3 days") takes the upper bound,
  "the last week" = 1 week. Frequencies are not durations ("every 4 hours", "20 cigarettes a day", "once a week").
* onset (when it began): hours before ``now`` (default ``datetime.now()``), 3 decimals.
  "N <unit> ago" as for durations; "yesterday" = 24 exactly; "yesterday morning/afternoon/evening/night" =
  hours since that time yesterday; "the day before yesterday" = 48; "last night"/"overnight" = 12 (a fixed
  convention, independent of the clock: we do not know when in the night); "this morning/afternoon/evening" =
  hours since 08:00/14:00/18:00 of now's day, minimum 1; "since/on/last Tuesday" = hours since 00:00 of the
  most recent Tuesday strictly before today (so on a Tuesday it is 7 days back; "Tuesday night" uses 22:00);
  "last week/month/year" = 168/720/8760; "in/since 2015" = (now.year - 2015) * 8760 ("born in" is skipped).
  Vague times ("when I was a child", "a while ago") and clock times are not read.
* severity: 0-10 on "/10": "7/10", "8 out of 10", "6.5/10", "it's a 9", "I'd rate it 7", "pain score 8"
  (over ten out of ten is capped at 10).
* dose: value and unit as written, unit normalised to mg/mcg/g/ml/units; only the strength is read
  ("two 500 mg tablets" -> 500 mg; the count and drug name are left out). Alcohol units are skipped.
* weight: kg, 1 decimal (stone 6.35029, lb 0.453592); 0.3-350 kg.

Overlaps: every rule runs over the whole text; where matches overlap the longest wins (ties: the earlier rule in
``_RULES``). Spans of keyword-led readings include the keyword ("temp of 39.2C"); ``raw`` is the value as
written ("39.2C", "three weeks", "since Tuesday"). Pure, no I/O; regexes are compiled at import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Kind = Literal["temperature", "heart_rate", "resp_rate", "spo2", "blood_pressure", "glucose", "age", "gestation",
               "duration", "onset", "severity", "dose", "weight"]


@dataclass(frozen=True)
class Quantity:
    kind: Kind
    value: float            # normalised (see the module docstring)
    unit: str               # "C", "bpm", "/min", "%", "mmHg", "mmol/L", "years", "weeks", "hours", "/10",
                            # "mg"/"mcg"/"g"/"ml"/"units", "kg"
    start: int              # character span in the ORIGINAL text
    end: int
    text: str               # text[start:end]
    value2: float | None = None   # diastolic for blood_pressure
    raw: str = ""           # the value as written, e.g. "102.2F", "three weeks", "since Tuesday"


# --------------------------------------------------------------------------------------------- text fold

_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u201c": '"',
                       "\u201d": '"', "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2010": "-", "\u2011": "-",
                       "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2044": "/", "\u00ba": "\u00b0",
                       "\u02da": "\u00b0"})


def _fold(text: str) -> str:
    """Lower case, straight quotes, plain spaces/dashes; same length as ``text``."""
    t = text.translate(_FOLD)
    low = t.lower()
    if len(low) == len(t):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in t)


# --------------------------------------------------------------------------------------------- building blocks

_ONES = "one|two|three|four|five|six|seven|eight|nine"
_TEENS = "ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_WORDNUM = {w: i + 1 for i, w in enumerate(_ONES.split("|"))}
_WORDNUM |= {w: i + 10 for i, w in enumerate(_TEENS.split("|"))}
_WORDNUM |= {w: (i + 2) * 10 for i, w in enumerate(_TENS.split("|"))}

# a word number; compounds first so "twenty six" is 26, not 20
_WORD = rf"\b(?:(?:{_TENS})(?:[\s-](?:{_ONES})\b)?|{_TEENS}|{_ONES})\b"
# digits: whole decimal ("38.9", "38,5"); not a clock time, not part of a longer digit run or a word ("b12")
_DCORE = r"\d{1,4}(?:[.,]\d{1,2})?(?!\d|[.,]\d|:\d|\s*(?:am|pm|a\.m|p\.m|o'?clock)\b)"
_NUM = r"(?<![\w.,/+\-£$€#])" + _DCORE
_NUMW = rf"(?:{_NUM}|{_WORD})"
_INT3 = r"(?<![\w.,/+\-£$€#])\d{2,3}(?![\d]|[.,]\d)"   # blood pressure halves
# after a vital-sign keyword the number may be glued to it ("hr120", "temp38.5", "bp150/90")
_KNUM = r"(?<![\d.,/+\-£$€#])" + _DCORE
_KINT3 = r"(?<![\d.,/+\-£$€#])\d{2,3}(?![\d]|[.,]\d)"
_KEND = r"(?![a-z])"   # the end of a vital-sign keyword

# a time quantity: "3", "three", "a", "a couple of", "half an", "2-3", "2 or 3", "2 and a half"
_QTY = (rf"(?<![\w'])(?P<q>an?\s+couple(?:\s+of)?|couple\s+of|an?\s+few|few|several|half\s+an?|{_NUMW}|an?\b)"
        rf"(?:\s*(?:-|to|or)\s*(?P<q2>{_DCORE}|{_WORD}))?(?P<qh>\s+and\s+a\s+half)?")
_TUNIT = r"(?P<u>min(?:ute)?s?|hours?|hrs?|h|days?|nights?|weeks?|wks?|fortnights?|months?|mths?|years?|yrs?)\b"
_QUAL = (r"(?:(?:about|around|roughly|approximately|approx|nearly|almost|over|more\s+than|less\s+than|under|"
         r"at\s+least|just\s+over|just\s+under|maybe|probably|like|a\s+good|well\s+over|only|just)\s+)")
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"

# words allowed between a vital-sign keyword and its number: "pulse is 48", "my oximeter says 91"
_FILLWORDS = ("is|was|were|are|been|be|of|at|about|around|approx|approximately|roughly|reads?|reading|readings|"
              "says?|said|shows?|showed|showing|levels?|rate|sats?|saturation|now|currently|still|only|just|like|"
              "over|under|up|down|to|went|gone|going|got|gets|getting|dropped|dropping|fell|falling|rose|rising|"
              "came|back|measured|checked|hit|reached|sitting|stays?|staying|beating|racing|pounding|running|"
              "thumping|high|low|it|as|nearly|almost|usually|normally|typically|always|often|ok|okay|"
              "with|the|my|and|on|finger|thing|clip|machine|monitor|meter|probe|home")
_SEP = r"[\s:=~-]*"
_FILL = rf"(?:'s)?{_SEP}(?:(?:{_FILLWORDS})\b{_SEP}){{0,7}}"
# a unit that says the number after a vital-sign keyword is something else ("fever for 3 days", "oxygen 2 litres")
_FOREIGN = (r"(?!\s*(?:[/:]\s*\d|%|(?:min(?:ute)?s?|hours?|hrs?|days?|nights?|weeks?|wks?|months?|years?|yrs?|"
            r"times?|x|kgs?|kilos?|lbs?|pounds?|stones?|mg|mcg|ml|g|units?|litres?|liters?|l|cm|ft|feet|foot)\b))")

_TEMP_U = r"c|f|celsius|centigrade|fahrenheit"
_DEG = r"(?:°|degrees?|degs?)"
_TEMP_VAL = (rf"(?P<raw>(?P<n>{_KNUM})(?:\s*{_DEG}\s*(?P<u>{_TEMP_U})?|\s*(?P<u2>{_TEMP_U}))?)(?![a-z])")
_TEMP_VAL_UNIT = (rf"(?P<raw>(?P<n>{_NUM})(?:\s*{_DEG}\s*(?P<u>{_TEMP_U})?|\s*(?P<u2>{_TEMP_U})))(?![a-z])")

# after "I'm 58": a unit or symbol that means it is not an age ("I'm 6 foot", "I'm 5 days late", "I'm 100%")
_AGE_STOP = (r"(?!\s*(?:[%°/:'\"]|[.,]\d|\d|-\s*\d|(?:weeks?|wks?|months?|days?|nights?|hours?|hrs?|mins?|minutes?|"
             r"seconds?|kgs?|kilos?|kilograms?|lbs?|pounds?|stones?|st|cm|mm|ft|foot|feet|inch(?:es)?|degrees?|mg|"
             r"mcg|ml|g|units?|times?|x|bpm|mmol|out\s+of|outta|percent|per|th|nd|rd|late|overdue|into|of|miles?|"
             r"km|and\s+a\s+half|post|since|clean|sober|after|ago)\b))")
_AGE_SUBJ = (r"(?:i'?m|im|i\s+am|he'?s|she'?s|he\s+is|she\s+is|they'?re|they\s+are|(?:my\s+)?(?:baby|son|daughter|"
             r"child|kid|boy|girl|husband|wife|partner|mum|mom|dad|mother|father|grandson|granddaughter|"
             r"grandma|grandad|grandpa)\s+is)")
_AGE_UNIT = r"(?P<u>years?|yrs?|months?|mths?|weeks?|wks?|days?)"


# --------------------------------------------------------------------------------------------- conversions

@dataclass(frozen=True)
class _Val:
    value: float
    unit: str
    value2: float | None = None


@dataclass(frozen=True)
class _Ctx:
    t: str            # folded text
    now: datetime


def _num(s: str) -> float:
    """A number as written: digits (comma decimal allowed) or word number, compounds included."""
    s = s.strip()
    if s[0].isdigit():
        return float(s.replace(",", "."))
    parts = re.split(r"[\s-]+", s)
    return float(sum(_WORDNUM[p] for p in parts))


def _qty(m: re.Match) -> float:
    """The quantity of a time expression (groups q, q2, qh; uh = "<unit> and a half")."""
    q = re.sub(r"\s+", " ", m.group("q"))
    if q in ("a", "an"):
        v = 1.0
    elif "couple" in q:
        v = 2.0
    elif q in ("a few", "an few", "few", "several"):
        v = 3.0
    elif q.startswith("half"):
        v = 0.5
    else:
        v = _num(q)
    if m.group("q2"):
        v = max(v, _num(m.group("q2")))
    if m.group("qh") or (m.groupdict().get("uh")):
        v += 0.5
    return v


def _unit_hours(u: str) -> float:
    u = u.rstrip("s")
    if u.startswith("min"):
        return 1 / 60
    if u in ("h", "hour", "hr"):
        return 1.0
    if u in ("day", "night"):
        return 24.0
    if u in ("week", "wk"):
        return 168.0
    if u == "fortnight":
        return 336.0
    if u in ("month", "mth"):
        return 720.0
    return 8760.0  # year / yr


def _age_years(n: float, unit: str | None) -> float:
    u = (unit or "year").rstrip("s")
    if u in ("month", "mth"):
        return n / 12
    if u in ("week", "wk"):
        return n * 7 / 365.25
    if u == "day":
        return n / 365.25
    return n


def _in(v: float, lo: float, hi: float) -> bool:
    return lo <= v <= hi


def _temperature(m: re.Match, ctx: _Ctx) -> _Val | None:
    v = _num(m.group("n"))
    unit = m.groupdict().get("u") or m.groupdict().get("u2")
    if (unit and unit.startswith("f")) or (not unit and 93 <= v <= 110):
        v = (v - 32) * 5 / 9
    return _Val(round(v, 1), "C") if _in(v, 30.0, 45.0) else None


_OTHER_MEASURE_BEFORE = re.compile(
    r"\b(?:bmi|hba1c|a1c|crp|hb|haemoglobin|hemoglobin|potassium|sodium|creatinine|egfr|inr|ph|ferritin|tsh|psa|"
    r"vitamin|cholesterol|ldl|hdl|weight|weigh\w*|size|miles?|km|score|result|level|bpm|sats?)\b[^.!?;\d]{0,15}$")


def _bare_temperature(m: re.Match, ctx: _Ctx) -> _Val | None:
    if _OTHER_MEASURE_BEFORE.search(ctx.t[max(0, m.start() - 40):m.start()]):
        return None                       # "BMI 38.5", "CRP was 40.5"
    v = _num(m.group("n"))
    return _Val(round(v, 1), "C") if _in(v, 35.0, 42.9) else None


def _ranged(unit: str, lo: float, hi: float) -> Callable[[re.Match, _Ctx], _Val | None]:
    def conv(m: re.Match, ctx: _Ctx) -> _Val | None:
        v = _num(m.group("n"))
        return _Val(v, unit) if _in(v, lo, hi) else None
    return conv


def _blood_pressure(m: re.Match, ctx: _Ctx) -> _Val | None:
    s, d = float(m.group("s")), float(m.group("d"))
    return _Val(s, "mmHg", d) if _in(s, 50, 300) and _in(d, 20, 200) and d < s else None


def _glucose(m: re.Match, ctx: _Ctx) -> _Val | None:
    v = _num(m.group("n"))
    unit = m.groupdict().get("u") or ""
    if unit.startswith("mg") or (not unit.startswith("mmol") and v > 35):
        v = round(v / 18.0, 1)
    return _Val(v, "mmol/L") if _in(v, 0.5, 60) else None


def _age(m: re.Match, ctx: _Ctx) -> _Val | None:
    years = _age_years(_num(m.group("n")), m.groupdict().get("u"))
    return _Val(round(years, 4), "years") if _in(years, 0, 125) else None


_DECADES = {"teens": 10, "twenties": 20, "thirties": 30, "forties": 40, "fifties": 50, "sixties": 60,
            "seventies": 70, "eighties": 80, "nineties": 90}


def _decade(m: re.Match, ctx: _Ctx) -> _Val | None:
    d = m.group("d").replace("'", "")
    base = _DECADES.get(d) or int(d[0]) * 10
    return _Val(float(base + {"early": 2, "mid": 5, "late": 8}.get(m.group("pos") or "mid", 5)), "years")


def _newborn(m: re.Match, ctx: _Ctx) -> _Val | None:
    return _Val(0.02, "years")


def _gestation(m: re.Match, ctx: _Ctx) -> _Val | None:
    w = _num(m.group("w"))
    if (m.groupdict().get("gu") or "").startswith("month"):
        w = w * 52 / 12
    days = m.groupdict().get("d") or m.groupdict().get("d2")
    if days:
        w += _num(days) / 7
    return _Val(round(w, 2), "weeks") if _in(w, 1, 45) else None


def _gestation_at(m: re.Match, ctx: _Ctx) -> _Val | None:
    v = _gestation(m, ctx)
    return v if v and _in(v.value, 4, 44) else None


_FREQ_BEFORE = re.compile(rf"(?:\b(?:once|twice|thrice|times|x|per|every|each)|\d|\b(?:{_TENS}|{_TEENS}|{_ONES}))"
                          r"\s+(?:[a-z]+\s+){0,2}$")
_EVERY_BEFORE = re.compile(r"\b(?:every|each|per|q|x)\s*$")


def _duration(m: re.Match, ctx: _Ctx) -> _Val | None:
    before = ctx.t[max(0, m.start() - 40):m.start()]
    if _EVERY_BEFORE.search(before):
        return None                       # "every 4 hours": a frequency
    q = m.group("q").strip()
    if q in ("a", "an") and not (m.groupdict().get("pre") or "").strip() and _FREQ_BEFORE.search(before):
        return None                       # "20 cigarettes a day", "once a week"
    hours = _qty(m) * _unit_hours(m.group("u"))
    return _Val(round(hours, 3), "hours") if 0 < hours <= 125 * 8760 else None


def _duration_one(m: re.Match, ctx: _Ctx) -> _Val | None:
    return _Val(_unit_hours(m.group("u")), "hours")


def _ago(m: re.Match, ctx: _Ctx) -> _Val | None:
    hours = _qty(m) * _unit_hours(m.group("u"))
    return _Val(round(hours, 3), "hours") if 0 < hours <= 125 * 8760 else None


_PART_HOUR = {"morning": 8, "lunchtime": 12, "afternoon": 14, "evening": 18, "night": 22}


def _hours_since(now: datetime, anchor: datetime) -> float:
    return round((now - anchor).total_seconds() / 3600, 3)


def _midnight(d: datetime) -> datetime:
    return d.replace(hour=0, minute=0, second=0, microsecond=0)


def _day_anchor(m: re.Match, ctx: _Ctx) -> _Val | None:
    g = m.groupdict()
    now = ctx.now
    if g.get("dby"):
        return _Val(48.0, "hours")
    if g.get("yest"):
        if not g.get("ypart"):
            return _Val(24.0, "hours")
        anchor = _midnight(now - timedelta(days=1)) + timedelta(hours=_PART_HOUR[g["ypart"]])
        return _Val(_hours_since(now, anchor), "hours")
    if g.get("lastn"):
        return _Val(12.0, "hours")
    if g.get("part"):
        anchor = _midnight(now) + timedelta(hours=_PART_HOUR[g["part"]])
        return _Val(max(1.0, _hours_since(now, anchor)), "hours")
    return _Val({"week": 168.0, "month": 720.0, "year": 8760.0}[g["period"]], "hours")


def _weekday(m: re.Match, ctx: _Ctx) -> _Val | None:
    target = _DAYS.split("|").index(m.group("wd"))
    back = (ctx.now.weekday() - target) % 7 or 7
    anchor = _midnight(ctx.now - timedelta(days=back)) + timedelta(hours=_PART_HOUR.get(m.group("wpart") or "", 0))
    return _Val(_hours_since(ctx.now, anchor), "hours")


def _year(m: re.Match, ctx: _Ctx) -> _Val | None:
    yr = int(m.group("yr"))
    if re.search(r"\bborn\s*$", ctx.t[max(0, m.start() - 12):m.start()]) or not 1900 <= yr <= ctx.now.year:
        return None
    return _Val(float((ctx.now.year - yr) * 8760), "hours")


def _severity(m: re.Match, ctx: _Ctx) -> _Val | None:
    v = _num(m.group("n"))
    if m.groupdict().get("cap") and 10 < v <= 20:
        v = 10.0                          # "11/10"
    return _Val(v, "/10") if _in(v, 0, 10) else None


_DOSE_UNITS = {"mg": "mg", "milligram": "mg", "mcg": "mcg", "microgram": "mcg", "µg": "mcg", "μg": "mcg",
               "ug": "mcg", "g": "g", "gram": "g", "gm": "g", "ml": "ml", "millilitre": "ml", "milliliter": "ml",
               "unit": "units", "iu": "units"}
_DRINK_BEFORE = re.compile(r"\b(?:drink\w*|alcohol|booze|beers?|wine|pints?|spirits|lager)\b")


def _dose(m: re.Match, ctx: _Ctx) -> _Val | None:
    u = m.group("u")
    unit = _DOSE_UNITS.get(u) or _DOSE_UNITS.get(u.rstrip("s"), "ml")
    if unit == "units" and _DRINK_BEFORE.search(ctx.t[max(0, m.start() - 30):m.start()]):
        return None
    v = float(m.group("n").replace(",", ""))
    return _Val(v, unit) if v > 0 else None


def _weight(m: re.Match, ctx: _Ctx) -> _Val | None:
    g = m.groupdict()
    if g.get("st"):
        kg = _num(g["st"]) * 6.35029 + (float(g["lb"]) * 0.453592 if g.get("lb") else 0.0)
    else:
        kg = _num(g["n"]) * (0.453592 if (g.get("u") or "kg")[0] in "lp" else 1.0)
    return _Val(round(kg, 1), "kg") if _in(kg, 0.3, 350) else None


# --------------------------------------------------------------------------------------------- the rule table
# (kind, pattern, converter). Order matters only for ties in length: earlier wins. Named groups: n (number),
# u/u2 (unit), raw (the value as written; the whole match when absent).

_RULE_SPECS: list[tuple[Kind, str, Callable[[re.Match, _Ctx], _Val | None]]] = [
    # --- oxygen saturation: "sats 91%", "oxygen 89", "my oximeter says 91", "o2 level is 92 percent"
    ("spo2", rf"\b(?:sp\s*o2|o2|oxygen|sats?|saturations?|pulse\s*ox(?:imeter)?|oximeter|oximetry){_KEND}{_FILL}"
             rf"(?P<raw>(?P<n>{_KNUM})(?:\s*(?:%|percent|per\s*cent)(?![\w]))?){_FOREIGN}", _ranged("%", 50, 100)),
    #     "94% on air", "91 percent sats"
    ("spo2", rf"(?P<raw>(?P<n>{_NUM})\s*(?:%|percent|per\s*cent))\s*(?:on\s+(?:room\s+)?air|on\s+oxygen|sats?\b|"
             r"saturation|o2\b|oxygen)", _ranged("%", 50, 100)),
    # --- heart rate: "heart rate 130", "pulse is 48", "heart going at 140 bpm", "HR 120"
    ("heart_rate", rf"\b(?:heart\s*rate|heart\s*beat|heart|pulse(?!\s*ox)(?:\s*rate)?|hr){_KEND}{_FILL}"
                   rf"(?P<raw>(?P<n>{_KNUM})(?:\s*(?:bpm|b/min|(?:beats?|times)\s*(?:a|per|/|each)\s*min(?:ute)?)\b)?)"
                   rf"{_FOREIGN}", _ranged("bpm", 20, 250)),
    #     "130 beats a minute", "140 bpm"
    ("heart_rate", rf"(?P<raw>(?P<n>{_NUM})\s*(?:bpm|b/min|beats?\s*(?:a|per|/|each)\s*min(?:ute)?)\b)",
     _ranged("bpm", 20, 250)),
    # --- respiratory rate: "resp rate 28", "RR 24", "breathing 30 times a minute", "30 breaths a minute"
    ("resp_rate", rf"\b(?:resp(?:iratory|iration)?\s*rate|breathing\s*rate|rr|resps|respirations?){_KEND}{_FILL}"
                  rf"(?P<raw>(?P<n>{_KNUM})(?:\s*(?:breaths?|times)?\s*(?:a|per|/|each)\s*min(?:ute)?\b)?){_FOREIGN}",
     _ranged("/min", 4, 80)),
    ("resp_rate", rf"\b(?:breathing|breathe|breath)\b{_FILL}(?P<raw>(?P<n>{_NUM})\s*(?:breaths?|times)?\s*"
                  r"(?:a|per|/|each)\s*min(?:ute)?)\b", _ranged("/min", 4, 80)),
    ("resp_rate", rf"(?P<raw>(?P<n>{_NUM})\s*breaths?\s*(?:a|per|/|each)\s*min(?:ute)?)\b", _ranged("/min", 4, 80)),
    # --- blood pressure: "BP 180/110", "blood pressure was 85/50", bare "150 over 95" / "120/80"
    ("blood_pressure", rf"\b(?:blood\s*pressure|bp){_KEND}{_FILL}"
                       rf"(?P<raw>(?P<s>{_KINT3})\s*(?:/|over)\s*(?P<d>\d{{2,3}}))"
                       r"(?![\d/]|[.,]\d)(?:\s*mm\s*hg\b)?", _blood_pressure),
    ("blood_pressure", rf"(?P<raw>(?P<s>{_INT3})\s*(?:/|over)\s*(?P<d>\d{{2,3}}))(?![\d/]|[.,]\d)(?:\s*mm\s*hg\b)?",
     _blood_pressure),
    # --- glucose: "sugar 2.8", "BM 22", "blood sugar 350 mg/dl", "glucose 4.5 mmol"
    ("glucose", r"\b(?:blood\s*sugars?|blood\s*glucose|sugar\s*levels?|sugars?|glucose|glucometer|bms?|cbgs?|bgs?)"
                rf"{_KEND}"
                rf"{_FILL}(?P<raw>(?P<n>{_KNUM})(?:\s*(?P<u>mmol(?:\s*/\s*l)?|mg\s*/?\s*dl|mg)\b)?){_FOREIGN}",
     _glucose),
    ("glucose", rf"(?P<raw>(?P<n>{_NUM})\s*(?P<u>mg\s*/\s*dl))\b", _glucose),
    # --- temperature: "temp of 39.2C", "temp 101", "fever 38,5"; bare "102.2F", "101 degrees f", "37.5 degrees"
    ("temperature", rf"\b(?:temp(?:erature)?s?|fever|thermometer){_KEND}{_FILL}{_TEMP_VAL}{_FOREIGN}", _temperature),
    ("temperature", _TEMP_VAL_UNIT, _temperature),
    # --- gestation: "32 weeks pregnant", "36+2 weeks", "9 months pregnant"
    ("gestation", rf"(?P<raw>(?P<w>{_NUMW})(?:\s*\+\s*(?P<d>[0-6]))?\s*(?P<gu>weeks?|wks?|months?|/40)"
                  rf"(?:\s+and\s+(?P<d2>[0-6]|{_WORD})\s+days?)?)\s+(?:pregnant|gestation|gone|along|of\s+pregnancy)\b",
     _gestation),
    #     "36+2 weeks", "36+2" (the obstetric "+days" notation)
    ("gestation", rf"(?P<raw>(?P<w>{_NUM})\s*\+\s*(?P<d>[0-6])(?!\d)(?:\s*(?:weeks?|wks?)\b)?)", _gestation_at),
    #     "I'm 12 weeks", "she's 36+2"
    ("gestation", rf"\b(?:i'?m|im|i\s+am|she'?s|she\s+is|we'?re|we\s+are)\s+{_QUAL}?(?P<raw>(?P<w>{_NUMW})"
                  rf"(?:\s*\+\s*(?P<d>[0-6])(?!\d)(?:\s*(?:weeks?|wks?))?|\s*(?:weeks?|wks?)(?:\s+and\s+(?P<d2>[0-6]|"
                  rf"{_WORD})\s+days?)?))\b(?!\s*(?:old|ago|late|overdue|post|since|into|after|of)\b)", _gestation),
    #     "at 28 weeks"
    ("gestation", rf"\bat\s+(?P<raw>(?P<w>{_NUMW})(?:\s*\+\s*(?P<d>[0-6]))?\s*(?:weeks?|wks?))\b(?!\s*(?:old|ago)\b)",
     _gestation_at),
    # --- age: "58 year old", "my 8-month-old", "3 weeks old", "58yo", "58 years of age"
    ("age", rf"(?P<n>{_NUMW})[\s-]*{_AGE_UNIT}[\s-]*old\b", _age),
    ("age", rf"(?P<n>{_NUM})\s*(?:yo|y/o|y\.o\.?)(?![a-z])", _age),
    ("age", rf"(?P<n>{_NUMW})\s+years?\s+of\s+age\b", _age),
    #     "I'm 58", "I'm twenty-six", "she's 3 weeks old", "he is 10 days old", "I am 58 years old"
    ("age", rf"\b{_AGE_SUBJ}\s+(?:(?:only|just|nearly|almost|about|around|over|now)\s+)?(?P<raw>(?P<n>{_NUMW})"
            rf"(?:[\s-]*{_AGE_UNIT}[\s-]*old\b|\s*(?:years?|yrs?)(?:\s+of\s+age)?\b|\s*y/?o\b)?){_AGE_STOP}", _age),
    #     "he's 10 days" (a baby boy; "she's 12 weeks" is read as gestation)
    ("age", rf"\b(?:he'?s|he\s+is|(?:my\s+)?(?:baby|son|boy|grandson)\s+is)\s+(?:(?:only|just|nearly|almost)\s+)?"
            rf"(?P<raw>(?P<n>{_NUMW})\s*(?P<u>months?|weeks?|days?))\b(?!\s*(?:ago|late|since|into|after|of)\b)", _age),
    ("age", rf"\bage[d:]?\s*(?:of\s+)?(?P<raw>(?P<n>{_NUMW})){_AGE_STOP}", _age),
    ("age", r"\bin\s+(?:my|his|her|their|your)\s+(?:(?P<pos>early|mid|late)[\s-]+)?"
            r"(?P<d>[1-9]0'?s|teens|twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties)\b", _decade),
    ("age", r"\bnew[\s-]?born\b", _newborn),
    # --- onset: "twenty minutes ago", "about 3 days ago", "since 2 weeks ago"
    ("onset", rf"\b(?:since\s+)?{_QUAL}?{_QTY}[\s-]*{_TUNIT}(?P<uh>\s+and\s+a\s+half)?(?:\s+or\s+so)?\s+ago\b", _ago),
    #     "yesterday", "yesterday evening", "last night", "this morning", "last week", "since yesterday"
    ("onset", r"\b(?:(?:since|from)\s+)?(?:(?P<dby>the\s+day\s+before\s+yesterday)|(?P<yest>yesterday)(?:\s+"
              r"(?P<ypart>morning|lunchtime|afternoon|evening|night))?|(?P<lastn>last\s+night|overnight)|"
              r"(?:this|earlier\s+this)\s+(?P<part>morning|afternoon|evening)|last\s+(?P<period>week|month|year))\b",
     _day_anchor),
    #     "since Tuesday", "on Monday", "last Friday night"
    ("onset", rf"\b(?:(?:since|on|from|last|this\s+past)\s+)+(?P<wd>{_DAYS})\b"
              r"(?:\s+(?P<wpart>morning|lunchtime|afternoon|evening|night))?", _weekday),
    #     "in 2015", "since 2015"
    ("onset", r"\b(?:since|in|from|back\s+in|around|during)\s+(?P<yr>(?:19|20)\d\d)\b(?![\d/.-])", _year),
    # --- duration: "a 3-week history"
    ("duration", rf"\b(?:an?\s+)?(?P<raw>{_QTY}[\s-]*{_TUNIT})[\s-]+history\b", _duration),
    #     "for about a month", "the last 3 days", "over a year", "2 days", "half an hour", "2 and a half days"
    ("duration", rf"(?P<pre>\b(?:(?:for|over|during|within|lasting|in)\s+)?(?:(?:the\s+)?(?:last|past|previous)\s+)?"
                 rf"{_QUAL}?)?(?P<raw>{_QTY}[\s-]*{_TUNIT}(?P<uh>\s+and\s+a\s+half)?)", _duration),
    #     "for the last week", "the past month"
    ("duration", r"\b(?:(?:for|over|during|within|in)\s+)?the\s+(?:last|past|previous)\s+"
                 r"(?P<raw>(?P<u>hour|day|night|week|fortnight|month|year))\b", _duration_one),
    # --- severity: "7/10", "8 out of 10", "6.5/10"
    ("severity", rf"(?P<raw>(?P<n>{_NUMW})\s*(?P<cap>/|out\s+of|outta)\s*(?:10|ten)\b)(?![/\d]|[.,]\d)", _severity),
    #     "it's a 9", "an 8 now"
    ("severity", r"\ban?\s+(?P<raw>(?P<n>\d{1,2}(?:\.5)?))(?![\d.,]\d)(?=\s*(?:$|[.,;:!?)]|(?:now|right|at|or|and|"
                 r"but|today|tonight|maybe|probably|i|i'd|if|when|most|sometimes|easily|definitely|honestly|"
                 r"really|then|with)\b))", _severity),
    #     "I'd rate it 7", "pain score 8"
    ("severity", rf"\b(?:rate|rated|rating|score|scored|call|give|gave|pain(?:\s+(?:score|level|scale))?)\s+"
                 rf"(?:(?:it|the\s+pain|this|that|is|was|of|at|as|an?|about|around|maybe|probably|like)\s+)*"
                 rf"(?P<raw>(?P<n>{_NUMW}))(?!\s*(?:/|out\s+of|outta|[a-z%]))", _severity),
    # --- dose: "500mg", "20 units", "5ml" (not "mg/dl", not alcohol units)
    ("dose", rf"(?P<raw>(?P<n>(?<![\w.,/+\-£$€#])\d{{1,3}}(?:,\d{{3}})+|{_NUM})\s*"
             r"(?P<u>mg|milligrams?|mcg|micrograms?|"
             r"µg|μg|ug|g|grams?|gm|ml|mls|millilit(?:re|er)s?|units?|iu))\b(?!\s*/\s*(?:dl|l)\b)"
             r"(?!\s+(?:of\s+)?(?:alcohol|booze|beer|wine|a\s+week|per\s+week|weekly)\b)", _dose),
    # --- weight: "70 kg", "11 stone 4", "11st 4lb", "154 lbs", "I weigh 70"
    ("weight", rf"(?P<raw>(?P<n>{_NUM})\s*(?P<u>kgs?|kilos?|kilogram(?:me)?s?))\b", _weight),
    ("weight", rf"(?P<raw>(?P<st>{_NUM})\s*(?:stones?\b|st(?=\s*\d))(?:\s*(?:and\s+)?(?P<lb>\d{{1,2}})"
               r"(?:\s*(?:lbs?|pounds?)\b|(?=\s*(?:[.,;!?]|$))))?)", _weight),
    ("weight", rf"(?P<raw>(?P<n>{_NUM})\s*(?P<u>lbs?|pounds?))\b", _weight),
    ("weight", rf"\bweigh(?:s|t|ed|ing)?\b{_FILL}(?P<raw>(?P<n>{_NUM}))(?!\s*(?:[a-z%/]|\d))", _weight),
    # --- lowest priority: a bare one-decimal number in fever range, "it was 38.9" (35.0-42.9)
    ("temperature", rf"(?<![\w.,/+\-£$€#])(?P<raw>(?P<n>\d{{2}}[.,]\d))"
                    rf"(?![\d]|[.,]\d|\s*(?:[%/°]|mmol|mg|kg|cm|mm)){_FOREIGN}",
     _bare_temperature),
]

_RULES = [(kind, re.compile(p), conv) for kind, p, conv in _RULE_SPECS]

# digit runs that are identifiers, not quantities: phone numbers (9+ digits), dates
_PHONE = re.compile(r"\+?\d[\d ()\-]{7,}\d")
_DATE = re.compile(r"(?<!\d)(?:\d{1,2}([/.\-])\d{1,2}\1\d{2,4}|\d{4}-\d{1,2}-\d{1,2})(?!\d)")


def _blocked_spans(t: str) -> list[tuple[int, int]]:
    out = [(m.start(), m.end()) for m in _PHONE.finditer(t) if sum(c.isdigit() for c in m.group()) >= 9]
    return out + [(m.start(), m.end()) for m in _DATE.finditer(t)]


# --------------------------------------------------------------------------------------------- public API

def find_quantities(text: str, *, now: datetime | None = None) -> list[Quantity]:
    """Every quantity in ``text``, in order of position, without overlaps (longest match wins)."""
    t = _fold(text)
    ctx = _Ctx(t, now or datetime.now())
    blocked = _blocked_spans(t)
    cands: list[tuple[int, int, int, Kind, _Val, str]] = []   # (start, end, rule index, kind, value, raw)
    for i, (kind, rx, conv) in enumerate(_RULES):
        pos = 0
        while (m := rx.search(t, pos)) is not None:
            v = conv(m, ctx)
            if v is None or any(s < m.end() and m.start() < e for s, e in blocked):
                pos = m.start() + 1
                continue
            gd = m.groupdict()
            rs, re_ = (m.start("raw"), m.end("raw")) if gd.get("raw") else (m.start(), m.end())
            cands.append((m.start(), m.end(), i, kind, v, text[rs:re_].strip()))
            pos = m.end()
    cands.sort(key=lambda c: (c[0] - c[1], c[2], c[0]))
    taken: list[tuple[int, int, int, Kind, _Val, str]] = []
    for c in cands:
        if all(c[1] <= s or e <= c[0] for s, e, *_ in taken):
            taken.append(c)
    taken.sort(key=lambda c: c[0])
    return [Quantity(kind, v.value, v.unit, s, e, text[s:e], v.value2, raw) for s, e, _, kind, v, raw in taken]
