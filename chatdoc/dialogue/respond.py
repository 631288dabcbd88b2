"""Wording: the model's narrow jobs (``chatdoc.llm.jobs``) in a turn, each checked before it is shown.

* :func:`word_question` - the policy's next question in the persona's voice. Accepted only if it is ONE short
  question (one "?", at most 30 words), names the target (one of the item's keywords or topic words) and passes
  :func:`chatdoc.safety.guard_output` (via :func:`chatdoc.safety.guarded`: blocked -> regenerate once -> template).
* :func:`acknowledge` - one short sentence reflecting what the patient just said. Accepted only if it is one
  sentence without a question, every content word of it was said by the patient (or is an acknowledgement word
  such as "sorry", "thank", "sounds"), every number in it was said by the patient, and the guard passes. Else the
  reviewed template (``ack.*`` in configs/texts.yaml: correction, distress, pain, plain).
* :func:`grounded_generate` - the model's wording of a knowledge answer from a retrieved passage (every sentence
  is then checked against the passage by ``chatdoc.knowledge``).

Time budget: a turn's model jobs share ``dialogue.model_budget_s`` (from the run context). A job that would start
after the deadline is not started, and a running one is cancelled at the deadline; the template is used instead
(reason ``budget``). A down model engine (``chatdoc.llm.EngineUnavailable``: the remote server refused, timed out
or failed) never loses a turn: the template is used (reason ``engine_unavailable``, or ``model_busy`` when the
service's generation gate had no free slot in time), without a second try in the same turn.
"""

from __future__ import annotations

import inspect
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from chatdoc.dialogue.personas import Persona
from chatdoc.dialogue.questions import Item
from chatdoc.llm import jobs
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


def accept(text: str, item: Item, *, patient_text: str = "", audience: str = "self") -> bool:
    """One short question that names its target, put to the person in the chat (not about a "she" or "he" unless
    the parent is asked about their child), and not an echo of the patient's own words."""
    t = text.strip()
    if t.count("?") != 1 or not t.endswith("?"):
        return False
    if not 3 <= len(t.split()) <= 30 or "\n" in t or ":" in t or "<" in t or t.count(",") > 3:
        return False
    low = t.lower()
    if audience != "parent" and re.search(r"\b(?:she|he|her|his|him)\b", low):
        return False  # the patient is "you"
    if not re.search(r"\b(?:you|your|you're|you've|they|their|them|child|any|anything|is|are|does|did|do|has|have)\b", low):
        return False
    if patient_text and _echo(low, patient_text.lower()):
        return False
    return any(k in low for k in _keywords(item))


def _echo(question: str, patient: str, n: int = 4) -> bool:
    """The question repeats four words in a row of the patient's message (the model parroting the patient)."""
    q, p = re.findall(r"[a-z']+", question), re.findall(r"[a-z']+", patient)
    grams = {tuple(p[i:i + n]) for i in range(len(p) - n + 1)}
    return any(tuple(q[i:i + n]) in grams for i in range(len(q) - n + 1))


def _clean(raw: str) -> str:
    """The model's question: its first line without a speaker label, cut after the first "?"."""
    t = _clean_sentence(raw)
    if "?" in t:
        t = t[: t.index("?") + 1]
    return t


#: reasons a model part was not attempted at all (out of time, engine or adapter not there): not a refusal by a check
NOT_TRIED = frozenset({"budget", "engine_unavailable", "model_busy", "adapter_unavailable"})


class Budget:
    """The model's time in one turn: jobs start only before ``deadline`` and are cancelled at it."""

    def __init__(self, seconds: float | None):
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()


def run_job(backend: Any, job: jobs.Job, system: str, turns: list, *, adapter: str | None, greedy: bool,
            budget: Budget | None = None) -> tuple[str | None, str | None]:
    """(text, None) from one model job, or (None, reason): ``budget``, ``cancelled`` or the engine's reason.

    ``turns``: ``chatdoc.llm.Turn`` objects, oldest first. The prompt is the runtime consultation format with
    the job's system text (byte-identical to the fine-tuning data, see ``chatdoc.train.tasks``)."""
    from chatdoc.llm import AdapterError, EngineUnavailable, GenerationRequest

    if budget is not None and budget.left() < 0.25:
        return None, "budget"
    cancel = threading.Event()
    timer = threading.Timer(max(0.05, budget.left()), cancel.set) if budget and budget.deadline else None
    t0 = time.perf_counter()
    try:
        prompt = backend.build_prompt(system, turns, job.max_new_tokens)
        req = GenerationRequest(prompt=prompt, max_new_tokens=job.max_new_tokens, greedy=greedy, temperature=0.5,
                                adapter=adapter, stop=job.stop, include_stop=True)
        cancellable = timer is not None and "cancel" in inspect.signature(backend.generate).parameters
        if cancellable:
            timer.start()
        res = backend.generate(req, cancel=cancel) if cancellable else backend.generate(req)
    except EngineUnavailable as e:
        raise e
    except AdapterError as e:  # e.g. the engine does not serve this adapter: the turn goes on with the templates
        logger.warning("model part not available (adapter): {}", e)
        return None, "adapter_unavailable"
    finally:
        if timer:
            timer.cancel()
        _stats.gen_s = getattr(_stats, "gen_s", 0.0) + (time.perf_counter() - t0)
    _stats.calls = getattr(_stats, "calls", 0) + 1
    _stats.tokens = getattr(_stats, "tokens", 0) + res.new_tokens
    if getattr(res, "stopped_by", None) == "cancel" or cancel.is_set():
        return None, "budget"
    return res.text, None


def _turns(turns: list[dict], n: int) -> list:
    from chatdoc.llm import Turn

    return [Turn(role=m["role"], text=m["text"]) for m in turns[-n:]] if n else []


def word_question(item: Item, persona: Persona, turns: list[dict], *, adapter: str | None, use_model: bool,
                  backend: Any = None, red_flag: bool, recent_outputs: list[str], budget: Budget | None = None
                  ) -> Worded:
    """The question for ``item``: the model's wording (``backend``, when ``use_model``) if it passes the acceptance
    check and the output guard, else the template. ``Worded.reasons`` records why model attempts were rejected."""
    template = persona.phrase(item.question, item.child)
    if not use_model or backend is None:
        return Worded(template, "template", [])
    from chatdoc.config import get_settings
    from chatdoc.llm import EngineUnavailable
    from chatdoc.safety import guarded

    s = get_settings()
    who = "the parent about their child's" if persona.audience == "parent" else "the patient about their"
    system = jobs.question_system(persona.system, who, item.topic or item.slot)
    recent = _turns(turns, s.dialogue.wording_context_turns)
    attempt = {"n": 0}
    rejected: list[str] = []  # attempts that failed the acceptance check (the guard then reports "empty")
    down: list[Exception] = []  # the engine is down: no further tries this turn

    def generate() -> str:
        if down:
            return ""
        attempt["n"] += 1
        try:
            raw, why = run_job(backend, jobs.QUESTION, system, recent, adapter=adapter, greedy=attempt["n"] == 1,
                               budget=budget)
        except EngineUnavailable as e:
            down.append(e)
            return ""
        if raw is None:
            rejected.append(why or "none")
            return ""
        text = _clean(raw)
        last = next((m["text"] for m in reversed(turns) if m["role"] == "patient"), "")
        if not accept(text, item, patient_text=last, audience=persona.audience):
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


# ---------------------------------------------------------------------------------------------- acknowledgement
# Words an acknowledgement may use that the patient did not say: acknowledgement, empathy and function words.
_ACK_WORDS = frozenset("""
thank thanks thankyou sorry hear hearing heard sounds sound like that's thats that this it it's its you you're your yours
i i'm im we we've i've i'll ok okay right alright see understand understandable noted note notes got helpful help
know knowing good glad really very so quite such rough tough hard difficult horrible awful frightening scary
worrying worried worry concerning upsetting unpleasant uncomfortable painful sore telling tell letting let me
for and the a an of to with has have had been be is are was were must can cannot can't will would that's
clear useful appreciate much lot all about what how there here well just now then too also still things
time day deal dealing going through feel feeling feels felt experience experiencing
""".split())
_DISTRESS = re.compile(r"\b(?:worried|worrying|scared|frightened|terrified|afraid|panick?(?:ing|ed)?|anxious|upset|"
                       r"stressed|can'?t cope|cannot cope|crying|in tears|desperate|at my wits|freaking out|"
                       r"beside myself|really bad|awful|horrible|unbearable|agony|excruciating)\b", re.I)
_PAIN = re.compile(r"\b(?:pain|painful|hurts?|hurting|aching|agony|sore)\b", re.I)
# the corrected value: "I meant three weeks", "actually it's my left side", "it's 38.4 not 38.2", "sorry he's 3"
_CORRECTED = (
    re.compile(r"(?:\b(?:(?:it|he|she|that|they)(?:'s| is| are|'re)|is|was|be|like|at|to|about|around|started|meant|mean|"
               r"say)\s+|,\s*|^)"
               r"(?P<v>[\w.'-]+(?: [\w.'-]+){0,2}?),? (?:and )?not (?:the |my |a )?[\w.'-]+(?: [\w.'-]+)?\W*$", re.I),
    re.compile(r"\b(?:i meant|i mean|meant to say|i should have said|correction:?|no wait,?|actually,?|sorry,?)\s+"
               r"(?:(?:it|he|she|that|this)(?:'?s| is| was)|i'?m|i am|it started|it began|more like|it'?s more like)?\s*"
               r"(?P<v>[^.,;!?]{1,40}?)(?=\s+not\b|\s+rather\b|\s+sorry\b|[.,;!?]|$)", re.I),
)
_FILLER = re.compile(r"^(?:it(?:'s| is| was)|more like|about|around|started|began|now|just|actually|really)\s+", re.I)
_NOT_VALUE = re.compile(r"(?:scratch|ignore|forget|wait|no|sorry|i was wrong|let me|that'?s wrong)\b", re.I)
_SWAP = {"my": "your", "i": "you", "me": "you", "i'm": "you're", "im": "you're", "mine": "yours", "myself": "yourself"}


def corrected_value(patient_text: str) -> str | None:
    """The new value of a correction in the patient's words (first person turned to second), or None."""
    for rx in _CORRECTED:
        m = rx.search(patient_text.strip())
        if m and m.group("v").strip():
            v = m.group("v").strip()
            while _FILLER.match(v):
                v = _FILLER.sub("", v, count=1)
            v = " ".join(_SWAP.get(w.lower(), w) for w in v.split())
            if 0 < len(v.split()) <= 6 and not _NOT_VALUE.match(v):
                return v
    return None


_STEM = re.compile(r"[a-z0-9]+")
_NEGATION = re.compile(r"\b(?:no|not|never|without|nor|none|neither)\b|n't\b|\bdenies\b", re.I)
_DENIED = re.compile(r"(?:\b(?:no|not|never|without|nor|neither|any)\b|n't)((?:\s+(?:definitely|really|at all|any|a|an|the|"
                     r"been|had|got|have|feel|felt|being|currently))*(?:\s+[a-z0-9'-]+){1,2})", re.I)


def _denied_stems(text: str) -> set[str]:
    """Stems of the words the patient negated ("no fever", "I'm not pregnant") and said nowhere else."""
    low = text.lower().replace("\u2019", "'")
    neg = {w[:5] for m in _DENIED.finditer(low) for w in _STEM.findall(m.group(1))}
    plain = _STEM.findall(_DENIED.sub(" ", low))
    return neg - {w[:5] for w in plain}


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _STEM.findall(text.lower().replace("\u2019", "'"))}


def check_ack(text: str, patient_text: str, *, extra_words: frozenset[str] = frozenset()) -> str | None:
    """None when ``text`` is an acceptable acknowledgement of ``patient_text``, else the reason it is not."""
    t = text.strip()
    if not t or "?" in t or "\n" in t or ":" in t or "<" in t:
        return "not_a_statement"
    if len(re.findall(r"[.!](?=\s|$)", t)) > 1:
        return "more_than_one_sentence"
    words = re.findall(r"[a-z0-9']+", t.lower().replace("\u2019", "'"))
    if not 2 <= len(words) <= 20:
        return "length"
    said = _stems(patient_text)
    denied = _denied_stems(patient_text)
    if denied and not _NEGATION.search(t):  # "no temperature, not pregnant" must not come back as a fact
        for w in words:
            if w.strip("'")[:5] in denied and w.strip("'") not in _ACK_WORDS:
                return f"denied:{w}"
    for w in words:  # numbers first: a number the patient did not give is the worst kind of invented fact
        if any(ch.isdigit() for ch in w) and w.strip("'") not in patient_text.lower():
            return "number_not_said"
    for w in words:
        w = w.strip("'")
        if not w or w in _ACK_WORDS or w in extra_words:
            continue
        if w.isdigit() or any(ch.isdigit() for ch in w):
            if w not in patient_text.lower():
                return "number_not_said"
            continue
        if w[:5] not in said and w.rstrip("s")[:5] not in said:
            return f"not_said:{w}"
    if re.search(r"\byou (?:should|must|need to|have got|have an?|'ve got)\b|\bit(?:'s| is) (?:probably|likely|just)\b", t, re.I):
        return "advice_or_diagnosis"
    return None


def ack_template(patient_text: str, correction: bool) -> Worded:
    """The reviewed acknowledgement for this turn (no fact the patient did not say); empty text when the turn needs
    none of them (a correction, distress, pain)."""
    from chatdoc.texts import text as wording

    if correction:
        v = corrected_value(patient_text)
        if v:
            return Worded(wording("ack.correction", value=v), "template", [])
        return Worded(wording("ack.correction_plain"), "template", [])
    if _DISTRESS.search(patient_text):
        return Worded(wording("ack.distress"), "template", [])
    if _PAIN.search(patient_text) and re.search(r"\b(?:really|very|so|terrible|bad|severe|agony|unbearable|[7-9]|10)\b",
                                                patient_text, re.I):
        return Worded(wording("ack.pain"), "template", [])
    return Worded("", "template", [])  # nothing to add: the reply goes straight on (no empty "Thank you.")


def acknowledge(patient_text: str, persona: Persona, turns: list[dict], *, correction: bool, adapter: str | None,
                use_model: bool, backend: Any = None, recent_outputs: list[str], budget: Budget | None = None
                ) -> Worded:
    """One sentence acknowledging the patient's last turn: the model's (checked) or the template. A correction is
    always acknowledged with the reviewed text naming the corrected value in the patient's own words."""
    template = ack_template(patient_text, correction)
    if correction or not use_model or backend is None:
        return template
    from chatdoc.config import get_settings
    from chatdoc.llm import EngineUnavailable
    from chatdoc.safety import guard_output

    s = get_settings()
    system = jobs.ack_system(persona.system)
    extra = frozenset({"child", "son", "daughter", "baby", "little", "one"}) if persona.audience == "parent" else frozenset()
    try:
        raw, why = run_job(backend, jobs.ACK, system, _turns(turns, min(2, s.dialogue.wording_context_turns or 2)),
                           adapter=adapter, greedy=True, budget=budget)
    except EngineUnavailable as e:
        return _engine_down(template.text, e, template.source)
    if raw is None:
        return Worded(template.text, "template", [why or "none"])
    text = _clean_sentence(raw)
    why = check_ack(text, patient_text, extra_words=extra)
    if why is None:
        v = guard_output(text, system_text=system, recent_outputs=recent_outputs)
        why = None if v.ok else ",".join(v.reasons)
    if why is not None:
        logger.debug("model acknowledgement rejected: {}", why)
        return Worded(template.text, "template", [why])
    return Worded(text, "model", [])


def _clean_sentence(raw: str) -> str:
    """The model's first line without quotes or a speaker label ("Doctor:")."""
    t = raw.strip().split("\n")[0].strip().strip('"').strip()
    t = re.sub(r"^(?:doctor|dr|assistant)\s*:\s*", "", t, flags=re.I)
    return t


def grounded_generate(backend: Any, persona: Persona, *, adapter: str | None, budget: Budget | None = None):
    """``generate(question, passage, source) -> text | None`` for ``chatdoc.knowledge`` (the model's wording of a
    grounded answer; the caller keeps only sentences the passage supports)."""
    from chatdoc.llm import EngineUnavailable, Turn

    def generate(question: str, passage: str, source: str) -> str | None:
        try:
            raw, _why = run_job(backend, jobs.ANSWER, jobs.answer_system(persona.system, passage, source),
                                [Turn(role="patient", text=question)], adapter=adapter, greedy=True, budget=budget)
        except EngineUnavailable:
            return None
        return None if raw is None else _clean_sentence(raw)

    return generate


def _engine_down(template: str, e: Exception, source: str = "template") -> Worded:
    """The model engine is down (``EngineUnavailable``): the turn goes on with the reviewed template wording, so a
    down engine never loses a turn (and the patient is not kept waiting for a second try)."""
    reason = getattr(e, "reason", "engine_unavailable")  # model_busy: every model slot of this process was taken
    logger.warning("model wording not available ({}), template used: {}", reason, e)
    return Worded(template, source, [reason])
