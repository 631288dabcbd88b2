"""chatdoc.clinical.numbers: typed quantities read from a patient turn, with spans into the original text."""

import time
from datetime import datetime

import pytest

from chatdoc.clinical.numbers import Quantity, find_quantities

NOW = datetime(2024, 5, 15, 14, 0)  # a Wednesday, 14:00


def q(text: str) -> list[Quantity]:
    out = find_quantities(text, now=NOW)
    for x in out:
        assert text[x.start:x.end] == x.text
    return out


def one(text: str, kind: str) -> Quantity:
    found = [x for x in q(text) if x.kind == kind]
    assert len(found) == 1, (text, q(text))
    return found[0]


def kinds(text: str) -> list[str]:
    return [x.kind for x in q(text)]


# ------------------------------------------------------------------ temperature

@pytest.mark.parametrize("text,value", [
    ("my temp is 38.9", 38.9),
    ("it was 37.5 degrees", 37.5),
    ("a temp of 39.2C this morning", 39.2),
    ("Temperature 38,5 since last night", 38.5),
    ("temp 38.9c", 38.9),
    ("it was 38.9", 38.9),
    ("102.2F", 39.0),
    ("101 degrees f", 38.3),
    ("103 fahrenheit", 39.4),
    ("temp 101", 38.3),
    ("Temp 38.9°C", 38.9),
    ("thermometer says 39", 39.0),
])
def test_temperature(text, value):
    t = one(text, "temperature")
    assert t.value == value and t.unit == "C"


def test_decimal_is_never_split():
    found = q("temp 38.9")
    assert [(x.kind, x.value) for x in found] == [("temperature", 38.9)]
    assert "38.9" in found[0].text


def test_temperature_raw_and_span_in_original_text():
    text = "She had a TEMP OF 39.2C overnight"
    t = one(text, "temperature")
    assert t.raw == "39.2C" and t.text == "TEMP OF 39.2C"


@pytest.mark.parametrize("text", ["temp 55", "temperature 20", "3 degrees outside", "fever for 3 days"])
def test_implausible_or_foreign_temperature_dropped(text):
    assert "temperature" not in kinds(text)


# ------------------------------------------------------------------ other vital signs

@pytest.mark.parametrize("text,value", [
    ("heart rate 130", 130), ("pulse is 48", 48), ("my heart going at 140 bpm", 140), ("HR 120", 120),
    ("130 beats a minute", 130),
])
def test_heart_rate(text, value):
    h = one(text, "heart_rate")
    assert h.value == value and h.unit == "bpm"


@pytest.mark.parametrize("text,value", [
    ("breathing 30 times a minute", 30), ("resp rate 28", 28), ("RR 24", 24), ("24 breaths per minute", 24),
])
def test_resp_rate(text, value):
    r = one(text, "resp_rate")
    assert r.value == value and r.unit == "/min"


@pytest.mark.parametrize("text,value", [
    ("sats 91%", 91), ("oxygen 89", 89), ("my oximeter says 91", 91), ("o2 level is 92 percent", 92),
    ("94% on air", 94),
])
def test_spo2(text, value):
    s = one(text, "spo2")
    assert s.value == value and s.unit == "%"


def test_pulse_oximeter_is_spo2_not_heart_rate():
    assert kinds("pulse ox reading 96") == ["spo2"]


@pytest.mark.parametrize("text,sys_,dia", [
    ("it was 150 over 95", 150, 95), ("BP 180/110", 180, 110), ("blood pressure was 85/50", 85, 50),
    ("bp 120/80 mmHg", 120, 80),
])
def test_blood_pressure(text, sys_, dia):
    b = one(text, "blood_pressure")
    assert (b.value, b.value2, b.unit) == (sys_, dia, "mmHg")


@pytest.mark.parametrize("text,value", [
    ("sugar 2.8", 2.8), ("BM 22", 22.0), ("blood sugar 350 mg/dl", 19.4), ("glucose 4.5 mmol", 4.5),
    ("blood sugar is 400", 22.2),
])
def test_glucose(text, value):
    g = one(text, "glucose")
    assert g.value == value and g.unit == "mmol/L"


def test_mg_per_dl_is_not_a_dose():
    assert kinds("blood sugar 350 mg/dl") == ["glucose"]


def test_oxygen_litres_is_not_spo2():
    assert "spo2" not in kinds("on 2 litres of oxygen")


# ------------------------------------------------------------------ age

@pytest.mark.parametrize("text,value", [
    ("I'm 58", 58), ("I\u2019m 58 and worried", 58), ("a 58 year old man", 58), ("58yo", 58), ("aged 70", 70),
    ("I'm in my 70s", 75), ("my 8-month-old", 0.6667), ("she's 3 weeks old", 0.0575), ("he is 10 days old", 0.0274),
    ("my newborn", 0.02), ("I am twenty six", 26), ("I'm twenty-six", 26), ("twenty six years old", 26),
    ("I am 58 years old", 58), ("my son is 4", 4),
])
def test_age(text, value):
    a = one(text, "age")
    assert a.value == value and a.unit == "years"


def test_age_span_and_raw():
    a = one("Hi, I'm 58 and have a cough", "age")
    assert a.text == "I'm 58" and a.raw == "58"


@pytest.mark.parametrize("text", [
    "I'm 32 weeks pregnant", "I'm 5 days late", "I'm 2 days into it", "I'm 6 foot", "I'm 70 kg", "for 58 minutes",
    "I'm 100% sure", "I'm 5'6", "when I was a child",
])
def test_not_ages(text):
    assert "age" not in kinds(text)


def test_pregnancy_weeks_are_gestation_and_kg_is_weight():
    assert one("I'm 32 weeks pregnant", "gestation").value == 32
    assert one("I'm 70 kg", "weight").value == 70


# ------------------------------------------------------------------ gestation

@pytest.mark.parametrize("text,value", [
    ("32 weeks pregnant", 32), ("I'm 12 weeks", 12), ("scan at 28 weeks", 28), ("36+2 weeks", 36.29),
    ("I'm 34 weeks and 3 days", 34.43),
])
def test_gestation(text, value):
    g = one(text, "gestation")
    assert g.value == value and g.unit == "weeks"


# ------------------------------------------------------------------ duration

@pytest.mark.parametrize("text,hours", [
    ("for two weeks", 336), ("2 days", 48), ("a fortnight", 336), ("three weeks", 504), ("a couple of days", 48),
    ("half an hour", 0.5), ("20 mins", 0.333), ("for about a month", 720), ("the last 3 days", 72),
    ("a 3-week history of cough", 504), ("over a year", 8760), ("for 58 minutes", 0.967),
    ("for 2-3 days", 72), ("2 and a half days", 60), ("an hour and a half", 1.5), ("for the last week", 168),
])
def test_duration(text, hours):
    d = one(text, "duration")
    assert d.value == hours and d.unit == "hours"


def test_duration_span_includes_the_lead_in():
    d = one("I've had it for about a month now", "duration")
    assert d.text == "for about a month" and d.raw == "a month"


@pytest.mark.parametrize("text", ["every 4 hours", "I smoke 20 cigarettes a day", "twice a week", "3 times a day"])
def test_frequencies_are_not_durations(text):
    assert "duration" not in kinds(text)


# ------------------------------------------------------------------ onset

@pytest.mark.parametrize("text,hours", [
    ("twenty minutes ago", 0.333), ("2 hours ago", 2), ("yesterday", 24), ("last night", 12),
    ("this morning", 6),          # 14:00 - 08:00
    ("since Tuesday", 38),        # Tuesday 00:00 -> Wednesday 14:00
    ("on Monday", 62), ("3 days ago", 72), ("last week", 168), ("10 years ago", 87600),
    ("in 2015", 9 * 8760), ("about a week ago", 168), ("since yesterday", 24), ("yesterday evening", 20),
    ("the day before yesterday", 48),
])
def test_onset(text, hours):
    o = one(text, "onset")
    assert o.value == hours and o.unit == "hours"


def test_onset_raw_is_as_written():
    assert one("It's been bad since Tuesday.", "onset").raw == "since Tuesday"


def test_onset_this_morning_minimum_one_hour_and_same_weekday_goes_back_a_week():
    early = datetime(2024, 5, 15, 8, 30)
    assert find_quantities("this morning", now=early)[0].value == 1.0
    tuesday = datetime(2024, 5, 14, 10, 0)
    assert find_quantities("since Tuesday", now=tuesday)[0].value == 7 * 24 + 10


def test_now_defaults_to_the_clock():
    (o,) = find_quantities("3 days ago")
    assert o.value == 72


def test_vague_and_birth_years_are_not_onsets():
    assert q("when I was a child") == []
    assert "onset" not in kinds("I was born in 1961")


# ------------------------------------------------------------------ severity

@pytest.mark.parametrize("text,value", [
    ("7/10", 7), ("8 out of 10", 8), ("it's a 9", 9), ("6.5/10", 6.5), ("eight out of ten", 8),
    ("I'd rate it 7", 7), ("honestly 11/10", 10),
])
def test_severity(text, value):
    s = one(text, "severity")
    assert s.value == value and s.unit == "/10"


# ------------------------------------------------------------------ dose and weight

@pytest.mark.parametrize("text,value,unit,span", [
    ("took 500mg of paracetamol", 500, "mg", "500mg"), ("two 500 mg tablets", 500, "mg", "500 mg"),
    ("20 units of insulin", 20, "units", "20 units"), ("5ml of calpol", 5, "ml", "5ml"),
    ("100 micrograms", 100, "mcg", "100 micrograms"),
])
def test_dose(text, value, unit, span):
    d = one(text, "dose")
    assert (d.value, d.unit, d.text) == (value, unit, span)


def test_alcohol_units_are_not_a_dose():
    assert "dose" not in kinds("I drink about 14 units a week")


@pytest.mark.parametrize("text,kg", [("I'm 70 kg", 70), ("I weigh 11 stone", 69.9), ("154 lbs", 69.9),
                                     ("11st 4lb", 71.7)])
def test_weight(text, kg):
    w = one(text, "weight")
    assert w.value == kg and w.unit == "kg"


# ------------------------------------------------------------------ things that are not quantities

@pytest.mark.parametrize("text", [
    "call me on 07700 900123", "my number is 0121 496 0000", "born 14/03/1961", "24/7", "at 3pm", "about 10:30",
    "2 of them", "top 10", "1. headache\n2. sore throat", "I have vitamin b12 and covid19", "it cost \u00a320",
])
def test_not_quantities(text):
    assert q(text) == []


def test_date_is_not_blood_pressure():
    assert "blood_pressure" not in kinds("DOB 14/03/1961, bp fine")


# ------------------------------------------------------------------ a whole turn

def test_a_whole_turn_in_order_without_overlaps():
    text = ("I\u2019m 58 and have had chest pain for 2-3 days, about 8/10, started yesterday evening. "
            "Temp 38.9 and pulse 120, sats 94% on air, BP 150/95. Took two 500mg paracetamol.")
    found = q(text)
    assert [x.kind for x in found] == ["age", "duration", "severity", "onset", "temperature", "heart_rate", "spo2",
                                       "blood_pressure", "dose"]
    assert all(a.end <= b.start for a, b in zip(found, found[1:]))
    assert [x.value for x in found][:4] == [58, 72, 8, 20]


def test_longest_match_wins():
    # "3 days ago" is an onset, not a 3-day duration; "3 weeks old" is an age, not a duration
    assert kinds("it started 3 days ago") == ["onset"]
    assert kinds("she's 3 weeks old") == ["age"]
    assert kinds("32 weeks pregnant") == ["gestation"]


def test_is_fast():
    text = ("I'm 58, had a fever of 38.9 for two weeks, heart rate 130, sats 91%, BP 150/95, sugar 2.8, pain 8/10, "
            "started on Monday after I took 500mg of ibuprofen. My 8-month-old has had a temp 101 since yesterday "
            "and I'm 32 weeks pregnant, 70 kg. ") * 1
    text = text[:300]
    find_quantities(text, now=NOW)
    t0 = time.perf_counter()
    for _ in range(20):
        find_quantities(text, now=NOW)
    assert (time.perf_counter() - t0) / 20 < 0.002


@pytest.mark.parametrize("text,kind,value", [
    ("hr120", "heart_rate", 120), ("temp38.5", "temperature", 38.5), ("bp150/90", "blood_pressure", 150),
    ("BP is usually 130 over 80", "blood_pressure", 130), ("sats 96 pulse 88 temp 37.2", "temperature", 37.2),
])
def test_glued_and_chained_keywords(text, kind, value):
    assert one(text, kind).value == value


@pytest.mark.parametrize("text", ["BMI 38.5", "my crp was 40.5", "weight 38.5"])
def test_other_measures_are_not_bare_temperatures(text):
    assert "temperature" not in kinds(text)
