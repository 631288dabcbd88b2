"""End-of-history advice: triage level in plain words, what to do, when to seek help sooner (safety-net),
what a clinician may want to check. Never a diagnosis or a prescription; says it is not a doctor."""

from __future__ import annotations

from chatdoc.dialogue.state import ConsultationState

CHECKS = {
    "headache": "your blood pressure, your eyes and a quick check of your nerves",
    "chest_pain": "your pulse, blood pressure and oxygen levels, and possibly a heart tracing (ECG)",
    "abdominal_pain": "your tummy, temperature and possibly a urine or blood test",
    "fever": "your temperature, pulse and breathing, and look for the cause of the fever",
    "cough_breathlessness": "your breathing, oxygen levels and listen to your chest",
    "back_pain": "how your back and legs move, and the feeling and strength in your legs",
    "rash": "the rash itself and your temperature",
    "urinary": "a urine sample and your temperature",
    "sore_throat": "your throat, glands and temperature",
    "dizziness": "your blood pressure lying and standing, your pulse and your balance",
    "low_mood_anxiety": "how you are feeling in more detail and what support would help",
    "general": "the symptoms you've described and do a short examination",
}

LEVEL_WORDS = {
    "emergency": "This needs emergency care now.",
    "urgent": "You should be seen by a clinician today.",
    "routine": "This doesn't sound like an emergency from what you've told me, but you should see your GP or clinician in the next few days.",
    "self_care": "This sounds like something that can usually be looked after at home.",
}


def advice_text(state: ConsultationState, locale: str | None = None) -> str:
    from chatdoc.safety import emergency_instruction, safe_template

    level = state.get("triage", {}).get("level", "routine")
    if level == "unknown":
        level = "routine"
    if level == "emergency":
        body = emergency_instruction(None, locale)
    else:
        body = safe_template(level, locale=locale)
    subject = "your child's" if state.get("persona") == "paediatric" else "your"
    checks = CHECKS.get(state["history"].get("complaint_set", "general"), CHECKS["general"])
    return (f"Thank you, that's all my questions for now. I'm an automated assistant, not a doctor, so I can't "
            f"diagnose or prescribe. {body} A clinician may want to check {checks}. I've put {subject} answers into a "
            f"summary for the clinical team.").replace("  ", " ")
