"""Behaviour of the redactor: every entity type, lowercase names, clinical traps, placeholders."""

import json

import pytest

from chatdoc.privacy import Entity, PlaceholderState, Redaction, contains_identifier, redact_text

CASES = [
    ("PERSON", "Hi, my name is Sarah Jones and I have a cough", "Sarah Jones"),
    ("PERSON", "my name is john smith", "john smith"),
    ("PERSON", "i'm sarah, the headache is back", "sarah"),
    ("PERSON", "my gp dr patel gave me antibiotics", "patel"),
    ("PERSON", "my wife jenny says i snore", "jenny"),
    ("PHONE", "call me on 07700 900123 after work", "07700 900123"),
    ("PHONE", "my number is (415) 555-0123", "(415) 555-0123"),
    ("PHONE", "ring +44 20 7946 0958 please", "+44 20 7946 0958"),
    ("EMAIL", "email me at jo.bloggs@example.co.uk", "jo.bloggs@example.co.uk"),
    ("ADDRESS", "i live at 42 oak road in leeds", "42 oak road"),
    ("ADDRESS", "send it to 1600 Pennsylvania Avenue Apt. 12", "1600 Pennsylvania Avenue Apt. 12"),
    ("POSTCODE", "my postcode is LS1 4AP", "LS1 4AP"),
    ("POSTCODE", "zip code 90210", "90210"),
    ("POSTCODE", "Springfield, IL 62704", "62704"),
    ("DOB", "I was born on 3/4/1980", "3/4/1980"),
    ("DOB", "DOB 12.05.1975", "12.05.1975"),
    ("DOB", "my date of birth is the 3rd of March 1980", "3rd of March 1980"),
    ("SSN", "my ssn is 123-45-6789", "123-45-6789"),
    ("NHS_NUMBER", "my nhs number is 943 476 5919", "943 476 5919"),
    ("MRN", "MRN 123456", "123456"),
    ("MRN", "my hospital number is RX1234567", "RX1234567"),
    ("INSURANCE_ID", "my insurance member id is W123456789", "W123456789"),
    ("URL", "see https://www.example.com/my-diary", "https://www.example.com/my-diary"),
    ("IP_ADDRESS", "login failed from 192.168.1.20", "192.168.1.20"),
    ("AGE", "I'm 93 and my knees hurt", "93"),
    ("AGE", "she is 95 years old", "95"),
]


@pytest.mark.parametrize("etype,text,value", CASES, ids=[f"{c[0]}:{c[2]}" for c in CASES])
def test_each_entity_type_redacted(redactor, etype, text, value):
    red = redactor.redact(text)
    assert value not in red.text, red.text
    start = text.index(value)
    hit = [e for e in red.entities if e.start <= start < e.end or start <= e.start < start + len(value)]
    assert hit and hit[0].type == etype, red.entities
    assert f"<{etype}_1>" in red.text


def test_nhs_checksum_required(redactor):
    red = redactor.redact("my nhs number is 943 476 5918")  # bad check digit
    assert not any(e.type == "NHS_NUMBER" for e in red.entities)


TRAPS = [
    "I've had a headache for 3 days, since yesterday",
    "it started last week, on Monday, and got worse 2 weeks ago",
    "I'm 45 and my dad is 89",
    "she's 72 years old with chest pain",
    "I take metformin 500mg twice a day and Ramipril 5mg",
    "Paracetamol isn't touching the pain in my lower back",
    "Crohn's disease, Parkinson's and Hashimoto's run in the family",
    "Bell's palsy, Addison's disease, Alzheimer's",
    "Graves' disease and Cushing's syndrome",
    "my son has Down syndrome and Tourette's",
    "Raynaud's and Meniere's disease",
    "Hodgkin's lymphoma, Huntington's disease",
    "Guillain-Barré syndrome, Sjögren's syndrome, Asperger's",
    "Addison has been mentioned by the doctor as in Addison's disease",
    "pain in my left knee and swelling in both ankles",
    "blood pressure 140/90, temperature 38.5",
]


@pytest.mark.parametrize("text", TRAPS)
def test_clinical_meaning_kept(redactor, text):
    red = redactor.redact(text)
    assert red.text == text, red.entities


def test_entities_use_original_offsets(redactor):
    text = "My name is Sarah Jones, email sarah@example.com"
    red = redactor.redact(text)
    assert isinstance(red, Redaction) and all(isinstance(e, Entity) for e in red.entities)
    assert [text[e.start:e.end] for e in red.entities] == ["Sarah Jones", "sarah@example.com"]
    assert [e.placeholder for e in red.entities] == ["<PERSON_1>", "<EMAIL_1>"]


def test_consistent_placeholders_within_session(redactor):
    state = PlaceholderState.new()
    r1 = redactor.redact("My name is Sarah Jones, call 07700 900123", state)
    r2 = redactor.redact("Sarah Jones again, my mobile is 07700900123. My wife is Mary Smith", r1.state)
    assert "<PERSON_1>" in r2.text and "<PHONE_1>" in r2.text
    assert "<PERSON_2>" in r2.text  # a new name gets a new number
    assert state.counters == {}  # the caller's state is not mutated


def test_different_sessions_different_salts(redactor):
    a, b = PlaceholderState.new(), PlaceholderState.new()
    ra = redactor.redact("my name is john smith", a)
    rb = redactor.redact("my name is john smith", b)
    assert a.salt != b.salt
    assert ra.text == rb.text == "my name is <PERSON_1>"
    assert set(ra.state.digests).isdisjoint(rb.state.digests)


def test_state_json_round_trip_holds_no_raw_value(redactor):
    raws = ["Sarah Jones", "07700 900123", "sarah@example.com", "943 476 5919"]
    red = redactor.redact("My name is Sarah Jones, 07700 900123, sarah@example.com, nhs number 943 476 5919")
    dumped = red.state.model_dump_json()
    back = PlaceholderState.model_validate_json(dumped)
    assert back == red.state
    low = dumped.lower()
    for raw in raws:
        assert raw.lower() not in low and raw.replace(" ", "") not in low
    assert "sarah" not in low and "jones" not in low
    assert set(json.loads(dumped)) == {"salt", "counters", "digests"}
    again = redactor.redact("it's Sarah Jones", back)
    assert again.text == "it's <PERSON_1>"


def test_idempotent(redactor):
    first = redactor.redact("My name is Sarah Jones, call me on 07700 900123, I'm 93").text
    second = redactor.redact(first)
    assert second.text == first and second.entities == []
    assert redactor.redact("<PERSON_1> said <PHONE_2> is fine").text == "<PERSON_1> said <PHONE_2> is fine"


def test_helpers(redactor):
    assert redact_text("email me at a.b@example.org") == "email me at <EMAIL_1>"
    assert contains_identifier("my name is john smith")
    assert not contains_identifier("I've had a cough for 3 days")
    assert redactor.redact("").text == "" and redactor.analyze("   ") == []
