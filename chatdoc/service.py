"""``chatdoc.service`` — the one facade the UI, CLI and evaluation call (contract: docs/SERVICE_API.md).

Privacy at the door: patient text is redacted with the session's ``PlaceholderState`` before it is
passed to the graph as the ``Command(resume=...)`` value (LangGraph stores resume values in the
checkpointer), so nothing raw is stored, logged or sent to the model.

Consent: ``start_consultation`` only creates an id and keeps the choice of persona/adapter in this
process's memory; nothing is written to Redis until ``record_consent``. ``record_consent`` also
accepts a well-formed id this process never saw (a CLI run in another process), with an optional
``persona``/``adapter`` keyword (an extension of the documented signature; positional use unchanged).

Storage failures: a turn is checkpointed once, when the graph stops to wait for the next patient turn
(``durability="exit"``). If Redis is unreachable the turn raises ``ServiceError("storage_unavailable")``,
the previous checkpoint is untouched, and the same message can be sent again once Redis is back.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import BaseModel, Field

from chatdoc.log import logger

Phase = Literal["consent", "history", "advice", "closed", "escalated"]
Level = Literal["emergency", "urgent", "routine", "self_care", "unknown"]


# ---------------------------------------------------------------------------------------------- models
class ServiceError(Exception):
    """A person-caused or environmental error with a readable message (never a traceback)."""

    CODES = ("bad_input", "not_found", "no_consent", "storage_unavailable", "adapter", "forbidden")

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class PersonaInfo(BaseModel):
    name: str
    display_name: str
    description: str = ""


class SessionStart(BaseModel):
    session_id: str
    persona: PersonaInfo
    consent_text: str


class RedFlag(BaseModel):
    id: str
    title: str
    level: str
    evidence: str


class TurnReply(BaseModel):
    session_id: str
    reply: str
    phase: Phase
    triage_level: Level = "unknown"
    red_flags: list[RedFlag] = []
    crisis: bool = False
    banner: str | None = None
    awaiting_consent: bool = False
    questions_asked: int = 0
    done: bool = False


class StreamEvent(BaseModel):
    kind: Literal["banner", "token", "done", "error"]
    text: str = ""
    reply: TurnReply | None = None
    code: str | None = None  # on "error": the ServiceError code


class Summary(BaseModel):
    structured: dict[str, Any]
    text: str
    lay_text: str
    approved_by: str | None = None
    approved_at: float | None = None
    edited: bool = False


class ConsultationView(BaseModel):
    session_id: str
    meta: dict[str, Any] | None
    phase: Phase
    persona: str | None
    adapter: str | None
    transcript: list[dict[str, str]]
    history: dict[str, Any]
    profile: dict[str, Any]
    triage: dict[str, Any]
    question_log: list[dict[str, Any]]
    crisis_pending: bool = False
    flagged: bool = False
    summary: Summary | None = None


class Comparison(BaseModel):
    id: str
    messages: list[str] = []  # redacted
    persona: str | None = None
    created_at: float = Field(default_factory=time.time)
    rows: list[dict[str, Any]] = []  # {adapter, replies, timings}


# ---------------------------------------------------------------------------------------------- process state
_lock = threading.Lock()
_session_locks: dict[str, threading.Lock] = {}
_pending: dict[str, dict[str, Any]] = {}  # pre-consent sessions: in memory only
_started = False
_default_adapter: Any = ...  # ... = settings.adapters.active until activate_adapter() is called


def _startup() -> None:
    global _started
    if _started:
        return
    with _lock:
        if _started:
            return
        from chatdoc.privacy import install_log_scrubber

        install_log_scrubber()
        from chatdoc.memory import start_maintenance, sweep_expired

        try:
            n = sweep_expired()  # also the scheduled AOF rewrite (redis.aof_rewrite_hours), when due
            if n:
                logger.info("retention sweep removed {} keys", n)
        except Exception as e:  # Redis may be down at start-up; consultations report it per call
            logger.warning("retention sweep skipped: {}", type(e).__name__)
        start_maintenance()  # the same sweep hourly, for a server that runs for days
        _started = True


def _settings():
    from chatdoc.config import get_settings

    return get_settings()


def _slock(sid: str) -> threading.Lock:
    with _lock:
        return _session_locks.setdefault(sid, threading.Lock())


def _check_id(session_id: Any) -> str:
    from chatdoc.memory import is_valid_session_id

    if not is_valid_session_id(session_id):
        raise ServiceError("bad_input", "That is not a valid consultation id.")
    return session_id


def _storage_error(e: BaseException) -> ServiceError:
    logger.warning("storage unavailable: {}", type(e).__name__)
    return ServiceError("storage_unavailable",
                        "Storage is unavailable right now, so your message was not saved; please try again in a moment.")


@contextmanager
def _storage_guard():
    """Turn a Redis outage inside the block into ServiceError("storage_unavailable"); others pass through."""
    try:
        yield
    except ServiceError:
        raise
    except Exception as e:
        if _is_storage_error(e):
            raise _storage_error(e) from None
        raise


def _is_storage_error(e: BaseException) -> bool:
    import redis

    from chatdoc.memory import StorageUnavailable

    return isinstance(e, (StorageUnavailable, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                          ConnectionError, TimeoutError))


def _graph():
    from chatdoc.dialogue.graph import get_graph

    with _storage_guard():
        return get_graph()


def _cfg(sid: str) -> dict:
    return {"configurable": {"thread_id": sid}}


def _snapshot(sid: str) -> dict[str, Any]:
    with _storage_guard():
        snap = _graph().get_state(_cfg(sid))
    return dict(snap.values or {})


def _persona_info(name: str | None) -> PersonaInfo:
    from chatdoc.dialogue.personas import PersonaError, get_persona

    try:
        p = get_persona(name)
    except PersonaError as e:
        raise ServiceError("bad_input", str(e)) from None
    return PersonaInfo(name=p.name, display_name=p.display_name, description=p.description)


def consent_text() -> str:
    days = _settings().redis.ttl_days
    return (
        "Before we start: I'm an automated assistant, not a doctor or nurse. I ask questions about your symptoms, "
        "tell you how urgently to seek care, and write a summary for the clinical team. I can't diagnose, prescribe, "
        "or replace a clinician, and I'm not monitored live - in an emergency call the emergency number (999 in the UK) now. "
        "If you agree, I will store this conversation and its summary with names, phone numbers, addresses and other "
        f"identifiers replaced by placeholders; it is kept for {days:g} days and then deleted. You can ask the practice "
        "to delete it at any time (staff can erase every record of this consultation). Nothing is stored until you agree. "
        "Do you agree to continue?"
    )


def _resolve_adapter(adapter: Any) -> str | None:
    if adapter is ...:
        if _default_adapter is not ...:
            return _default_adapter
        name = _settings().adapters.active
        if name:
            from chatdoc.llm.adapters import AdapterError, adapter_dir

            try:  # a configured adapter that is not there: new consultations use the base model (logged)
                adapter_dir(_settings().path(_settings().adapters.dir), name)
            except AdapterError as e:
                logger.warning("configured adapter not used for new consultations: {}", e)
                return None
        return name
    return adapter


# ---------------------------------------------------------------------------------------------- consultations
PENDING_TTL_S = 3600.0  # an unconsented session is forgotten after an hour
PENDING_MAX = 10_000  # and at most this many are kept (oldest dropped first)


def _prune_pending() -> None:
    """Bound the in-memory pre-consent sessions (every page load creates one). Caller holds _lock."""
    cutoff = time.time() - PENDING_TTL_S
    for sid in [k for k, v in _pending.items() if v["created"] < cutoff]:
        del _pending[sid]
    while len(_pending) >= PENDING_MAX:
        del _pending[next(iter(_pending))]


def start_consultation(persona: str | None = None, adapter: Any = ...) -> SessionStart:
    """A new session id and the consent text. Nothing is stored until :func:`record_consent`."""
    from chatdoc.memory import new_session_id

    _startup()
    info = _persona_info(persona)
    sid = new_session_id()
    with _lock:
        _prune_pending()
        _pending[sid] = {"persona": info.name, "adapter": _resolve_adapter(adapter), "created": time.time()}
    return SessionStart(session_id=sid, persona=info, consent_text=consent_text())


def _reply_from(sid: str, st: dict[str, Any]) -> TurnReply:
    tri = st.get("triage") or {}
    rep = st.get("reply") or {}
    level = tri.get("level") or "unknown"
    return TurnReply(
        session_id=sid, reply=rep.get("text", ""), phase=st.get("phase", "history"), triage_level=level,
        red_flags=[RedFlag(**f) for f in tri.get("red_flags", [])], crisis=bool(tri.get("crisis")),
        banner=rep.get("banner"), awaiting_consent=False, questions_asked=len(st.get("question_log", [])),
        done=st.get("phase") == "closed",
    )


def _update_index(sid: str, st: dict[str, Any]) -> None:
    """Keep the staff list current; best effort after the checkpoint succeeded (the index is derived data)."""
    from chatdoc.memory import get_index

    tri = st.get("triage") or {}
    fields = dict(status=st.get("phase", "history"), triage_level=tri.get("level") or "unknown",
                  flagged=bool(st.get("flagged")), persona=st.get("persona"), adapter=st.get("adapter"),
                  title=(st.get("history") or {}).get("chief_complaint") or "")
    for attempt in (1, 2):
        try:
            get_index().upsert(sid, **fields)
            return
        except Exception as e:
            if not _is_storage_error(e) or attempt == 2:
                logger.warning("index update failed for a session: {}", type(e).__name__)
                return
            time.sleep(0.2)


def record_consent(session_id: str, *, persona: str | None = None, adapter: Any = ...) -> TurnReply:
    """Idempotent: stores the session and returns the greeting (or the latest reply if already started)."""
    from chatdoc.dialogue.state import new_state
    from chatdoc.memory import get_index
    from chatdoc.privacy import PlaceholderState

    _startup()
    sid = _check_id(session_id)
    with _slock(sid):
        st = _snapshot(sid)
        if st:
            return _reply_from(sid, st)
        with _lock:
            pend = _pending.get(sid) or {}
        name = _persona_info(persona or pend.get("persona")).name
        ad = pend.get("adapter") if adapter is ... and pend else _resolve_adapter(adapter)
        init = new_state(sid, name, ad, PlaceholderState.new().model_dump())
        with _storage_guard():
            out = _graph().invoke(init, _cfg(sid), durability="exit")
            get_index().put_record(sid, "consent", {"given_at": time.time(), "text_version": 1})
        with _lock:
            _pending.pop(sid, None)
        _update_index(sid, out)
        return _reply_from(sid, out)


def _prepare_turn(session_id: str, text: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    from chatdoc.privacy import PlaceholderState, get_redactor

    _startup()
    sid = _check_id(session_id)
    if not isinstance(text, str) or not text.strip():
        raise ServiceError("bad_input", "Please type a message.")
    limit = _settings().ui.max_message_chars
    if len(text) > limit:
        raise ServiceError("bad_input", f"That message is too long (at most {limit} characters).")
    st = _snapshot(sid)
    if not st:
        with _lock:
            known = sid in _pending
        if known:
            raise ServiceError("no_consent", "Please agree to the consent statement before we start.")
        raise ServiceError("not_found", "No consultation with that id (it may have been deleted or expired).")
    if st.get("phase") == "closed":
        raise ServiceError("bad_input", "This consultation has ended; please start a new one.")
    red = get_redactor().redact(text, PlaceholderState.model_validate(st["privacy"]))
    return sid, st, {"text": red.text, "privacy": red.state.model_dump()}


def _after_turn(sid: str, out: dict[str, Any]) -> TurnReply:
    _update_index(sid, out)
    if out.get("phase") == "closed" and out.get("summary"):
        _store_summary(sid, out["summary"])
    return _reply_from(sid, out)


def send_message(session_id: str, text: str) -> TurnReply:
    """One patient turn through the graph."""
    from langgraph.types import Command

    from chatdoc.dialogue.respond import reset_gen_stats

    sid = _check_id(session_id)
    with _slock(sid):
        sid, _st, resume = _prepare_turn(sid, text)
        reset_gen_stats()
        with _storage_guard():
            out = _graph().invoke(Command(resume=resume), _cfg(sid), durability="exit")
        return _after_turn(sid, out)


def stream_message(session_id: str, text: str) -> Iterator[StreamEvent]:
    """banner (if escalated) first, then the reply's tokens, then done (with the TurnReply)."""
    from langgraph.types import Command

    from chatdoc.dialogue.respond import reset_gen_stats

    try:
        sid = _check_id(session_id)
    except ServiceError as e:
        yield StreamEvent(kind="error", text=e.message, code=e.code)
        return
    with _slock(sid):
        try:
            sid, _st, resume = _prepare_turn(sid, text)
            reset_gen_stats()
            final: dict[str, Any] = {}
            for mode, data in _graph().stream(Command(resume=resume), _cfg(sid), stream_mode=["custom", "values"],
                                              durability="exit"):
                if mode == "custom":
                    if "banner" in data:
                        yield StreamEvent(kind="banner", text=data["banner"])
                    elif "token" in data:
                        yield StreamEvent(kind="token", text=data["token"])
                elif mode == "values":
                    final = data
            reply = _after_turn(sid, final)
        except ServiceError as e:
            yield StreamEvent(kind="error", text=e.message, code=e.code)
            return
        except Exception as e:
            if _is_storage_error(e):
                se = _storage_error(e)
                yield StreamEvent(kind="error", text=se.message, code=se.code)
                return
            raise
        yield StreamEvent(kind="done", text=reply.reply, reply=reply)


def end_consultation(session_id: str) -> Summary:
    """Close the consultation (advice if not yet given, summary) and return the staff + lay summary."""
    from langgraph.types import Command

    sid = _check_id(session_id)
    with _slock(sid):
        st = _snapshot(sid)
        if not st:
            raise ServiceError("not_found", "No consultation with that id (it may have been deleted or expired).")
        if st.get("phase") != "closed":
            with _storage_guard():
                st = _graph().invoke(Command(resume={"action": "end"}), _cfg(sid), durability="exit")
            _update_index(sid, st)
        summ = st.get("summary") or _build(st)
        return _store_summary(sid, summ, keep_review=True)


def get_state(session_id: str) -> ConsultationView:
    from chatdoc.memory import get_index

    sid = _check_id(session_id)
    st = _snapshot(sid)
    if not st:
        raise ServiceError("not_found", "No consultation with that id (it may have been deleted or expired).")
    with _storage_guard():
        meta = get_index().get(sid)
        rec = get_index().get_record(sid, "summary")
    return ConsultationView(
        session_id=sid, meta=meta.model_dump() if meta else None, phase=st.get("phase", "history"),
        persona=st.get("persona"), adapter=st.get("adapter"), transcript=list(st.get("messages", [])),
        history=dict(st.get("history") or {}), profile=dict(st.get("profile") or {}), triage=dict(st.get("triage") or {}),
        question_log=list(st.get("question_log", [])), crisis_pending=bool(st.get("crisis_pending")),
        flagged=bool(st.get("flagged")), summary=Summary(**rec) if rec else None,
    )


# ---------------------------------------------------------------------------------------------- summaries
def _build(st: dict[str, Any]) -> dict[str, Any]:
    from chatdoc.dialogue.summary import build_summary

    return build_summary(st)  # type: ignore[arg-type]


def _store_summary(sid: str, summ: dict[str, Any], keep_review: bool = True) -> Summary:
    from chatdoc.memory import get_index

    with _storage_guard():
        old = get_index().get_record(sid, "summary") if keep_review else None
        if old and old.get("edited"):
            return Summary(**old)  # a clinician's edit is never overwritten by a regenerated summary
        rec = Summary(structured=summ["structured"], text=summ["text"], lay_text=summ["lay_text"])
        get_index().put_record(sid, "summary", rec.model_dump())
    return rec


def summarize(session_id: str) -> Summary:
    """On demand, any time: rebuilt from the structured state (a clinician's edited version is kept)."""
    sid = _check_id(session_id)
    st = _snapshot(sid)
    if not st:
        raise ServiceError("not_found", "No consultation with that id (it may have been deleted or expired).")
    return _store_summary(sid, _build(st))


def summarize_transcript(text: str) -> Summary:
    """A summary of an external transcript ("Doctor:/Patient:" lines or "[doctor]/[patient]" tags). Not stored."""
    from chatdoc.dialogue.transcript import TranscriptError, summarize_transcript as _summ

    if not isinstance(text, str) or not text.strip():
        raise ServiceError("bad_input", "The transcript is empty.")
    try:
        s = _summ(text)
    except TranscriptError as e:
        raise ServiceError("bad_input", str(e)) from None
    return Summary(structured=s["structured"], text=s["text"], lay_text=s["lay_text"])


# ---------------------------------------------------------------------------------------------- staff
def list_consultations(status: str | None = None, triage: str | None = None, limit: int = 100) -> list:
    from chatdoc.memory import get_index

    _startup()
    try:
        return get_index().list(status=status, triage=triage, limit=limit)
    except ValueError as e:
        raise ServiceError("bad_input", str(e)) from None
    except Exception as e:
        if _is_storage_error(e):
            raise _storage_error(e) from None
        raise


def _summary_record(sid: str) -> dict[str, Any]:
    from chatdoc.memory import get_index

    rec = get_index().get_record(sid, "summary")
    if rec is None:
        st = _snapshot(sid)
        if not st:
            raise ServiceError("not_found", "No consultation with that id (it may have been deleted or expired).")
        rec = _store_summary(sid, _build(st)).model_dump()
    return rec


def update_summary(session_id: str, text: str, user: str) -> Summary:
    """A clinician's edited text (redacted with the session's placeholders); clears any approval."""
    from chatdoc.memory import get_index
    from chatdoc.privacy import PlaceholderState, get_redactor

    sid = _check_id(session_id)
    if not isinstance(text, str) or not text.strip():
        raise ServiceError("bad_input", "The summary text is empty.")
    if not user:
        raise ServiceError("forbidden", "A signed-in user is required to edit a summary.")
    with _storage_guard():
        rec = _summary_record(sid)
        st = _snapshot(sid)
        pstate = PlaceholderState.model_validate(st["privacy"]) if st.get("privacy") else None
        rec.update(text=get_redactor().redact(text, pstate).text, edited=True, approved_by=None, approved_at=None)
        rec["edited_by"], rec["edited_at"] = user, time.time()
        get_index().put_record(sid, "summary", rec)
        get_index().upsert(sid, approved_by=None, approved_at=None)
    return Summary(**{k: rec[k] for k in Summary.model_fields if k in rec})


def approve_summary(session_id: str, user: str) -> Summary:
    from chatdoc.memory import get_index

    sid = _check_id(session_id)
    if not user:
        raise ServiceError("forbidden", "A signed-in user is required to approve a summary.")
    with _storage_guard():
        rec = _summary_record(sid)
        now = time.time()
        rec.update(approved_by=user, approved_at=now)
        get_index().put_record(sid, "summary", rec)
        get_index().upsert(sid, approved_by=user, approved_at=now)
    return Summary(**{k: rec[k] for k in Summary.model_fields if k in rec})


# Markdown export. Patient text is data: it can never create structure (a heading, list, quote, table, setext
# underline, HTML, link/image, fence) or an "Approved by"/"Doctor:" line. Every message is a block quote whose lines
# are escaped (each Markdown control character backslash-escaped, lines starting with a role or approval marker quoted
# as the speaker's words); the staff summary is a fenced block whose fence is longer than any backtick run inside.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&^])")


def _md(text: Any) -> str:
    """Inline Markdown for one line: whitespace (every line break included) collapsed, control characters escaped
    (and a leading ``=``, which would make the line above a setext heading)."""
    line = _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
    return "\\" + line if line.startswith("=") else line


def _md_quote(text: str, speaker: str) -> list[str]:
    """``text`` as a Markdown block quote of ``speaker``'s words: one escaped line per line, hard breaks between."""
    from chatdoc.llm.prompt import neutralise_roles

    lines = [_md(ln) for ln in neutralise_roles(str(text), speaker).split("\n")] or [""]
    return [f"> {ln}  " if i < len(lines) - 1 else f"> {ln}" for i, ln in enumerate(lines)]


def _md_fence(text: str) -> list[str]:
    """``text`` verbatim in a fenced code block that nothing inside can close (fence longer than any backtick run)."""
    from chatdoc.llm.prompt import LINE_BREAK

    body = LINE_BREAK.sub("\n", text)
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", body)), default=0))
    return [fence, *body.split("\n"), fence]


def export_consultation(session_id: str, fmt: Literal["json", "markdown"] = "json") -> str:
    if fmt not in ("json", "markdown"):
        raise ServiceError("bad_input", "Export format must be json or markdown.")
    view = get_state(session_id)
    summ = view.summary or Summary(**_build(_snapshot(view.session_id)))
    if fmt == "json":
        return json.dumps({"consultation": view.model_dump(exclude={"summary"}), "summary": summ.model_dump()},
                          indent=2, ensure_ascii=False, default=str)
    lines = [f"# Consultation {view.session_id}", "",
             f"- Phase: {_md(view.phase)}", f"- Triage: {_md(view.triage.get('level', 'unknown'))}",
             f"- Persona: {_md(view.persona)}", "", "## Transcript", ""]
    for m in view.transcript:
        who = "Patient" if m["role"] == "patient" else "Assistant"
        lines += [f"**{who}:**", "", *_md_quote(m.get("text", ""), who), ""]
    lines += ["## Summary", "", *_md_fence(summ.text), "", "## Lay summary", "", *_md_quote(summ.lay_text, "Summary")]
    if summ.approved_by:
        lines += ["", f"Approved by {_md(summ.approved_by)}"]
    return "\n".join(lines) + "\n"


def delete_consultation(session_id: str) -> int:
    """Erasure: every key of the consultation removed; returns the count (0 when already gone)."""
    from chatdoc.memory import delete_session

    sid = _check_id(session_id)
    with _lock:
        _pending.pop(sid, None)
    with _storage_guard():
        return delete_session(sid)


# ---------------------------------------------------------------------------------------------- researchers
def list_adapters() -> list[dict]:
    from chatdoc.llm import get_backend

    return get_backend().list_adapters()


def activate_adapter(name: str | None) -> dict:
    """The default adapter for NEW consultations (None = base model)."""
    global _default_adapter
    from chatdoc.llm import AdapterError, get_backend

    try:
        get_backend().activate_adapter(name)
    except AdapterError as e:
        raise ServiceError("adapter", str(e)) from None
    _default_adapter = name
    return {"active": name}


def compare(messages: list[str], adapters: list[str | None], persona: str | None = None) -> Comparison:
    """The same scripted patient messages answered by the base model (None) and each adapter, each in a
    throw-away in-memory graph (nothing stored). Model wording is on for the comparison."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    from chatdoc.config import get_settings
    from chatdoc.dialogue.graph import build_graph
    from chatdoc.dialogue.respond import gen_stats, reset_gen_stats
    from chatdoc.dialogue.state import new_state
    from chatdoc.llm import AdapterError
    from chatdoc.privacy import PlaceholderState, get_redactor

    if not messages or not all(isinstance(m, str) and m.strip() for m in messages):
        raise ServiceError("bad_input", "Give at least one non-empty patient message.")
    if not adapters:
        adapters = [None]
    name = _persona_info(persona).name
    pstate = PlaceholderState.new()
    red: list[str] = []
    for m in messages:
        r = get_redactor().redact(m, pstate)
        pstate = r.state
        red.append(r.text)
    rows = []
    s = get_settings()
    old = s.dialogue.use_model_wording
    s.dialogue.use_model_wording = True
    try:
        for ad in adapters:
            graph = build_graph().compile(checkpointer=InMemorySaver())
            cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
            replies, timings = [], []
            graph.invoke(new_state("compare", name, ad, PlaceholderState.new().model_dump()), cfg)
            for text in red:
                reset_gen_stats()
                t0 = time.perf_counter()
                try:
                    out = graph.invoke(Command(resume={"text": text}), cfg)
                except AdapterError as e:
                    raise ServiceError("adapter", str(e)) from None
                replies.append({"text": out["reply"].get("text", ""), "source": out["reply"].get("source"),
                                "banner": out["reply"].get("banner")})
                timings.append({"total_s": time.perf_counter() - t0, **gen_stats()})
            rows.append({"adapter": ad, "replies": replies, "timings": timings})
    finally:
        s.dialogue.use_model_wording = old
    return Comparison(id=uuid.uuid4().hex, messages=red, persona=name, rows=rows)


def save_comparison(comparison: Comparison) -> str:
    """Stored as a record under its own id (kind ``comparison``); returns that id."""
    from chatdoc.memory import get_index, new_session_id

    rid = new_session_id()
    with _storage_guard():
        get_index().put_record(rid, "comparison", comparison.model_dump())
    return rid


def list_personas() -> list[PersonaInfo]:
    from chatdoc.dialogue.personas import list_personas as _lp

    return [PersonaInfo(name=p.name, display_name=p.display_name, description=p.description) for p in _lp()]
