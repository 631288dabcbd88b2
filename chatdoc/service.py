"""``chatdoc.service`` — the one service the UI, CLI and evaluation call (contract: docs/SERVICE_API.md).

``build_service()`` is the composition root: it makes ONE :class:`Consultations` per process (``app.py``,
the CLI, a test) that holds the graph, the model backend and all process state (per-session locks,
pre-consent sessions, the adapter for new consultations). Nothing here is a module global.

Privacy at the door: patient text is redacted once, with the session's ``PlaceholderState``, before it is
passed to the graph as the ``Command(resume=...)`` value (LangGraph stores resume values in the
checkpointer), so nothing raw is stored, logged or sent to the model.

Per-run options travel in the graph's context (:class:`chatdoc.dialogue.context.RunContext`), never in
the process-wide settings: a researcher's comparison words questions with the model while patients'
turns in the same process keep the configured wording.

Consent: ``start_consultation`` only creates an id and keeps the choice of persona/adapter in this
object's memory; nothing is written to Redis until ``record_consent``. ``record_consent`` also accepts a
well-formed id this process never saw (a CLI run in another process), with an optional
``persona``/``adapter`` keyword.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from chatdoc.dialogue.state import ReplyPart
from chatdoc.domain import Level, Phase, RedFlag, is_valid_session_id, new_session_id
from chatdoc.log import logger

if TYPE_CHECKING:
    from chatdoc.config import Settings
    from chatdoc.llm.backend import Backend, StreamHandle
    from chatdoc.memory import SessionMeta
    from chatdoc.safety.triage import TriageResult

PENDING_TTL_S = 3600.0  # an unconsented session is forgotten after an hour
PENDING_MAX = 10_000  # and at most this many are kept (oldest dropped first)
NOT_FOUND = "No consultation with that id (it may have been deleted or expired)."


# ---------------------------------------------------------------------------------------------- results
class ServiceError(Exception):
    """A person-caused or environmental error with a readable message (never a traceback).

    ``code``: bad_input, not_found, no_consent, storage_unavailable, model_unavailable, adapter, forbidden, config.
    """

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
    source: Literal["model", "template"] = "template"  # who worded the reply (model wording passed the guard)
    parts: list[ReplyPart] = []  # the reply's checked parts: acknowledgement, answers (with their source), question ...


class StreamEvent(BaseModel):
    kind: Literal["queue", "banner", "token", "done", "error"]  # queue: waiting for the model (text: the note)
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
    transcript: list[dict[str, str]]  # {"role": "patient" | "doctor", "text": redacted}
    history: dict[str, Any]
    profile: dict[str, Any]
    triage: dict[str, Any]  # {"level", "red_flags", "crisis", "crisis_kind"}
    question_log: list[dict[str, Any]]
    crisis_pending: bool = False
    flagged: bool = False
    summary: Summary | None = None


class CompareReply(BaseModel):
    text: str
    source: str | None = None
    banner: str | None = None
    parts: list[ReplyPart] = []  # which parts the model worded and which checks rejected its attempts


def model_part_counts(replies: list[CompareReply]) -> tuple[int, int]:
    """(model parts used, model parts attempted) over ``replies``: acknowledgements, questions, grounded answers.
    An attempt is a part the model worded, or one whose template replaced a rejected model output."""
    from chatdoc.dialogue.respond import NOT_TRIED

    used = tried = 0
    for r in replies:
        for p in r.parts:
            if p.get("kind") not in ("ack", "question", "answer"):
                continue
            rejected = [x for x in p.get("reasons") or [] if x not in NOT_TRIED]
            if p.get("source") == "model" or rejected:
                tried += 1
                used += p.get("source") == "model"
    return used, tried


class CompareRow(BaseModel):
    adapter: str | None
    replies: list[CompareReply] = []
    timings: list[dict[str, float]] = []  # total_s, gen_s, gen_calls, gen_tokens per message


class Comparison(BaseModel):
    id: str
    messages: list[str] = []  # redacted
    persona: str | None = None
    created_at: float = Field(default_factory=time.time)
    rows: list[CompareRow] = []


# ---------------------------------------------------------------------------------------------- helpers
def _is_storage_error(e: BaseException) -> bool:
    import redis

    from chatdoc.memory import StorageUnavailable

    return isinstance(e, (StorageUnavailable, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                          ConnectionError, TimeoutError))


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


def _check_id(session_id: Any) -> str:
    if not is_valid_session_id(session_id):
        raise ServiceError("bad_input", "That is not a valid consultation id.")
    return session_id


def _cfg(sid: str) -> dict:
    return {"configurable": {"thread_id": sid}}


def _reply_from(sid: str, st: dict[str, Any]) -> TurnReply:
    tri = st.get("triage") or {}
    rep = st.get("reply") or {}
    return TurnReply(
        session_id=sid, reply=rep.get("text", ""), phase=st.get("phase", "history"),
        triage_level=tri.get("level") or "unknown", red_flags=list(tri.get("red_flags", [])),
        crisis=bool(tri.get("crisis")), banner=rep.get("banner"), questions_asked=len(st.get("question_log", [])),
        done=st.get("phase") == "closed", source=rep.get("source") or "template", parts=list(rep.get("parts") or []),
    )


def _build_summary(st: dict[str, Any]) -> dict[str, Any]:
    from chatdoc.dialogue.summary import build_summary

    return build_summary(st)  # type: ignore[arg-type]


def _summary_of(rec: dict[str, Any]) -> Summary:
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


# ---------------------------------------------------------------------------------------------- model concurrency
QUEUE_WAIT_S = 20.0  # longest a turn waits for a free model slot; then the template words the question
QUEUE_NOTE = "You're in a queue (position {n}): the assistant is busy with other patients. Your answer is saved."


def _model_busy(wait_s: float):
    """``EngineUnavailable`` (imported on use) for a turn that waited ``wait_s`` for a slot: the template words it."""
    from chatdoc.llm import EngineUnavailable

    e = EngineUnavailable(f"all model slots busy for {wait_s:.1f} s")
    e.reason = "model_busy"
    return e


class GenerationGate:
    """At most ``limit`` model generations at once in this process (``ui.concurrency_limit``); the others wait in
    arrival order (FIFO), each for at most ``wait_s``. ``position(key)``: a waiting turn's place in the queue."""

    def __init__(self, limit: int, wait_s: float = QUEUE_WAIT_S):
        self.limit = max(1, int(limit))
        self.wait_s = wait_s
        self._cond = threading.Condition()
        self._running = 0
        self._waiting: list[list[Any]] = []  # tickets [key] in arrival order

    def acquire(self, key: Any = None, timeout: float | None = None) -> bool:
        timeout = self.wait_s if timeout is None else timeout
        with self._cond:
            if self._running < self.limit and not self._waiting:
                self._running += 1
                return True
            ticket = [key]
            self._waiting.append(ticket)
            deadline = time.monotonic() + timeout
            try:
                while not (self._running < self.limit and self._waiting[0] is ticket):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                self._running += 1
                return True
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._running = max(0, self._running - 1)
            self._cond.notify_all()

    @contextmanager
    def slot(self, key: Any = None):
        """A generation slot for the block; ``EngineUnavailable`` (reason ``model_busy``) after ``wait_s``."""
        if not self.acquire(key):
            raise _model_busy(self.wait_s)
        try:
            yield
        finally:
            self.release()

    def position(self, key: Any) -> int:
        """1-based place of ``key``'s turn in the queue; 0 when it is not waiting."""
        with self._cond:
            return next((i + 1 for i, t in enumerate(self._waiting) if t[0] == key), 0)

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"limit": self.limit, "running": self._running, "waiting": len(self._waiting)}


class _GatedBackend:
    """The backend as the consultation graph sees it: ``generate`` holds a :class:`GenerationGate` slot (the turn
    of session ``key`` waits its turn); everything else is the backend's own."""

    def __init__(self, backend: Backend, gate: GenerationGate, key: Any = None):
        self._backend, self._gate, self._key = backend, gate, key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def generate(self, request, cancel=None):
        """One generation in a gate slot; ``cancel`` (a threading.Event) stops it early (the turn's time budget)."""
        with self._gate.slot(self._key):
            if cancel is None or not hasattr(self._backend, "stream"):
                return self._backend.generate(request)
            h = self._backend.stream(request, cancel)
            for _ in h:
                pass
            return h.result


# ---------------------------------------------------------------------------------------------- the service
class Consultations:
    """Consultations, summaries, staff actions, adapters and comparisons: every capability of chatdoc.

    Build one per process with :func:`build_service`. ``settings``: None = the process settings
    (``get_settings()``, read when used). ``backend``: the model backend (loaded on first use when not
    given; a test may pass a stand-in).
    """

    def __init__(self, settings: Settings | None = None, *, backend: Backend | None = None):
        self._settings = settings
        self._backend = backend
        self._lock = threading.Lock()
        self._session_locks: dict[str, threading.Lock] = {}
        self._pending: dict[str, dict[str, Any]] = {}  # pre-consent sessions: in memory only
        self.pending_ttl_s = PENDING_TTL_S
        self.pending_max = PENDING_MAX
        self._default_adapter: Any = ...  # ... = settings.adapters.active until activate_adapter() is called
        self._started = False
        self._graph_on: tuple[Any, Any] | None = None  # (checkpointer, compiled graph on it)
        self._gate: GenerationGate | None = None  # bounds concurrent model generations (ui.concurrency_limit)
        self.queue_wait_s = QUEUE_WAIT_S

    # ------------------------------------------------------------------------------------------ parts
    @property
    def settings(self) -> Settings:
        if self._settings is not None:
            return self._settings
        from chatdoc.config import get_settings

        return get_settings()

    @property
    def backend(self) -> Backend:
        """The model backend, loaded on first use."""
        if self._backend is None:
            from chatdoc.llm import ModelNotFoundError, get_backend

            try:
                self._backend = get_backend(self.settings)
            except ModelNotFoundError as e:
                raise ServiceError("model_unavailable", str(e)) from None
        return self._backend

    def warm_up(self) -> None:
        """Load the turn analysis (spaCy, HPO, the embedding model) and the model now: the web app calls this in
        the background so the first patient turn and the first comparison are quick."""
        from chatdoc.clinical.analyse import analyse_turn

        analyse_turn("I have had a headache since yesterday", 0)
        _ = self.backend

    def _graph(self):
        """The consultation graph on the Redis checkpointer (rebuilt when the connection was reset)."""
        from chatdoc.dialogue.graph import build_graph
        from chatdoc.memory import get_checkpointer

        with _storage_guard():
            saver = get_checkpointer()
        with self._lock:
            if self._graph_on is None or self._graph_on[0] is not saver:
                self._graph_on = (saver, build_graph(saver))
            return self._graph_on[1]

    @property
    def gate(self) -> GenerationGate:
        """At most ``ui.concurrency_limit`` model generations at once in this process; the rest queue (FIFO)."""
        if self._gate is None:
            with self._lock:
                if self._gate is None:
                    self._gate = GenerationGate(self.settings.ui.concurrency_limit, self.queue_wait_s)
        return self._gate

    def _context(self, model_wording: bool | None = None, key: Any = None):
        """This run's options: model wording as configured (read per turn) unless asked for. The model is reached
        through the generation gate (``key``: whose turn waits, for its queue position)."""
        from chatdoc.dialogue.context import RunContext

        d = self.settings.dialogue
        wording = d.use_model_wording if model_wording is None else model_wording
        return RunContext(model_wording=wording, backend=_GatedBackend(self.backend, self.gate, key) if wording else None,
                          model_budget_s=d.model_budget_s, answer_questions=d.answer_questions,
                          knowledge_answers=d.knowledge_answers, acknowledge=d.acknowledge)

    def _run(self, value: Any, sid: str, model_wording: bool | None = None,
             on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Run the graph to its next stop. ``on_event`` receives the reply as it is produced (``{"banner": ...}``,
        ``{"token": ...}``: each part once it passed its checks)."""
        with _storage_guard():
            ctx = self._context(model_wording, sid)
            if on_event is None:
                return self._graph().invoke(value, _cfg(sid), context=ctx, durability="exit")
            final: dict[str, Any] = {}
            for mode, chunk in self._graph().stream(value, _cfg(sid), context=ctx, durability="exit",
                                                    stream_mode=["custom", "values"]):
                if mode == "custom":
                    on_event(chunk)
                else:
                    final = chunk
            return final

    def _startup(self) -> None:
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            from chatdoc.memory import start_maintenance, sweep_expired
            from chatdoc.privacy import install_log_scrubber

            install_log_scrubber()
            try:
                n = sweep_expired()  # also the scheduled AOF rewrite (redis.aof_rewrite_hours), when due
                if n:
                    logger.info("retention sweep removed {} keys", n)
            except Exception as e:  # Redis may be down at start-up; consultations report it per call
                logger.warning("retention sweep skipped: {}", type(e).__name__)
            start_maintenance()  # the same sweep hourly, for a server that runs for days
            if self.settings.dialogue.knowledge_answers:
                from chatdoc.knowledge import configure, get_index

                configure(self.settings.data_path / "knowledge")  # question vectors memoised on disk
                threading.Thread(target=get_index, name="chatdoc-knowledge", daemon=True).start()  # BM25, ~5 s
            self._started = True

    def _slock(self, sid: str) -> threading.Lock:
        with self._lock:
            return self._session_locks.setdefault(sid, threading.Lock())

    def _snapshot(self, sid: str) -> dict[str, Any]:
        """The session's checkpoint ({} when there is none)."""
        with _storage_guard():
            snap = self._graph().get_state(_cfg(sid))
        return dict(snap.values or {})

    def _existing(self, sid: str) -> dict[str, Any]:
        st = self._snapshot(sid)
        if not st:
            raise ServiceError("not_found", NOT_FOUND)
        return st

    @staticmethod
    def _index():
        from chatdoc.memory import get_index

        return get_index()

    def _persona_info(self, name: str | None) -> PersonaInfo:
        from chatdoc.dialogue.personas import PersonaError, get_persona

        try:
            p = get_persona(name)
        except PersonaError as e:
            raise ServiceError("bad_input", str(e)) from None
        return PersonaInfo(name=p.name, display_name=p.display_name, description=p.description)

    def _resolve_adapter(self, adapter: Any) -> str | None:
        """``...`` = the adapter for new consultations (activate_adapter's choice, else the configured one if present)."""
        if adapter is not ...:
            return adapter
        if self._default_adapter is not ...:
            return self._default_adapter
        name = self.settings.adapters.active
        if name:
            from chatdoc.llm.adapters import AdapterError, adapter_dir

            try:  # a configured adapter that is not there: new consultations use the base model (logged)
                adapter_dir(self.settings.path(self.settings.adapters.dir), name)
            except AdapterError as e:
                logger.warning("configured adapter not used for new consultations: {}", e)
                return None
        return name

    def _prune_pending(self) -> None:
        """Bound the in-memory pre-consent sessions (every page load creates one). Caller holds _lock."""
        cutoff = time.time() - self.pending_ttl_s
        for sid in [k for k, v in self._pending.items() if v["created"] < cutoff]:
            del self._pending[sid]
        while self._pending and len(self._pending) >= self.pending_max:
            del self._pending[next(iter(self._pending))]

    def _update_index(self, sid: str, st: dict[str, Any]) -> None:
        """Keep the staff list current; best effort after the checkpoint succeeded (the index is derived data)."""
        tri = st.get("triage") or {}
        fields = dict(status=st.get("phase", "history"), triage_level=tri.get("level") or "unknown",
                      flagged=bool(st.get("flagged")), persona=st.get("persona"), adapter=st.get("adapter"),
                      title=(st.get("history") or {}).get("chief_complaint") or "")
        for attempt in (1, 2):
            try:
                self._index().upsert(sid, **fields)
                return
            except Exception as e:
                if not _is_storage_error(e) or attempt == 2:
                    logger.warning("index update failed for a session: {}", type(e).__name__)
                    return
                time.sleep(0.2)

    # ------------------------------------------------------------------------------------------ consultations
    def consent_text(self) -> str:
        """What the assistant is and is not, what is stored and for how long (reviewed text: configs/texts.yaml)."""
        from chatdoc.texts import TextsError, text

        try:
            return text("consent", days=self.settings.redis.ttl_days)
        except TextsError as e:
            raise ServiceError("config", str(e)) from None

    def start_consultation(self, persona: str | None = None, adapter: Any = ...) -> SessionStart:
        """A new session id and the consent text. Nothing is stored until :meth:`record_consent`."""
        self._startup()
        info = self._persona_info(persona)
        sid = new_session_id()
        with self._lock:
            self._prune_pending()
            self._pending[sid] = {"persona": info.name, "adapter": self._resolve_adapter(adapter), "created": time.time()}
        return SessionStart(session_id=sid, persona=info, consent_text=self.consent_text())

    def record_consent(self, session_id: str, *, persona: str | None = None, adapter: Any = ...) -> TurnReply:
        """Idempotent: stores the session and returns the greeting (or the latest reply if already started)."""
        from chatdoc.dialogue.state import new_state
        from chatdoc.privacy import PlaceholderState

        self._startup()
        sid = _check_id(session_id)
        with self._slock(sid):
            st = self._snapshot(sid)
            if st:
                return _reply_from(sid, st)
            with self._lock:
                pend = self._pending.get(sid) or {}
            name = self._persona_info(persona or pend.get("persona")).name
            ad = pend.get("adapter") if adapter is ... and pend else self._resolve_adapter(adapter)
            out = self._run(new_state(sid, name, ad, PlaceholderState.new().model_dump()), sid)
            with _storage_guard():
                self._index().put_record(sid, "consent", {"given_at": time.time(), "text_version": 1})
            with self._lock:
                self._pending.pop(sid, None)
            self._update_index(sid, out)
            return _reply_from(sid, out)

    def _turn(self, session_id: str, text: Any, on_event: Callable[[dict[str, Any]], None] | None = None) -> TurnReply:
        """One patient turn: check, read the checkpoint once, redact once, run the graph once, index."""
        from langgraph.types import Command

        from chatdoc.dialogue.respond import reset_gen_stats
        from chatdoc.privacy import PlaceholderState, get_redactor

        self._startup()
        sid = _check_id(session_id)
        if not isinstance(text, str) or not text.strip():
            raise ServiceError("bad_input", "Please type a message.")
        limit = self.settings.ui.max_message_chars
        if len(text) > limit:
            raise ServiceError("bad_input", f"That message is too long (at most {limit} characters).")
        with self._slock(sid):
            st = self._snapshot(sid)
            if not st:
                with self._lock:
                    known = sid in self._pending
                if known:
                    raise ServiceError("no_consent", "Please agree to the consent statement before we start.")
                raise ServiceError("not_found", NOT_FOUND)
            if st.get("phase") == "closed":
                raise ServiceError("bad_input", "This consultation has ended; please start a new one.")
            # redacted BEFORE it enters the graph: LangGraph stores resume values in the checkpointer
            red = get_redactor().redact(text, PlaceholderState.model_validate(st["privacy"]))
            reset_gen_stats()
            out = self._run(Command(resume={"text": red.text, "privacy": red.state.model_dump()}), sid, on_event=on_event)
            self._update_index(sid, out)
            if out.get("phase") == "closed" and out.get("summary"):
                self._store_summary(sid, out["summary"])
            return _reply_from(sid, out)

    def send_message(self, session_id: str, text: str) -> TurnReply:
        """One patient turn through the graph."""
        return self._turn(session_id, text)

    def stream_message(self, session_id: str, text: str) -> Iterator[StreamEvent]:
        """``banner`` (when escalated) first, then the reply part by part as each passes its checks (the
        acknowledgement, an answer, the next question: ``token`` events, to be appended), then ``done`` with the
        TurnReply. While the turn waits for a model slot: ``queue`` events with its position. Errors a person can
        act on come as one ``error`` event (never an exception)."""
        try:
            reply = yield from self._turn_streaming(session_id, text)
        except ServiceError as e:
            yield StreamEvent(kind="error", text=e.message, code=e.code)
            return
        yield StreamEvent(kind="done", text=reply.reply, reply=reply)

    def _turn_streaming(self, sid: str, text: Any):
        """The turn in a worker thread, its reply events passed on as they come. The turn completes even if the
        caller stops listening (a closed browser tab loses no turn)."""
        import queue

        box: dict[str, Any] = {}
        events: queue.Queue = queue.Queue()
        done = threading.Event()

        def work() -> None:
            try:
                box["reply"] = self._turn(sid, text, on_event=events.put)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = e
            finally:
                done.set()
                events.put(None)

        threading.Thread(target=work, name="chatdoc-turn", daemon=True).start()
        shown = 0
        while True:
            try:
                ev = events.get(timeout=0.2)
            except queue.Empty:
                n = self.gate.position(sid) if is_valid_session_id(sid) else 0
                if n and n != shown:
                    shown = n
                    yield StreamEvent(kind="queue", text=QUEUE_NOTE.format(n=n))
                continue
            if ev is None:
                break
            if ev.get("banner"):
                yield StreamEvent(kind="banner", text=ev["banner"])
            elif ev.get("token"):
                yield StreamEvent(kind="token", text=ev["token"])
        if "error" in box:
            raise box["error"]
        return box["reply"]

    def end_consultation(self, session_id: str) -> Summary:
        """Close the consultation (advice if not yet given, summary) and return the staff + lay summary."""
        from langgraph.types import Command

        sid = _check_id(session_id)
        with self._slock(sid):
            st = self._existing(sid)
            if st.get("phase") != "closed":
                st = self._run(Command(resume={"action": "end"}), sid)
                self._update_index(sid, st)
            return self._store_summary(sid, st.get("summary") or _build_summary(st), keep_review=True)

    def get_state(self, session_id: str) -> ConsultationView:
        sid = _check_id(session_id)
        st = self._existing(sid)
        with _storage_guard():
            meta = self._index().get(sid)
            rec = self._index().get_record(sid, "summary")
        return ConsultationView(
            session_id=sid, meta=meta.model_dump() if meta else None, phase=st.get("phase", "history"),
            persona=st.get("persona"), adapter=st.get("adapter"), transcript=list(st.get("messages", [])),
            history=dict(st.get("history") or {}), profile=dict(st.get("profile") or {}),
            triage=dict(st.get("triage") or {}), question_log=list(st.get("question_log", [])),
            crisis_pending=bool(st.get("crisis_pending")), flagged=bool(st.get("flagged")),
            summary=Summary(**rec) if rec else None,
        )

    # ------------------------------------------------------------------------------------------ summaries
    def _store_summary(self, sid: str, summ: dict[str, Any], keep_review: bool = True) -> Summary:
        with _storage_guard():
            old = self._index().get_record(sid, "summary") if keep_review else None
            if old and old.get("edited"):
                return Summary(**old)  # a clinician's edit is never overwritten by a regenerated summary
            rec = Summary(structured=summ["structured"], text=summ["text"], lay_text=summ["lay_text"])
            self._index().put_record(sid, "summary", rec.model_dump())
        return rec

    def summarize(self, session_id: str) -> Summary:
        """On demand, any time: rebuilt from the structured state (a clinician's edited version is kept)."""
        sid = _check_id(session_id)
        return self._store_summary(sid, _build_summary(self._existing(sid)))

    def summarize_transcript(self, text: str) -> Summary:
        """A summary of an external transcript ("Doctor:/Patient:" lines or "[doctor]/[patient]" tags). Not stored."""
        from chatdoc.dialogue.transcript import TranscriptError, summarize_transcript

        if not isinstance(text, str) or not text.strip():
            raise ServiceError("bad_input", "The transcript is empty.")
        try:
            s = summarize_transcript(text)
        except TranscriptError as e:
            raise ServiceError("bad_input", str(e)) from None
        return Summary(structured=s["structured"], text=s["text"], lay_text=s["lay_text"])

    # ------------------------------------------------------------------------------------------ staff
    def list_consultations(self, status: str | None = None, triage: str | None = None,
                           limit: int = 100) -> list[SessionMeta]:
        """Sorted by urgency, then most recently updated."""
        self._startup()
        try:
            with _storage_guard():
                return self._index().list(status=status, triage=triage, limit=limit)
        except ValueError as e:
            raise ServiceError("bad_input", str(e)) from None

    def _summary_record(self, sid: str) -> dict[str, Any]:
        rec = self._index().get_record(sid, "summary")
        if rec is None:
            rec = self._store_summary(sid, _build_summary(self._existing(sid))).model_dump()
        return rec

    def update_summary(self, session_id: str, text: str, user: str) -> Summary:
        """A clinician's edited text (redacted with the session's placeholders); clears any approval."""
        from chatdoc.privacy import PlaceholderState, get_redactor

        sid = _check_id(session_id)
        if not isinstance(text, str) or not text.strip():
            raise ServiceError("bad_input", "The summary text is empty.")
        if not user:
            raise ServiceError("forbidden", "A signed-in user is required to edit a summary.")
        with _storage_guard():
            rec = self._summary_record(sid)
            st = self._snapshot(sid)
            pstate = PlaceholderState.model_validate(st["privacy"]) if st.get("privacy") else None
            rec.update(text=get_redactor().redact(text, pstate).text, edited=True, approved_by=None, approved_at=None)
            rec["edited_by"], rec["edited_at"] = user, time.time()
            self._index().put_record(sid, "summary", rec)
            self._index().upsert(sid, approved_by=None, approved_at=None)
        return _summary_of(rec)

    def approve_summary(self, session_id: str, user: str) -> Summary:
        sid = _check_id(session_id)
        if not user:
            raise ServiceError("forbidden", "A signed-in user is required to approve a summary.")
        with _storage_guard():
            rec = self._summary_record(sid)
            now = time.time()
            rec.update(approved_by=user, approved_at=now)
            self._index().put_record(sid, "summary", rec)
            self._index().upsert(sid, approved_by=user, approved_at=now)
        return _summary_of(rec)

    def export_consultation(self, session_id: str, fmt: Literal["json", "markdown"] = "json") -> str:
        if fmt not in ("json", "markdown"):
            raise ServiceError("bad_input", "Export format must be json or markdown.")
        view = self.get_state(session_id)
        summ = view.summary or Summary(**_build_summary(self._snapshot(view.session_id)))
        if fmt == "json":
            return json.dumps({"consultation": view.model_dump(exclude={"summary"}), "summary": summ.model_dump()},
                              indent=2, ensure_ascii=False, default=str)
        lines = [f"# Consultation {view.session_id}", "",
                 f"- Phase: {_md(view.phase)}", f"- Triage: {_md(view.triage.get('level', 'unknown'))}",
                 f"- Persona: {_md(view.persona)}", "", "## Transcript", ""]
        for m in view.transcript:
            who = "Patient" if m["role"] == "patient" else "Assistant"
            lines += [f"**{who}:**", "", *_md_quote(m.get("text", ""), who), ""]
        lines += ["## Summary", "", *_md_fence(summ.text), "", "## Lay summary", "",
                  *_md_quote(summ.lay_text, "Summary")]
        if summ.approved_by:
            lines += ["", f"Approved by {_md(summ.approved_by)}"]
        return "\n".join(lines) + "\n"

    def delete_consultation(self, session_id: str) -> int:
        """Erasure: every key of the consultation removed; returns the count (0 when already gone)."""
        from chatdoc.memory import delete_session

        sid = _check_id(session_id)
        with self._lock:
            self._pending.pop(sid, None)
        with _storage_guard():
            return delete_session(sid)

    # ------------------------------------------------------------------------------------------ researchers
    def list_adapters(self, *, load_model: bool = True) -> list[dict]:
        """name, path, card, ok (+ error), active, and with the model loaded: loaded, compatible (with the base).

        ``load_model=False`` reads the adapters directory only (quick, for the CLI); ``active`` then marks
        the adapter new consultations use.
        """
        if load_model or self._backend is not None:
            return self.backend.list_adapters()
        from chatdoc.llm.adapters import list_adapters

        active = self._resolve_adapter(...)
        return [{**a, "active": a["name"] == active} for a in list_adapters(self.settings.path(self.settings.adapters.dir))]

    def adapter_card(self, name: str) -> dict[str, Any]:
        """One adapter's card, its LoRA settings and its path (no model needed)."""
        from chatdoc.llm.adapters import AdapterError, adapter_dir, check_files, read_card

        try:
            d = adapter_dir(self.settings.path(self.settings.adapters.dir), name)
            card = read_card(d)
            cfg = check_files(d)
        except AdapterError as e:
            raise ServiceError("adapter", str(e)) from None
        out = card.model_dump()
        out["lora"] = {k: cfg.get(k) for k in ("r", "lora_alpha", "lora_dropout", "target_modules")}
        out["path"] = str(d)
        return out

    def activate_adapter(self, name: str | None) -> dict:
        """The default adapter for NEW consultations (None = base model)."""
        from chatdoc.llm import AdapterError

        try:
            self.backend.activate_adapter(name)
        except AdapterError as e:
            raise ServiceError("adapter", str(e)) from None
        self._default_adapter = name
        return {"active": name}

    def model_info(self) -> dict[str, Any]:
        """Base model, source, cache path, quantization in effect, device, parameters, memory, adapter."""
        return self.backend.info()

    def generate(self, prompt: str, adapter: str | None | Any = ..., max_new_tokens: int | None = None,
                 greedy: bool | None = None) -> StreamHandle:
        """Raw generation: iterate for the text pieces; ``.result`` (GenerationResult) is set when it ends.

        ``adapter``: ``...`` = the backend's active adapter, None = the base model.
        """
        from chatdoc.llm import AdapterError, GenerationRequest

        if not isinstance(prompt, str) or not prompt.strip():
            raise ServiceError("bad_input", "The prompt is empty.")
        try:
            return self.backend.stream(GenerationRequest(prompt=prompt, max_new_tokens=max_new_tokens, greedy=greedy,
                                                         adapter=adapter))
        except AdapterError as e:
            raise ServiceError("adapter", str(e)) from None

    def compare(self, messages: list[str], adapters: list[str | None], persona: str | None = None) -> Comparison:
        """The same scripted patient messages answered by the base model (None) and each adapter, each in a
        throw-away in-memory graph (nothing stored), with model wording on for these runs only."""
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.types import Command

        from chatdoc.dialogue.graph import build_graph
        from chatdoc.dialogue.respond import gen_stats, reset_gen_stats
        from chatdoc.dialogue.state import new_state
        from chatdoc.llm import AdapterError
        from chatdoc.privacy import PlaceholderState, get_redactor

        if not messages or not all(isinstance(m, str) and m.strip() for m in messages):
            raise ServiceError("bad_input", "Give at least one non-empty patient message.")
        name = self._persona_info(persona).name
        pstate = PlaceholderState.new()
        red: list[str] = []
        for m in messages:
            r = get_redactor().redact(m, pstate)
            pstate = r.state
            red.append(r.text)
        ctx = self._context(model_wording=True)
        rows = []
        for ad in adapters or [None]:
            graph = build_graph(InMemorySaver())
            cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
            row = CompareRow(adapter=ad)
            graph.invoke(new_state("compare", name, ad, PlaceholderState.new().model_dump()), cfg, context=ctx)
            for text in red:
                reset_gen_stats()
                t0 = time.perf_counter()
                try:
                    out = graph.invoke(Command(resume={"text": text}), cfg, context=ctx)
                except AdapterError as e:
                    raise ServiceError("adapter", str(e)) from None
                rep = out["reply"]
                row.replies.append(CompareReply(text=rep.get("text", ""), source=rep.get("source"),
                                                banner=rep.get("banner"), parts=list(rep.get("parts") or [])))
                row.timings.append({"total_s": time.perf_counter() - t0, **gen_stats()})
            rows.append(row)
        return Comparison(id=uuid.uuid4().hex, messages=red, persona=name, rows=rows)

    def save_comparison(self, comparison: Comparison) -> str:
        """Stored as a record under its own id (kind ``comparison``); returns that id."""
        rid = new_session_id()
        with _storage_guard():
            self._index().put_record(rid, "comparison", comparison.model_dump())
        return rid

    def list_personas(self) -> list[PersonaInfo]:
        from chatdoc.dialogue.personas import list_personas

        return [PersonaInfo(name=p.name, display_name=p.display_name, description=p.description)
                for p in list_personas()]

    # ------------------------------------------------------------------------------------------ text tools
    def redact(self, text: str):
        """PII redaction of one text with fresh placeholders (``chatdoc.privacy.Redaction``: text, entities)."""
        from chatdoc.privacy.allowlist import AllowListError
        from chatdoc.privacy.engine import PrivacyEngineError
        from chatdoc.privacy.redactor import get_redactor

        try:
            return get_redactor().redact(text)
        except (AllowListError, PrivacyEngineError) as e:
            raise ServiceError("config", str(e)) from None

    def triage(self, text: str | list[str], profile: dict[str, Any] | None = None) -> TriageResult:
        """Triage of one message (or the patient turns of a conversation): level, fired rules with evidence, crisis."""
        from chatdoc.safety import RulesError, assess

        try:
            return assess(text, profile)
        except RulesError as e:
            raise ServiceError("config", str(e)) from None


def build_service(settings: Settings | None = None, *, backend: Backend | None = None) -> Consultations:
    """The composition root: one :class:`Consultations` for this process (app.py, the CLI, a test)."""
    return Consultations(settings, backend=backend)
