"""Wording: the model words the next question in the persona's voice; the guard and an acceptance
check decide whether that wording is used, otherwise the item's template is.

A down model engine (``chatdoc.llm.EngineUnavailable``: the remote server refused, timed out or failed) never
loses a turn: the template words the question (source "template", reason ``engine_unavailable``, or ``model_busy``
when the service's generation gate had no free slot in time), without a second try in the same turn.

A model wording is accepted only if it is ONE short question (one "?", at most 30 words), names the
target (one of the item's keywords or topic words) and passes :func:`chatdoc.safety.guard_output`
(via :func:`chatdoc.safety.guarded`: blocked -> regenerate once -> template).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from chatdoc.dialogue.personas import Persona
from chatdoc.dialogue.questions import Item
from chatdoc.log import logger

_stats = threading.local()


def reset_gen_stats() -> None:
    _stats.gen_s = 0.0
    _stats.calls = 0
    _stats.tokens = 0


def gen_stats() -> dict[str, float]:
    return {"gen_s": getattr(_stats, "gen_s", 0.0), "gen_calls": getattr(_stats, "calls", 0),
            "gen_tokens": getattr(_stats, "tokens", 0)}


@dataclass
class Worded:
    text: str
    source: str  # model | template
    reasons: list[str]


def _keywords(item: Item) -> list[str]:
    words = [k.lower() for k in item.keywords]
    words += [w for w in re.findall(r"[a-z]{4,}", item.topic.lower()) if w not in {"whether", "what", "when", "where", "they", "their", "from", "with", "about", "them"}]
    return words


def accept(text: str, item: Item) -> bool:
    """One short question that names its target."""
    t = text.strip()
    if t.count("?") != 1 or not t.endswith("?"):
        return False
    if not 3 <= len(t.split()) <= 30 or "\n" in t or ":" in t or "<" in t:
        return False
    low = t.lower()
    return any(k in low for k in _keywords(item))


def _clean(raw: str) -> str:
    t = raw.strip().split("\n")[0].strip().strip('"').strip()
    t = re.sub(r"^(?:doctor|dr|assistant)\s*:\s*", "", t, flags=re.I)
    if "?" in t:
        t = t[: t.index("?") + 1]
    return t


def word_question(item: Item, persona: Persona, turns: list[dict], *, adapter: str | None, use_model: bool,
                  backend: Any = None, red_flag: bool, recent_outputs: list[str]) -> Worded:
    """The question for ``item``: the model's wording (``backend``, when ``use_model``) if it passes the acceptance
    check and the output guard, else the template. ``Worded.reasons`` records why model attempts were rejected."""
    template = persona.phrase(item.question, item.child)
    if not use_model or backend is None:
        return Worded(template, "template", [])
    from chatdoc.config import get_settings
    from chatdoc.llm import EngineUnavailable, GenerationRequest, Turn
    from chatdoc.safety import guarded

    s = get_settings()
    who = "the parent about their child's" if persona.audience == "parent" else "the patient about their"
    system = (f"{persona.system.strip()}\nYour next reply is one short question asking {who} {item.topic or item.slot}.")
    recent = [Turn(role=m["role"], text=m["text"]) for m in turns[-s.dialogue.wording_context_turns:]] if s.dialogue.wording_context_turns else []
    max_new = s.dialogue.wording_max_new_tokens
    try:
        prompt = backend.build_prompt(system, recent, max_new)
    except EngineUnavailable as e:
        return _engine_down(template, e)
    attempt = {"n": 0}
    rejected: list[str] = []  # attempts that failed the acceptance check (the guard then reports "empty")
    down: list[EngineUnavailable] = []  # the engine is down: no further tries this turn

    def generate() -> str:
        if down:
            return ""
        attempt["n"] += 1
        # stop as soon as the question ends (or at a line break): one question, no wasted tokens
        req = GenerationRequest(prompt=prompt, max_new_tokens=max_new, greedy=attempt["n"] == 1,
                                temperature=0.5, adapter=adapter, stop=("?", "\n"), include_stop=True)
        t0 = time.perf_counter()
        try:
            res = backend.generate(req)
        except EngineUnavailable as e:
            down.append(e)
            return ""
        finally:
            _stats.gen_s = getattr(_stats, "gen_s", 0.0) + (time.perf_counter() - t0)
        _stats.calls = getattr(_stats, "calls", 0) + 1
        _stats.tokens = getattr(_stats, "tokens", 0) + res.new_tokens
        text = _clean(res.text)
        if not accept(text, item):
            logger.debug("model wording rejected (slot {}, {} chars)", item.slot, len(text))
            rejected.append("not_accepted")
            return ""  # the guard treats it as empty -> regenerate once, then template
        return text

    g = guarded(generate, system_text=system, red_flag_present=red_flag, recent_outputs=recent_outputs,
                fallback_kind="question", question=template, max_attempts=s.dialogue.wording_attempts)
    if down:
        return _engine_down(template, down[0])
    reasons = [*rejected, *g.reasons]
    if g.ok:
        return Worded(g.text, "model", reasons)
    return Worded(template, "template", reasons)


def _engine_down(template: str, e: Exception) -> Worded:
    """The model engine is down (``EngineUnavailable``): the turn goes on with the reviewed template wording, so a
    down engine never loses a turn (and the patient is not kept waiting for a second try)."""
    reason = getattr(e, "reason", "engine_unavailable")  # model_busy: every model slot of this process was taken
    logger.warning("model wording not available ({}), template used: {}", reason, e)
    return Worded(template, "template", [reason])
