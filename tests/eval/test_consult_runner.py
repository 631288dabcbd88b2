"""The consultation runner's loop and scoring, against a scripted stand-in for the service contract.

The real end-to-end run through chatdoc.service is in test_consult_e2e.py.
"""

from types import SimpleNamespace

from chatdoc.tools.eval.cases import case_from_yaml
from chatdoc.tools.eval.consult import aggregate, run_case

CASE = case_from_yaml(
    {
        "id": "t1",
        "demographics": {"age": 40, "sex": "male"},
        "opening": "I have a cough.",
        "history": ["It started a week ago."],
        "facts": [{"text": "Green sputum", "kind": "symptom"}, {"text": "Asthma", "kind": "pmh"}],
        "denies": ["fever"],
    },
    "t1",
)


class ScriptedService:
    """Follows docs/SERVICE_API.md; asks fixed questions and writes a summary from the patient's words."""

    QUESTIONS = ["How long have you had the cough?", "Any fever?", "Do you bring up any sputum?", "Any fever?"]

    def __init__(self):
        self.said, self.deleted = [], []

    def _reply(self, text, done=False):
        return SimpleNamespace(reply=text, done=done, phase="history", triage_level="routine", questions_asked=len(self.said))

    def start_consultation(self, persona=None):
        return SimpleNamespace(session_id="s1")

    def record_consent(self, sid):
        return self._reply("Hello, what brings you in today?")

    def send_message(self, sid, text):
        self.said.append(text)
        i = len(self.said) - 1
        if i < len(self.QUESTIONS):
            return self._reply(self.QUESTIONS[i])
        return self._reply("Thank you, I have what I need.", done=True)

    def end_consultation(self, sid):
        text = ("Chief complaint: cough for a week.\nHPI: green sputum.\nROS negatives: no fever.\n"
                "Medications: lisinopril.\nTriage: routine")
        return SimpleNamespace(text=text, structured={"triage_level": "routine"})

    def delete_consultation(self, sid):
        self.deleted.append(sid)
        return 1


def test_run_case_scores_summary_text():
    svc = ScriptedService()
    r = run_case(CASE, max_turns=10, service=svc)
    assert svc.said[0].startswith("Hello. I'm a 40-year-old man. I have a cough.")
    assert r["done"] and r["turns"] == 5
    assert r["covered"] == 2 and r["facts"] == 3  # sputum + no fever; asthma never asked
    assert r["per_kind"]["pmh"] == {"covered": 0, "total": 1}
    assert r["repeated_questions"] == 1  # "Any fever?" twice
    assert r["hallucinations"] == 1 and r["hallucinated_claims"][0]["claim"] == "lisinopril"
    assert r["triage_level"] == "routine"
    assert svc.deleted == ["s1"]
    agg = aggregate([r])
    assert agg["per_kind"]["pmh"]["disclosed"] == 0 and agg["missed_never_disclosed"] == 1


def test_max_turns_stops_the_loop():
    svc = ScriptedService()
    r = run_case(CASE, max_turns=2, service=svc)
    assert r["turns"] == 2 and not r["done"]
