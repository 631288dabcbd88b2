"""chatdoc's recognizer set: Presidio built-ins where they fit, cue-based regex recognizers elsewhere.

Entity types (placeholder prefixes) reported by the redactor, see :data:`TYPE_MAP`:
PERSON, PHONE, EMAIL, ADDRESS, POSTCODE, DOB, SSN, NHS_NUMBER, MRN, INSURANCE_ID, URL, IP_ADDRESS, AGE.

Deliberately absent: spaCy DATE/TIME/LOCATION/ORG. DATE would redact "3 days" or "last week"; only
dates next to a birth cue ("born on", "DOB") are identifiers here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import tldextract
from presidio_analyzer import AnalysisExplanation, EntityRecognizer, Pattern, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    EmailRecognizer,
    IpRecognizer,
    NhsRecognizer,
    SpacyRecognizer,
    UrlRecognizer,
    UsSsnRecognizer,
)
from presidio_analyzer.predefined_recognizers.generic.url_recognizer import UrlRecognizer as _Url
from spacy.lang.en.stop_words import STOP_WORDS

DATA = Path(__file__).resolve().parent / "data"

# Presidio's e-mail recognizer validates domains with ``tldextract.extract``, whose default extractor
# fetches the public suffix list over HTTPS on first use. This one reads the bundled snapshot only (no
# suffix_list_urls, no cache dir), so analysis never opens a socket.
OFFLINE_TLD_EXTRACTOR = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

# Presidio entity name -> chatdoc placeholder type. Custom recognizers emit chatdoc names directly.
TYPE_MAP = {
    "PERSON": "PERSON",
    "PHONE_NUMBER": "PHONE",
    "PHONE": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "URL": "URL",
    "IP_ADDRESS": "IP_ADDRESS",
    "US_SSN": "SSN",
    "SSN": "SSN",
    "UK_NHS": "NHS_NUMBER",
    "NHS_NUMBER": "NHS_NUMBER",
    "MRN": "MRN",
    "INSURANCE_ID": "INSURANCE_ID",
    "DOB": "DOB",
    "AGE": "AGE",
    "ADDRESS": "ADDRESS",
    "POSTCODE": "POSTCODE",
}
ENTITY_TYPES = sorted(set(TYPE_MAP.values()))


# --------------------------------------------------------------------------------------------- helpers
class CueRecognizer(EntityRecognizer):
    """Regex recognizer whose reported span is the named group ``v`` (the cue stays in the text).

    Python's ``re`` has no variable-length look-behind, so "MRN is 123456" is matched whole and only
    the value is reported. ``patterns``: (regex, score); ``context`` feeds Presidio's context enhancer.
    """

    def __init__(self, entity: str, patterns, name: str, context=None, validator=None, flags=re.IGNORECASE):
        self._patterns = [(re.compile(p, flags), s) for p, s in patterns]
        self._validator = validator
        super().__init__(supported_entities=[entity], name=name, supported_language="en", context=context)

    def load(self) -> None:  # nothing to load
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        out = []
        for rx, score in self._patterns:
            for m in rx.finditer(text):
                s, e = m.span("v") if "v" in rx.groupindex else m.span()
                if s >= e or (self._validator and not self._validator(text[s:e])):
                    continue
                out.append(self._result(s, e, score))
        return out

    def _result(self, s, e, score):
        return RecognizerResult(
            self.supported_entities[0], s, e, score,
            analysis_explanation=AnalysisExplanation(self.name, score, pattern_name=self.name),
            recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                  RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id},
        )


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, validating domains with the offline tldextract snapshot."""

    def validate_result(self, pattern_text: str):
        return OFFLINE_TLD_EXTRACTOR(pattern_text.rsplit("@", 1)[-1]).fqdn != ""


_COMMON_TLDS = r"(?:com|org|net|edu|gov|info|biz|io|co|me|uk|us|nhs\.uk|co\.uk|org\.uk|ac\.uk|gov\.uk|ie|ca|au|de|fr|health|app|dev|online|site|blog)"


class ChatUrlRecognizer(UrlRecognizer):
    """Presidio's URL patterns, but bare ``word.tld`` only with a common TLD ("tired.so" is a typo)."""

    PATTERNS = [
        _Url.PATTERNS[0],  # with scheme (0.6)
        _Url.PATTERNS[2],  # quoted with scheme
        Pattern("www URL", r"(?i)\bwww\d{0,3}\.[a-z0-9\-]+(?:\.[a-z0-9\-]+)+(?:/[^\s()<>\"']*)?", 0.6),
        Pattern(
            "Bare common-TLD URL",
            r"(?i)(?<![@\w.])[a-z0-9][a-z0-9\-]{0,62}(?:\.[a-z0-9\-]{1,63})*\." + _COMMON_TLDS + r"\b(?:/[^\s()<>\"']*)?(?![@\w])",
            0.5,
        ),
    ]


# --------------------------------------------------------------------------------------------- dates
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_DAY = r"(?:3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:(?:19|20)\d{2}|['’]?\d{2})"
DATE_RX = (
    r"(?:\d{1,2}\s?[/.\-]\s?\d{1,2}\s?[/.\-]\s?(?:\d{4}|\d{2})"
    r"|(?:19|20)\d{2}[/.\-]\d{1,2}[/.\-]\d{1,2}"
    rf"|(?:the\s+)?{_DAY}(?:\s+of)?\s+{_MONTH}(?:,?\s+{_YEAR})?"
    rf"|{_MONTH}\s+(?:the\s+)?{_DAY}(?:,?\s+{_YEAR})?"
    rf"|{_MONTH},?\s+(?:19|20)\d{{2}})"
)
_DOB_CUE = r"(?:\bborn|\bd\.?\s?o\.?\s?b\b\.?|\bdate\s+of\s+birth|\bbirth\s*date|\bbirthday|\bb[\-\s]?day)"
DOB_PATTERNS = [(rf"{_DOB_CUE}[^\d\n.!?]{{0,25}}?\b(?P<v>{DATE_RX})(?!\d)", 0.9)]

# --------------------------------------------------------------------------------------------- ages
_UNIT_AFTER = r"(?!\s*(?:%|percent|kg|kgs|kilos?|lbs?|pounds|stone|st\b|cm|mm|mg|ml|bpm|degrees|°|mins?|minutes|hours?|hrs?|days?|weeks?|months?|times|cigs|cigarettes|units|mmhg|/))"
_AGE_V = r"(?P<v>9\d|1[01]\d)"
AGE_PATTERNS = [
    (rf"\b(?:i['’]?m|i\s+am|(?:he|she|they)(?:['’]s|\s+is|\s+are)|(?:mum|mom|mother|dad|father|gran|granny|grandma|grandmother|grandad|granddad|grandpa|grandfather|nan|nana|nanna|husband|wife|partner|patient|aunt|auntie|uncle)(?:['’]s|\s+is)(?:\s+now)?|aged?|age\s*[:=]|turned|turning|now|will\s+be|be)\s+{_AGE_V}\b{_UNIT_AFTER}", 0.85),
    (rf"\b{_AGE_V}\s*[-\s]?\s*(?:years?|yrs?|y)\s*[-\s]?\s*(?:old|of\s+age|o)\b", 0.85),
    (rf"\b{_AGE_V}\s*(?:yo|y/o|y\.o\.)\b", 0.85),
]

# --------------------------------------------------------------------------------------------- ids
_ID_V = r"(?P<v>(?=[a-z0-9\-/]{4,20}\b)(?=[a-z\-/]*\d)[a-z0-9][a-z0-9\-/]{3,19}|\d{2,4}(?:\s\d{2,4}){1,3}\b)"
_FILL = r"[^\n\d]{0,30}?\b"
MRN_PATTERNS = [
    (r"(?:\bm\.?r\.?n\b\.?|\bmedical\s+records?\s+(?:number|no\b\.?|num|#|id)|\bhospital\s+(?:record\s+)?(?:number|no\b\.?|num|#|id)|\bhosp\.?\s+no\b\.?"
     r"|\bpatient\s+(?:id|number|no\b\.?|#)|\b(?:unit|case|chart|record|clinic|registration)\s+(?:number|no\b\.?)|\bk\s*number|\bcrn\b)" + _FILL + _ID_V, 0.85),
]
INSURANCE_PATTERNS = [
    (r"(?:\b(?:health\s+)?(?:insurance|insurer|policy|member(?:ship)?|subscriber|medicare|medicaid|group|plan|bupa|axa|aviva|vitality|cigna|aetna|humana|kaiser|anthem|blue\s*cross|blue\s*shield|united\s*healthcare|tricare)"
     r"\s+(?:id|number|no\b\.?|num|#|card(?:\s+number)?|ref(?:erence)?(?:\s+number)?|policy(?:\s+number)?|membership(?:\s+number)?|member\s+id)|\bmember\s*id|\bpolicy\s*#|\bins(?:urance)?\.?\s+id)" + _FILL + _ID_V, 0.85),
    (r"\binsur(?:ance|ed|er)\b[^\n]{0,40}?\b(?:id|number|no\.?|#)" + _FILL + _ID_V, 0.8),
]
SSN_PATTERNS = [
    (r"(?:\bssn|\bsocial\s+security(?:\s+(?:number|no\.?|#))?|\bsocial)" + _FILL + r"(?P<v>\d{3}[\s.\-]?\d{2}[\s.\-]?\d{4})\b", 0.9),
]

# --------------------------------------------------------------------------------------------- phones
PHONE_PATTERNS = [
    # US/NANP: (415) 555-0123, 415.555.0123, +1-415-555-0123 x123, 001-415-...
    (r"(?<![\w+])(?P<v>(?:(?:\+|00)1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?)(?![\w])", 0.5),
    (r"(?<![\w+])(?P<v>(?:\+|00)1[\s.\-]?\d{3}[\s.\-]?\d{3}[\s.\-]?\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?)(?!\w)", 0.5),
    # UK: 07700 900123, 020 7946 0123, (0113) 496 0123, +44 (0)113 4960123, +447700900123
    (r"(?<![\w+])(?P<v>(?:(?:\+|00)\s?44\s?(?:\(0\)\s?)?|\(0|0)\d{2,4}\)?[\s\-]?\d{3,4}[\s\-]?\d{3,4})(?!\w)", 0.5),
    # bare digit strings right after a phone cue
    (r"\b(?:phone|mobile|mob|cell|tel|telephone|landline|number|no\.?|call|ring|text|whatsapp|contact|reach)\b[^\n\d]{0,20}?(?<![\w\-])(?P<v>\+?\d[\d\s\-]{8,14}\d)(?![\w\-])", 0.55),
]

# --------------------------------------------------------------------------------------------- addresses
_SUFFIX_STRONG = (r"street|st|road|rd|avenue|ave|av|lane|ln|drive|dr|boulevard|blvd|crescent|cres|terrace|terr|ter|close|court|ct|"
                  r"grove|gardens|gdns|mews|parade|pde|place|pl|square|sq|highway|hwy|parkway|pkwy|expressway|freeway|turnpike|"
                  r"stravenue|plaza|circle|cir|trail|trl|way|walk|row|rise|hill|hills|park|green|view|vale|close|loop|pike|"
                  r"alley|branch|bridge|brook|brooks|burg|bypass|camp|canyon|cape|causeway|center|centre|cliff|cliffs|club|common|"
                  r"corner|corners|course|courts|cove|coves|creek|crest|crossing|crossroad|curve|dale|dam|divide|drives|estate|estates|"
                  r"extension|falls|ferry|field|fields|flats|ford|fords|forest|forge|forges|fork|forks|fort|garden|gateway|glen|glens|"
                  r"greens|groves|harbor|harbour|harbors|haven|heights|hollow|inlet|island|islands|isle|junction|junctions|key|keys|knoll|"
                  r"knolls|lake|lakes|land|landing|lights|loaf|lock|locks|lodge|mall|manor|manors|meadow|meadows|mill|mills|mission|"
                  r"motorway|mount|mountain|mountains|neck|orchard|oval|overpass|parks|parkways|pass|passage|path|pine|pines|plain|plains|"
                  r"point|points|port|ports|prairie|radial|ramp|ranch|rapid|rapids|rest|ridge|ridges|river|roads|route|rue|run|shoal|shoals|"
                  r"shore|shores|skyway|spring|springs|spur|spurs|squares|station|stream|streets|summit|trace|track|trafficway|tunnel|"
                  r"underpass|union|unions|valley|valleys|via|viaduct|views|village|villages|ville|vista|walks|wall|ways|well|wells|wynd|gate|yard")
_NOT_STREET_WORD = (r"(?!(?:the|a|an|in|on|at|of|to|my|our|his|her|and|or|for|with|from|by|i|it|is|was|had|have|has|been|days?|weeks?|"
                    r"months?|years?|hours?|mins?|minutes?|times?|am|pm|mg|ml|tablets?|pills?|doses?|puffs?|cups?|drinks?|units?|kg|lbs?|"
                    r"stone|miles?|km|steps|flights?|stairs|floors?|blocks?|out|up|down|off|over|back|now|then|ago|about|around|past|last|"
                    r"next|every|each|per|times|x|or|so|but|when|after|before|since|until|went|go|walked|walk|run|ran|cycle)\b)")
_STREET_WORD = _NOT_STREET_WORD + r"[a-z][a-z'’.\-]*"
_UNIT = r"(?:flat|apt\.?|apartment|unit|suite|ste\.?|studio|room|#)\s*#?\s*\d+[a-z]?"
ADDRESS_RX = (
    rf"(?P<v>(?:{_UNIT},?\s+)?(?:\d{{1,5}}[a-z]?,?\s+)(?:{_STREET_WORD}\s+){{1,3}}(?:{_SUFFIX_STRONG})\b\.?"
    rf"(?:,?\s+{_UNIT}\b)?)"
)
ADDRESS_UNIT_RX = rf"(?P<v>{_UNIT},?\s+(?:{_STREET_WORD}\s+){{1,3}}(?:{_SUFFIX_STRONG})\b\.?)"
ADDRESS_PATTERNS = [(r"(?<![\w/.])" + ADDRESS_RX, 0.5), (r"\b" + ADDRESS_UNIT_RX, 0.6)]
ADDRESS_CONTEXT = ["live", "living", "address", "house", "home", "flat", "moved", "staying", "stay", "postcode", "zip", "at"]

# --------------------------------------------------------------------------------------------- postcodes
_UK_PC = (r"(?:gir\s?0aa|[a-pr-uwyz][0-9][abcdefghjkpstuw]?\s?[0-9][abd-hjlnp-uw-z]{2}|[a-pr-uwyz][0-9]{2}\s?[0-9][abd-hjlnp-uw-z]{2}"
          r"|[a-pr-uwyz][a-hk-y][0-9][abehmnprvwxy]?\s?[0-9][abd-hjlnp-uw-z]{2}|[a-pr-uwyz][a-hk-y][0-9]{2}\s?[0-9][abd-hjlnp-uw-z]{2})")
_STATES = (r"(?-i:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[AT]|W[AIVY])")
_STATE_NAMES = (r"alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|hawaii|idaho|illinois|indiana|"
                r"iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|michigan|minnesota|mississippi|missouri|montana|nebraska|"
                r"nevada|new\s+hampshire|new\s+jersey|new\s+mexico|new\s+york|north\s+carolina|north\s+dakota|ohio|oklahoma|oregon|"
                r"pennsylvania|rhode\s+island|south\s+carolina|south\s+dakota|tennessee|texas|utah|vermont|virginia|washington|"
                r"west\s+virginia|wisconsin|wyoming")
POSTCODE_PATTERNS = [
    (rf"\b(?P<v>{_UK_PC})\b", 0.6),
    (rf"(?:\bzip(?:\s*code)?|\bpost\s?code|\bpostal\s+code)[^\n\d]{{0,15}}?\b(?P<v>\d{{5}}(?:-\d{{4}})?)\b", 0.85),
    (rf"\b(?:{_STATES}|{_STATE_NAMES}),?\s+(?P<v>\d{{5}}(?:-\d{{4}})?)\b", 0.8),
]


# --------------------------------------------------------------------------------------------- names
def _load_names(fname: str) -> frozenset[str]:
    lines = (DATA / fname).read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip() for x in lines if x.strip() and not x.startswith("#"))


@lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names), lowercase. See data/*.txt for the source."""
    return _load_names("first_names.txt"), _load_names("last_names.txt")


# First names that are everyday words: only accepted as names after a strong cue or when capitalised
# and tagged as a proper noun.
AMBIGUOUS_FIRST = frozenset(
    "amber angel april august autumn bill bob brooke chance christian crystal daisy dawn destiny don drew earl faith frank "
    "gene grace guy heather holly hope iris ivy jack jade jean joy june lee mark max may penny pat ray rich rob rose ruby "
    "sandy sky summer sue will carol chase dale eve faith glen heath king major miles norm page rusty star tom violet "
    "addison parker harper hunter ginger kit lily olive pearl sage sterling".split()
)
_NOT_NAME = frozenset(STOP_WORDS) | frozenset(
    "sorry feeling worried here back just calling having writing looking going fine ok okay good well tired sick ill unwell "
    "scared anxious diabetic pregnant asthmatic allergic new not still also really very quite so a an the and dr doctor nurse "
    "mr mrs ms miss sir madam hi hello hey thanks thank cheers yes no yeah yep nope male female patient mum mom dad doc mate love "
    "guys everyone all team zip code postcode post number email phone mobile address dob nhs ssn mrn id".split()
)
_STRONG_CUES = ("my name is", "my names", "my name's", "name is", "name's", "names", "call me", "i go by", "known as",
                "name:", "called", "signed", "regards", "sincerely")
_WEAK_CUES = ("i'm", "i’m", "im", "i am", "this is", "it's", "it’s", "it is", "thanks", "cheers", "from", "love", "x", "-",
              "hi", "hello", "hey", "dear")
_RELATIONS = ("wife", "husband", "partner", "son", "daughter", "mum", "mom", "mother", "dad", "father", "brother", "sister",
              "boyfriend", "girlfriend", "friend", "carer", "caregiver", "gp", "neighbour", "neighbor", "grandson",
              "granddaughter", "niece", "nephew", "aunt", "auntie", "uncle", "child", "kid", "baby", "fiancé", "fiance",
              "cousin", "colleague", "boss", "flatmate", "roommate", "nan", "gran", "grandma", "grandad", "grandpa", "stepdad",
              "stepmum", "stepmom")
_TITLES = ("dr", "dr.", "doctor", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "miss", "mx", "nurse", "prof", "prof.",
           "professor", "sister", "consultant", "surgeon", "midwife", "dentist", "physio", "pharmacist")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*\.?")


def _norm(w: str) -> str:
    w = w.lower().rstrip(".")
    for suf in ("'s", "’s"):
        if w.endswith(suf):
            return w[: -len(suf)]
    return w.rstrip("'’")


class ChatNameRecognizer(EntityRecognizer):
    """Names in chat text, including lowercase: cue words + first/last-name lists + spaCy POS.

    * strong cue ("my name is", "call me"): the next word is a name unless it is a common word;
    * weak cue ("i'm", "this is"), relation ("my wife ...") or title ("dr ..."): the next word must be a
      known first name (titles: also a known surname) or a capitalised proper noun;
    * no cue: a known, unambiguous first name (0.5), or first + last name (0.65).
    Following words join the name when they are known surnames/first names or capitalised proper nouns.
    """

    def __init__(self):
        super().__init__(supported_entities=["PERSON"], name="ChatNameRecognizer", supported_language="en")
        self.first, self.last = name_lists()

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        words = [(m.start(), m.end() - (1 if m.group().endswith(".") else 0), m.group().rstrip(".")) for m in _WORD.finditer(text)]
        propn = set()
        if nlp_artifacts is not None and getattr(nlp_artifacts, "tokens", None) is not None:
            for t in nlp_artifacts.tokens:
                if t.pos_ == "PROPN" or t.ent_type_ == "PERSON":
                    propn.add(t.idx)
        out, i, n = [], 0, len(words)
        while i < n:
            s, e, w = words[i]
            lw = _norm(w)
            cue = self._cue(text, words, i)
            cap = w[:1].isupper() and s in propn and lw not in _NOT_NAME and not self._sentence_start(text, s)
            known = lw in self.first and lw not in AMBIGUOUS_FIRST and lw not in _NOT_NAME
            score = 0.0
            if cue == "strong" and lw not in _NOT_NAME and (lw.isalpha() or "-" in lw or "'" in lw):
                score = 0.85
            elif cue in ("weak", "relation") and (known or cap or (s in propn and lw not in _NOT_NAME)
                                                  or (lw in AMBIGUOUS_FIRST and w[:1].isupper())):
                score = 0.75
            elif cue == "title" and (known or cap or lw in self.last or (lw in self.first and w[:1].isupper())):
                score = 0.75
            elif known:
                score = 0.5
            if score == 0.0:
                i += 1
                continue
            j, end = i, e
            while j + 1 < n and j - i < 2:
                s2, e2, w2 = words[j + 1]
                if not re.fullmatch(r"[ \t]+", text[end:s2] or "x"):
                    break
                l2 = _norm(w2)
                if l2 in _NOT_NAME:
                    break
                if l2 in self.last or (l2 in self.first and l2 not in AMBIGUOUS_FIRST) or (w2[:1].isupper() and s2 in propn):
                    j, end = j + 1, e2
                else:
                    break
            if j > i and score == 0.5:
                score = 0.65
            if w.endswith(("'s", "’s")) and j == i:
                end = e - 2
            out.append(RecognizerResult("PERSON", s, end, score, AnalysisExplanation(self.name, score), recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name, RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
            i = j + 1
        return out

    @staticmethod
    def _sentence_start(text: str, s: int) -> bool:
        before = text[:s].rstrip(" \t\"'(")
        return not before or before[-1] in ".!?\n:"

    @staticmethod
    def _cue(text, words, i) -> str:
        if i == 0:
            return ""
        gap = text[words[i - 1][1]:words[i][0]]
        if not re.fullmatch(r"[\s,:\-]*", gap) or "\n\n" in gap:
            return ""
        prev = [_norm_cue(w[2]) for w in words[max(0, i - 3):i]]
        tail = " ".join(prev)
        if ":" in gap and prev and prev[-1] == "name":
            return "strong"
        for c in _STRONG_CUES:
            if tail.endswith(c.rstrip(":")) and (len(tail) == len(c.rstrip(":")) or tail[-len(c.rstrip(':')) - 1] == " "):
                return "strong"
        last = prev[-1]
        if last in _TITLES:
            return "title"
        if last in _RELATIONS and len(prev) >= 2 and prev[-2] in ("my", "our", "his", "her", "their", "your"):
            return "relation"
        if len(prev) >= 2 and prev[-1] in ("called", "named", "is") and prev[-2] in _RELATIONS:
            return "relation"
        if last in _WEAK_CUES or tail.endswith(("i am", "this is", "it is")):
            return "weak"
        return ""


def implausible_name(value: str) -> bool:
    """True for NER "names" made only of everyday words ("zip code", "Thanks")."""
    toks = [_norm(t) for t in re.findall(r"[A-Za-z'’\-]+", value)]
    return not toks or all(t in _NOT_NAME for t in toks)


def _norm_cue(w: str) -> str:
    return w.lower().replace("’", "'")


# --------------------------------------------------------------------------------------------- registry
def build_recognizers() -> list[EntityRecognizer]:
    """All recognizers, in no particular order (the redactor resolves overlaps)."""
    return [
        SpacyRecognizer(supported_entities=["PERSON"], ner_strength=0.85),
        ChatNameRecognizer(),
        OfflineEmailRecognizer(),
        ChatUrlRecognizer(),
        IpRecognizer(),
        UsSsnRecognizer(),
        NhsRecognizer(),
        CueRecognizer("SSN", SSN_PATTERNS, "SsnCueRecognizer"),
        CueRecognizer("PHONE", PHONE_PATTERNS, "ChatPhoneRecognizer",
                      context=["phone", "mobile", "number", "call", "ring", "text", "contact", "tel", "landline", "cell"]),
        CueRecognizer("DOB", DOB_PATTERNS, "DobRecognizer"),
        CueRecognizer("AGE", AGE_PATTERNS, "AgeOver89Recognizer"),
        CueRecognizer("MRN", MRN_PATTERNS, "MrnRecognizer"),
        CueRecognizer("INSURANCE_ID", INSURANCE_PATTERNS, "InsuranceIdRecognizer"),
        CueRecognizer("ADDRESS", ADDRESS_PATTERNS, "StreetAddressRecognizer", context=ADDRESS_CONTEXT),
        CueRecognizer("POSTCODE", POSTCODE_PATTERNS, "PostcodeRecognizer",
                      context=["postcode", "post code", "zip", "address", "live", "area"]),
    ]
