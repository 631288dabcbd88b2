"""Generate the PII dev set: ``chatdoc eval pii --build-devset [--out PATH] [--seed N]`` (:func:`write`).

Writes JSON lines ``{"text", "spans": [{"start","end","type"}], "keep": [{"start","end"}]}`` to
``tests/privacy/data/pii_dev.jsonl`` (committed). Values come from Faker (fixed seed, en_GB + en_US);
sentences are lay patient chat (lowercase, missing punctuation, names without cues) and mix identifiers
with clinical "traps" that must stay: eponymous diseases, durations, drugs and doses, ages <= 89, body
parts and symptoms. Templates were written from how patients write, not from what the recognizers
catch; about a quarter of first names are drawn from outside the recognizer's name list (``OOV``) so
lowercase-name recall is not measured only on names the recognizer already knows.

Template syntax: ``{TYPE}`` or ``{TYPE:variant}`` is an identifier slot, ``[[text]]`` a keep span.
Faker is a test extra, so it is imported only when generating.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import re
from pathlib import Path

from chatdoc.config import REPO_ROOT

OUT = REPO_ROOT / "tests" / "privacy" / "data" / "pii_dev.jsonl"

EPONYMS = ["Crohn's", "crohns", "Parkinson's", "parkinsons", "Hashimoto's", "Bell's palsy", "bells palsy", "Addison's disease",
           "Alzheimer's", "alzheimers", "Graves' disease", "Cushing's", "Down syndrome", "Tourette's", "Raynaud's", "Meniere's",
           "Hodgkin's lymphoma", "Huntington's", "Guillain-Barré", "Sjögren's", "Asperger's", "Barrett's oesophagus"]
DURATIONS = ["for 3 days", "for about 2 weeks", "since yesterday", "last week", "on Monday", "for a couple of days",
             "since tuesday", "for 6 months", "last night", "for the past 10 days", "3 days ago", "this morning",
             "for nearly a year", "since last weekend", "over the last few weeks", "2 weeks ago"]
DRUGS = ["metformin 500mg", "Ramipril 5mg", "paracetamol", "ibuprofen 400mg", "sertraline 50mg", "amlodipine 10mg",
         "levothyroxine 100mcg", "omeprazole 20mg", "salbutamol inhaler", "co-codamol 30/500", "atorvastatin 40mg",
         "warfarin", "Naproxen", "insulin 10 units", "amoxicillin 500mg three times a day", "Prednisolone 30mg"]
BODY = ["left knee", "lower back", "chest", "right shoulder", "stomach", "left arm", "neck", "throat", "both ankles",
        "right eye", "lower belly", "head", "jaw", "left hip", "ribs", "wrist"]
SYMPTOMS = ["headache", "dizziness", "shortness of breath", "chest pain", "a rash", "a cough", "nausea", "back pain",
            "tingling", "blurred vision", "palpitations", "a sore throat", "tiredness", "swelling", "a fever", "numbness"]

T = {
    "PERSON": [
        "hi my name is {PERSON:lower} and ive had [[{symptom}]] [[{duration}]]",
        "Hello, I'm {FIRST} and I've been getting [[{symptom}]] [[{duration}]]",
        "i'm {FIRST:lower}, my [[{body}]] has been hurting [[{duration}]]",
        "my wife {FIRST:lower} thinks i should get my [[{body}]] checked",
        "this is {PERSON} writing on behalf of my mum, she has [[{eponym}]]",
        "my gp dr {LAST:lower} put me on [[{drug}]]",
        "Dr {LAST} said the [[{symptom}]] was nothing to worry about",
        "{FIRST:lower} from the pharmacy told me to take [[{drug}]] [[{duration}]]",
        "my son {PERSON} has had [[{symptom}]] [[{duration}]]",
        "name: {PERSON}. [[{symptom}]] in my [[{body}]]",
        "its {FIRST:lower} again, the [[{symptom}]] is back",
        "call me {FIRST:lower}, everyone does",
        "i was seen by nurse {FIRST} [[{duration}]] about my [[{body}]]",
        "{PERSON} is my carer, she helps with my [[{drug}]]",
        "my husband is called {FIRST:lower} and he also has [[{eponym}]]",
        "Regards, {PERSON}",
        "thanks {FIRST:lower} for sorting my prescription",
        "my daughter {FIRST} noticed [[{symptom}]] [[{duration}]]",
        "Patient name {PERSON}, diagnosed with [[{eponym}]]",
        "me and {FIRST:lower} both got [[{symptom}]] after the party",
    ],
    "PHONE": [
        "you can reach me on {PHONE}",
        "my mobile is {PHONE} if the [[{symptom}]] gets worse",
        "pls call {PHONE} after 5",
        "text me on {PHONE:bare} im at work",
        "my number changed, its {PHONE} now",
        "ring my daughter on {PHONE} she knows about my [[{eponym}]]",
        "home phone {PHONE}, mobile {PHONE}",
        "the surgery can contact me at {PHONE} re my [[{drug}]]",
        "{PHONE} is the best number to get me",
    ],
    "EMAIL": [
        "email me at {EMAIL}",
        "my email is {EMAIL:upper} if thats easier",
        "send the results to {EMAIL} please",
        "can u email {EMAIL} about my [[{drug}]] prescription",
        "{EMAIL} is my work address dont use it",
        "contact: {EMAIL}",
        "my son's email {EMAIL} he handles my appointments since my [[{eponym}]] got worse",
    ],
    "ADDRESS": [
        "i live at {ADDRESS}",
        "my address is {ADDRESS}, {CITY}",
        "we moved to {ADDRESS:lower} [[{duration}]]",
        "can you send the letter to {ADDRESS}",
        "im at {ADDRESS} if the nurse needs to visit, my [[{body}]] is too sore to walk",
        "new address {ADDRESS}",
        "the ambulance came to {ADDRESS} [[{duration}]]",
        "{ADDRESS} is where my mum lives, she has [[{eponym}]]",
    ],
    "POSTCODE": [
        "my postcode is {POSTCODE_UK}",
        "postcode {POSTCODE_UK:lower} if you need it",
        "i live in {CITY}, {POSTCODE_UK}",
        "zip code {ZIP}",
        "im in {CITY}, {STATE} {ZIP}",
        "my zip is {ZIP} and ive had [[{symptom}]] [[{duration}]]",
        "which clinic is nearest to {POSTCODE_UK}?",
        "we're at {POSTCODE_UK:nospace}",
    ],
    "DOB": [
        "I was born on {DOB}",
        "dob {DOB}",
        "my date of birth is {DOB}",
        "DOB: {DOB} and im on [[{drug}]]",
        "born {DOB}, had [[{eponym}]] since i was a kid",
        "d.o.b {DOB}",
        "my birthday is {DOB} if you need to check the record",
        "Date of birth {DOB}. [[{symptom}]] [[{duration}]]",
        "i was born {DOB} in {CITY}",
    ],
    "SSN": [
        "my ssn is {SSN}",
        "social security number {SSN}",
        "SSN: {SSN}",
        "the form wants my social security, its {SSN}",
        "ssn {SSN:bare} for the insurance claim",
        "here's my social {SSN}",
    ],
    "NHS_NUMBER": [
        "my nhs number is {NHS}",
        "NHS no. {NHS}",
        "nhs number: {NHS:bare}",
        "my NHS number {NHS} in case you need it for the [[{drug}]]",
        "{NHS} is my nhs number",
        "its {NHS} on my nhs card",
    ],
    "MRN": [
        "MRN {MRN}",
        "my hospital number is {MRN}",
        "hospital no {MRN}",
        "medical record number {MRN}",
        "the letter says patient id {MRN}",
        "my mrn is {MRN:lower} from the [[{eponym}]] clinic",
        "hospital number: {MRN}, seen for [[{symptom}]]",
    ],
    "INSURANCE_ID": [
        "my insurance member id is {INS}",
        "insurance number {INS}",
        "policy number {INS}",
        "bupa membership number {INS}",
        "member ID: {INS}",
        "my insurance is with aetna, id {INS}",
        "medicare number {INS} if you need it",
        "subscriber id {INS:lower}",
    ],
    "URL": [
        "i read about [[{eponym}]] on {URL}",
        "found this {URL} about [[{drug}]] is it legit?",
        "my blog is {URL}",
        "the clinic website {URL} says to fast before bloods",
        "have a look at {URL}",
        "{URL} has my food diary",
    ],
    "IP_ADDRESS": [
        "the portal blocked my ip {IP}",
        "login failed from {IP} again",
        "my ip address is {IP} if that helps the it people",
        "it says access denied for {IP}",
        "{IP} keeps getting locked out of the booking app",
    ],
    "AGE": [
        "i'm {AGE} and have [[{symptom}]] [[{duration}]]",
        "my nan is {AGE} and has [[{eponym}]]",
        "he's {AGE} years old",
        "she is {AGE} now and on [[{drug}]]",
        "my dad turned {AGE} last month",
        "im {AGE} yrs old and my [[{body}]] hurts",
        "patient aged {AGE}",
        "mum is {AGE}, still walks every day",
        "{AGE} year old female with [[{symptom}]]",
    ],
}

TRAPS = [
    "ive had [[{symptom}]] [[{duration}]]",
    "my [[{body}]] has been sore [[{duration}]]",
    "i was diagnosed with [[{eponym}]] [[{duration}]]",
    "im on [[{drug}]] for my [[{eponym}]]",
    "Taking [[{drug}]] and [[{drug}]] daily",
    "[[{drug}]] isnt helping the [[{symptom}]]",
    "i'm [[{young_age}]] and have [[{eponym}]]",
    "my son is [[{young_age}]], he has [[{eponym}]]",
    "[[{eponym}]] runs in my family, my mum had it",
    "[[{symptom}]] started [[{duration}]] after i started [[{drug}]]",
    "is [[{symptom}]] a sign of [[{eponym}]]?",
    "She is [[{young_age}]] years old with [[{symptom}]]",
    "[[{eponym}]] and [[{eponym}]] - could they be linked",
    "pain in my [[{body}]] [[{duration}]], worse at night",
    "{keep_age_phrase}",
]


# Faker's date_of_birth() counts back from today, so the set would change every day; count back from a
# fixed date instead (the day the committed set was generated) with the same arithmetic.
REFERENCE_DATE = _dt.date(2026, 11, 21)


def _date_of_birth(f, minimum_age: int, maximum_age: int) -> _dt.date:
    from faker.providers.date_time import change_year

    start = change_year(REFERENCE_DATE, -(maximum_age + 1))
    end = change_year(REFERENCE_DATE, -minimum_age)
    dob = f.date_time_ad(start_datetime=start, end_datetime=end).date()
    return dob if dob != start else dob + _dt.timedelta(days=1)


def _nhs(rng: random.Random) -> str:
    while True:
        d = [rng.randint(0, 9) for _ in range(9)]
        check = 11 - sum(x * w for x, w in zip(d, range(10, 1, -1))) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, d)) + str(check)


class _Gen:
    def __init__(self, seed: int):
        from faker import Faker
        from faker.providers.person.en import Provider as EnPerson

        from chatdoc.privacy.recognizers import name_lists

        self.rng = random.Random(seed)
        self.gb, self.us = Faker("en_GB"), Faker("en_US")
        self.gb.seed_instance(seed)
        self.us.seed_instance(seed + 1)
        known_first, _ = name_lists()
        self.oov_first = sorted({n for n in EnPerson.first_names if n.lower() not in known_first and n.isalpha()})

    def fk(self):
        return self.rng.choice((self.gb, self.us))

    def case(self, s: str, variant: str | None) -> str:
        if variant == "lower" or (variant is None and self.rng.random() < 0.35):
            return s.lower()
        if variant == "upper":
            return s.upper()
        return s

    def value(self, kind: str, variant: str | None) -> tuple[str, str | None]:
        r, f = self.rng, self.fk()
        if kind == "FIRST":
            name = r.choice(self.oov_first) if r.random() < 0.25 else f.first_name()
            return self.case(name, variant), "PERSON"
        if kind == "LAST":
            return self.case(f.last_name(), variant), "PERSON"
        if kind == "PERSON":
            first = r.choice(self.oov_first) if r.random() < 0.25 else f.first_name()
            return self.case(f"{first} {f.last_name()}", variant), "PERSON"
        if kind == "PHONE":
            v = r.choice([self.gb.phone_number, self.gb.cellphone_number, self.us.phone_number])()
            return (re.sub(r"\D", "", v) if variant == "bare" else v), "PHONE"
        if kind == "EMAIL":
            v = r.choice([f.email, f.free_email, f.company_email])()
            return (v.upper() if variant == "upper" else v), "EMAIL"
        if kind == "ADDRESS":
            v = f.street_address().replace("\n", ", ")
            return self.case(v, variant), "ADDRESS"
        if kind == "CITY":
            return f.city(), None
        if kind == "STATE":
            return r.choice([self.us.state_abbr(), self.us.state()]), None
        if kind == "POSTCODE_UK":
            v = self.gb.postcode()
            if variant == "nospace":
                v = v.replace(" ", "")
            return self.case(v, variant if variant == "lower" else "keep"), "POSTCODE"
        if kind == "ZIP":
            return r.choice([self.us.zipcode(), self.us.zipcode_plus4()]), "POSTCODE"
        if kind == "DOB":
            d = _date_of_birth(f, minimum_age=1, maximum_age=95)
            fmt = r.choice(["%d/%m/%Y", "%d.%m.%Y", "%m/%d/%Y", "%d-%m-%Y", "%Y-%m-%d", "%d/%m/%y", "{day} %B %Y", "%B {day}, %Y",
                            "{day} %b %Y", "the {dayth} of %B %Y"])
            day = str(d.day)
            dayth = day + ("th" if 11 <= d.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th"))
            return self.case(d.strftime(fmt).replace("{day}", day).replace("{dayth}", dayth), "keep"), "DOB"
        if kind == "SSN":
            v = self.us.ssn()
            return (v.replace("-", "") if variant == "bare" else r.choice([v, v, v.replace("-", " ")])), "SSN"
        if kind == "NHS":
            v = _nhs(r)
            if variant != "bare":
                v = r.choice([f"{v[:3]} {v[3:6]} {v[6:]}", f"{v[:3]}-{v[3:6]}-{v[6:]}", v])
            return v, "NHS_NUMBER"
        if kind == "MRN":
            v = r.choice([str(r.randint(100000, 99999999)), f"RX{r.randint(1000000, 9999999)}", f"H{r.randint(100000, 999999)}",
                          f"K{r.randint(1000000, 9999999)}", f"MRN-{r.randint(10000, 999999)}", f"{r.randint(10, 99)}-{r.randint(1000, 9999)}-{r.randint(10, 99)}"])
            return self.case(v, variant if variant == "lower" else "keep"), "MRN"
        if kind == "INS":
            letters = "".join(r.choice("ABCDEFGHJKLMNPRSTUWXYZ") for _ in range(r.randint(1, 3)))
            v = r.choice([f"{letters}{r.randint(10**7, 10**10 - 1)}", f"{r.randint(10**7, 10**9 - 1)}",
                          f"{letters}-{r.randint(100, 999)}-{r.randint(100, 999)}-{r.randint(100, 999)}",
                          f"{r.randint(1, 9)}{letters}{r.randint(1, 9)}{letters}-{letters}{r.randint(10, 99)}"])
            return self.case(v, variant if variant == "lower" else "keep"), "INSURANCE_ID"
        if kind == "URL":
            v = r.choice([f.url(), f"www.{f.domain_name()}", f.domain_name(), f"{f.url()}{f.uri_path()}", f"https://{f.domain_name()}/{f.slug()}"])
            return v.rstrip("/") if r.random() < 0.5 else v, "URL"
        if kind == "IP":
            v = r.choice([f.ipv4_public, f.ipv4_private, f.ipv4, f.ipv6])()
            return v, "IP_ADDRESS"
        if kind == "AGE":
            return str(r.randint(90, 104)), "AGE"
        raise KeyError(kind)

    def fill_keep(self, key: str) -> str:
        r = self.rng
        table = {"eponym": EPONYMS, "duration": DURATIONS, "drug": DRUGS, "body": BODY, "symptom": SYMPTOMS}
        if key in table:
            return r.choice(table[key])
        if key == "young_age":
            return str(r.randint(1, 89))
        raise KeyError(key)


_SLOT = re.compile(r"\{([A-Z_]+)(?::(\w+))?\}|\[\[(.*?)\]\]|\{(\w+)\}")


def build(template: str, g: _Gen) -> dict:
    text, spans, keep, pos = "", [], [], 0
    for m in _SLOT.finditer(template):
        text += template[pos:m.start()]
        pos = m.end()
        if m.group(1):
            v, typ = g.value(m.group(1), m.group(2))
            if typ:
                spans.append({"start": len(text), "end": len(text) + len(v), "type": typ})
            text += v
        elif m.group(3) is not None:
            inner = re.sub(r"\{(\w+)\}", lambda k: g.fill_keep(k.group(1)), m.group(3))
            keep.append({"start": len(text), "end": len(text) + len(inner)})
            text += inner
        else:  # {keep_age_phrase}
            a = g.fill_keep("young_age")
            phrase = g.rng.choice([f"im {a} years old", f"my dad is {a}", f"aged {a}", f"she's {a} now"])
            keep.append({"start": len(text), "end": len(text) + len(phrase)})
            text += phrase
    text += template[pos:]
    return {"text": text, "spans": spans, "keep": keep}


def generate(seed: int = 20240611, per_type: int = 24, traps: int = 70) -> list[dict]:
    g = _Gen(seed)
    rows = []
    for typ, templates in T.items():
        for i in range(per_type):
            rows.append(build(templates[i % len(templates)], g))
    for i in range(traps):
        rows.append(build(TRAPS[i % len(TRAPS)], g))
    g.rng.shuffle(rows)
    return rows


def write(out: Path = OUT, seed: int = 20240611) -> int:
    """Write the dev set to ``out`` (JSON lines); returns the number of examples."""
    rows = generate(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(rows)
