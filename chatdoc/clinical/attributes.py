"""Symptom attributes (SOCRATES) read from patient text: the one reader of onset, duration, severity, site,
character, radiation, timing and aggravating / relieving factors.

:func:`read_attributes` reads a piece of text (a sentence, a turn, or a short answer such as "about two weeks")
into :class:`~chatdoc.clinical.findings.Attributes`, the first reading of each attribute in text order. The turn
analysis (:mod:`chatdoc.clinical.analyse`) runs it once per turn: on the sentence of every symptom finding (the
finding's own attributes) and on the whole turn (``Findings.attributes``, for answers that name no symptom). The
history (:mod:`chatdoc.dialogue.extract`) reads the attributes from the findings; nothing else matches them.

Every value is a span of the text (or a fixed normalisation: a 0-10 score from "7/10", an onset speed word
read apart from its time), so nothing is invented. Numbers (durations and onsets in hours, "/10" scores, vital signs)
are read by :mod:`chatdoc.clinical.numbers`; the analysis adds their normalised values.
"""

from __future__ import annotations

import re

from chatdoc.clinical.findings import Attributes

NUM_WORDS = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|a couple of|couple of|several|a|an)"
UNIT = r"(?:minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|nights?)"
DAYS = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"

# patterns over lower-case text with straight apostrophes (see :func:`fold`)
PATTERNS: dict[str, re.Pattern] = {
    "severity_num": re.compile(r"\b(\d{1,2}(?:\.5)?)\s*(?:/|out of|outta)\s*(?:10|ten)\b"),
    "severity_word": re.compile(r"\b(mild|moderate|severe|excruciating|unbearable|agonising|really bad|terrible|"
                                r"worst (?:\w+ ){0,2}(?:ever|of my life))\b"),
    "duration": re.compile(rf"\b(?:for|over|past|last|nearly|almost)\s+(?:the\s+)?(?:past\s+|last\s+)?((?:about\s+|around\s+|"
                           rf"nearly\s+|almost\s+|over\s+|more than\s+)?{NUM_WORDS}\s+(?:\w+\s+)?{UNIT})\b"),
    "history_dur": re.compile(rf"\b({NUM_WORDS}[- ](?:minute|hour|day|week|month|year))[- ]history\b"),  # "a 3-week history of"
    "ago": re.compile(rf"\b((?:about\s+|around\s+)?{NUM_WORDS}\s+{UNIT}\s+ago)\b"),
    "since": re.compile(rf"\b(since\s+(?:yesterday|last\s+\w+|this\s+(?:morning|afternoon|evening)|the\s+weekend|{DAYS}|"
                        r"christmas|\d{1,2}\s*(?:am|pm)|\w+ (?:morning|night|evening)))\b"),
    "started": re.compile(rf"\b(?:started|began|begun|came on|start(?:ing)?|kicked in)\s+((?:about\s+)?(?:yesterday|today|this\s+"
                          rf"(?:morning|afternoon|evening)|last\s+(?:night|week|month)|on\s+{DAYS}|{DAYS}|overnight|"
                          r"suddenly|gradually|all of a sudden|out of nowhere|slowly)(?:\s+(?:morning|evening|night|afternoon))?)"),
    "sudden": re.compile(r"\b(suddenly|all of a sudden|out of nowhere|out of the blue|gradually|slowly|came on quickly)\b"),
    "location": re.compile(
        r"\b((?:back|front|top|side|left side|right side|base) of (?:my |the |his |her )?(?:head|neck|chest|tummy|stomach|abdomen))\b"
        r"|\b(?:in|on|at|behind|around|across|over|under|into)\s+(?:the\s+|my\s+|his\s+|her\s+|their\s+)?("
        r"(?:(?:left|right|upper|lower|top|bottom|middle|centre|center|front|lower right|lower left|upper right|upper left|"
        r"both)\s+(?:side\s+of\s+(?:my\s+|the\s+)?)?)?(?:head|forehead|temples?|eyes?|face|jaw|neck|throat|chest|"
        r"breastbone|ribs?|stomach|tummy|belly|abdomen|lower back|back|shoulders?|arms?|hands?|legs?|knees?|"
        r"feet|foot|hips?|groin|ears?|side))\b"
        r"|\b((?:left|right)[- ]sided|one side|both sides|all over)\b"),
    "character": re.compile(r"\b(throbbing|pounding|pulsating|sharp|stabbing|dull|aching|achy|burning|crushing|tight|tightness|"
                            r"squeezing|pressing|pressure|heavy|heaviness|cramping|cramp-like|gnawing|shooting|tearing|"
                            r"colicky|band-like|like a tight band|dry|chesty|productive|itchy|spinning)\b"),
    "radiation": re.compile(r"\b(?:spreads?|spreading|radiat\w+|goes|going|moves?|moving|travels?|travelling|shoots?|shooting)"
                            r"\s+(?:up|down|into|to|through|across|round|around)\s+((?:my |the |his |her )?[a-z ]{2,30}?)"
                            r"(?=[.,;!?]|\s+and\b|\s+when\b|$)"),
    "no_radiation": re.compile(r"\b(?:doesn'?t|does not|dont|don'?t|not|never)\s+(?:\w+\s+)?(?:spread|radiate|go anywhere|move)"
                               r"|\bstays? (?:in one place|there|put)\b"),
    "timing": re.compile(r"\b(constant(?:ly)?|all the time|comes and goes|on and off|off and on|intermittent(?:ly)?|"
                         r"worse (?:in the )?(?:mornings?|evenings?|at night)|every (?:day|morning|night|evening)|"
                         r"at night|in the mornings?|first thing)\b"),
    "aggravating": re.compile(r"\b(?:worse|aggravated|hurts more|bad)\s+(?:when|with|if|after|on|during|by|whenever)\s+"
                              r"([^.,;!?]{2,40}?)(?=[.,;!?]|\s+and\b|\s+but\b|$)"
                              r"|\b([a-z][a-z ]{1,30}?)\s+makes?\s+(?:it|the pain|them)\s+worse\b"),
    "relieving": re.compile(r"\b(?:better|eases?|eased|relieved|settles?|helps?|helped)\s+(?:when|with|if|after|by|from)\s+"
                            r"([^.,;!?]{2,40}?)(?=[.,;!?]|\s+and\b|\s+but\b|$)"
                            r"|\b([a-z][a-z ]{1,30}?)\s+(?:helps|helped|makes (?:it|the pain) better|eases it|takes the edge off)\b"
                            r"|\b(nothing (?:helps|has helped|seems to help|works))\b"),
}

#: the attributes :func:`read_attributes` fills (``Attributes`` fields)
READ = ("onset", "duration", "severity", "severity_score", "site", "character", "radiation", "radiation_denied", "timing",
        "aggravating", "relieving")
_CUT = re.compile(r"\b(?:and|but|so|then|because)\s+|,\s*")


def fold(text: str) -> str:
    """Lower case with straight apostrophes, same length as ``text`` (spans map 1:1)."""
    t = text.replace("\u2019", "'").replace("\u2018", "'")
    low = t.lower()
    return low if len(low) == len(t) else "".join(c.lower() if len(c.lower()) == 1 else c for c in t)


def first(rx: re.Pattern, text: str) -> tuple[str, int, int] | None:
    """(value, start, end) of the first match: its first non-empty group, else the whole match."""
    m = rx.search(text)
    if not m:
        return None
    for i in range(1, (m.lastindex or 0) + 1):
        if m.group(i):
            return m.group(i), m.start(i), m.end(i)
    return m.group(0), m.start(), m.end()


def read_attributes(text: str) -> Attributes:
    """The attributes ``text`` gives, the first of each in text order (values are spans of ``text``)."""
    low = fold(text)
    a = Attributes()
    if (m := PATTERNS["severity_num"].search(low)) and float(m.group(1)) <= 10:
        v = float(m.group(1))
        a.severity, a.severity_score = text[m.start():m.end()], v
    elif (w := first(PATTERNS["severity_word"], low)):
        a.severity = text[w[1]:w[2]]
    onset = first(PATTERNS["ago"], low) or first(PATTERNS["since"], low) or first(PATTERNS["started"], low)
    if onset:
        a.onset = text[onset[1]:onset[2]]
    if (sudden := first(PATTERNS["sudden"], low)):
        a.onset_speed = text[sudden[1]:sudden[2]]
    dur = first(PATTERNS["duration"], low) or first(PATTERNS["history_dur"], low)
    if dur:
        a.duration = text[dur[1]:dur[2]]
    elif onset and PATTERNS["ago"].search(low):  # "3 days ago": it has lasted 3 days
        a.duration = re.sub(r"\s+ago$", "", text[onset[1]:onset[2]], flags=re.I)
    if (loc := first(PATTERNS["location"], low)):
        a.site = text[loc[1]:loc[2]]
    if (ch := first(PATTERNS["character"], low)):
        a.character = text[ch[1]:ch[2]]
    if PATTERNS["no_radiation"].search(low):
        a.radiation_denied = True
    elif (rad := first(PATTERNS["radiation"], low)):
        a.radiation = text[rad[1]:rad[2]]
    if (tm := first(PATTERNS["timing"], low)):
        a.timing = text[tm[1]:tm[2]]
    for slot in ("aggravating", "relieving"):
        got = first(PATTERNS[slot], low)
        if got:
            s, e = got[1], got[2]
            s += max((m.end() for m in _CUT.finditer(low[s:e])), default=0)  # "... and lying down" -> "lying down"
            setattr(a, slot, text[s:e])
    return a


def merge(into: Attributes, other: Attributes) -> Attributes:
    """``into`` with every attribute it lacks taken from ``other`` (in place; returned for chaining)."""
    for k, v in other.given().items():
        if getattr(into, k) is None:
            setattr(into, k, v)
    return into
