import pytest
import yaml

from chatdoc.safety import assess
from chatdoc.safety.rules import RulesError, get_rules, load_rules_file, parse_rules

GOOD = {
    "concepts": {"chest_pain": {"patterns": ["chest pain"]}},
    "rules": [{"id": "cp", "level": "urgent", "title": "Chest pain", "source": "NICE CKS", "triggers": [{"any": ["chest_pain"]}]}],
}


def test_shipped_rules_load_and_cover_required_topics():
    rs = get_rules()
    ids = {r.id for r in rs.rules}
    for rid in ["cardiac_chest_pain", "stroke_fast", "severe_breathing", "anaphylaxis", "meningitis_signs", "sepsis_signs",
                "severe_bleeding", "head_injury_warning", "thunderclap_headache", "testicular_torsion", "pregnancy_emergency",
                "infant_fever", "diabetic_emergency", "acute_abdomen", "suicidal_ideation", "self_harm", "overdose", "seizure",
                "cauda_equina"]:
        assert rid in ids
        assert next(r for r in rs.rules if r.id == rid).level == "emergency"
    assert {r.level for r in rs.rules} == {"emergency", "urgent", "routine", "self_care"}
    assert all(r.source for r in rs.rules)
    assert get_rules() is rs  # cached


def test_custom_rules_file(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(GOOD))
    rs = load_rules_file(p)
    assert assess(["I have chest pain"], rules=rs).level == "urgent"


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["rules"][0].update(level="soon"), "rule 'cp'"),
    (lambda d: d["rules"][0].update(level="unknown"), "level must be one of emergency, urgent, routine, self_care"),
    (lambda d: d.update(default_level="unknown"), "default_level"),
    (lambda d: d["rules"][0]["triggers"][0].update(any=["nope"]), "unknown concept 'nope'"),
    (lambda d: d["rules"][0].pop("source"), "rule 'cp'"),
    (lambda d: d["concepts"]["chest_pain"].update(patterns=["chest (pain"]), "concept 'chest_pain'"),
    (lambda d: d["rules"].append(dict(d["rules"][0])), "duplicate id"),
    (lambda d: d["rules"][0]["triggers"][0].update(vitals={"bp": {"lt": 90}}), "unknown vital"),
])
def test_bad_rules_raise_clear_errors(mutate, needle):
    import copy

    d = copy.deepcopy(GOOD)
    mutate(d)
    with pytest.raises(RulesError) as e:
        parse_rules(d)
    assert needle in str(e.value)


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(RulesError, match="not found"):
        load_rules_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules_file(bad)
