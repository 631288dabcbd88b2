"""chatdoc.safety: rule-based triage over the whole history, crisis handling, output guard and
request classification. A pure library: no Redis, no UI, no model needed.

    from chatdoc.safety import assess
    r = assess(["I've had a fever since Tuesday", "my neck is really stiff"])
    r.level  # "emergency"; r.fired[0].id == "meningitis_signs"
"""

from chatdoc.safety.crisis import crisis_message, emergency_banner, emergency_instruction, is_acknowledgement
from chatdoc.safety.guard import GuardedText, GuardVerdict, guard_output, guarded, safe_template
from chatdoc.safety.requests import RequestClass, classify_request, refusal_message
from chatdoc.safety.rules import LEVELS, RulesError, get_rules
from chatdoc.safety.triage import Evidence, FiredRule, TriageResult, assess, assess_findings, combine_levels, red_flags

__all__ = [
    "LEVELS", "assess", "assess_findings", "TriageResult", "FiredRule", "Evidence", "combine_levels", "get_rules", "RulesError",
    "guard_output", "GuardVerdict", "guarded", "GuardedText", "safe_template",
    "classify_request", "RequestClass", "refusal_message",
    "crisis_message", "emergency_instruction", "emergency_banner", "is_acknowledgement", "red_flags",
]
