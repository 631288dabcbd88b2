"""End-of-history advice: triage level in plain words, what to do, when to seek help sooner (safety-net),
what a clinician may want to check. Never a diagnosis or a prescription; says it is not a doctor.
Wording: ``advice`` and ``level.<level>.advice`` in configs/texts.yaml."""

from __future__ import annotations

from chatdoc.dialogue.state import ConsultationState
from chatdoc.texts import has_text, text


def advice_text(state: ConsultationState, locale: str | None = None) -> str:
    from chatdoc.safety import emergency_instruction, safe_template

    level = state.get("triage", {}).get("level", "routine")
    if level == "unknown":
        level = "routine"
    body = emergency_instruction(None, locale) if level == "emergency" else safe_template(level, locale=locale)
    subject = text("advice.subject.parent" if state.get("persona") == "paediatric" else "advice.subject.self")
    key = f"advice.checks.{state['history'].get('complaint_set', 'general')}"
    checks = text(key if has_text(key) else "advice.checks.general")
    return text("advice.text", body=body, checks=checks, subject=subject).replace("  ", " ")
