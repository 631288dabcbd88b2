"""Patient view (public, ``/``): consent first, then a streamed chat, triage banner, end + lay summary.

Per-browser state lives in a ``gr.State`` (the session id and flags), so every patient has their own
consultation. Nothing is stored before the patient accepts the notice: on page load only
``start_consultation`` (which stores nothing) is called; ``record_consent`` runs on "I agree".
A consultation can be resumed with ``/?session=<id>`` or by pasting the resume code (the id itself).
"""

from __future__ import annotations


import gradio as gr

from chatdoc.config import get_settings
from chatdoc.domain import is_valid_session_id
from chatdoc.service import Consultations, ConsultationView, ServiceError, Summary, TurnReply
from chatdoc.ui.common import friendly_message, log_failure, notice, private as _private, safe_handler
from chatdoc.ui.text import escape_chat, escape_html, validate_message


CLOSED_PHASES = {"closed"}
TURN_CONCURRENCY = 32  # patient turns handled at once (Gradio concurrency id "turn"); the server gives the view 64 threads


def banner_html(text: str | None) -> str:
    if not text:
        return ""
    return (
        '<div id="triage-banner" role="alert" aria-live="assertive">'
        '<span class="banner-title">&#9888; Please act now</span>'
        f'<span class="banner-text">{escape_html(text)}</span></div>'
    )


def summary_html(summary: Summary) -> str:
    lay = summary.lay_text or summary.text
    return (
        '<div id="lay-summary" class="cd-notice ok"><h3>Your summary and next steps</h3>'
        f'<div class="cd-pre">{escape_html(lay)}</div>'
        "<p>This consultation is now closed. The practice team will review it.</p></div>"
    )


def resume_html(request: gr.Request | None, sid: str) -> str:
    host = ""
    if request is not None:
        try:
            headers = request.headers
            host = headers.get("x-forwarded-host") or headers.get("host") or ""
            proto = headers.get("x-forwarded-proto") or "http"
            host = f"{proto}://{host}" if host else ""
        except Exception:  # noqa: BLE001
            host = ""
    link = f"{host}/?session={sid}"
    return (
        '<div id="resume-info" class="cd-notice info">'
        "To come back to this conversation later, keep this private link "
        f'(anyone with it can read the conversation): <a id="resume-link" href="{escape_html(link)}">'
        f"{escape_html(link)}</a><br>Or keep this resume code: <code id=\"resume-code\">{escape_html(sid)}</code></div>"
    )


def _transcript_messages(view: ConsultationView) -> list[dict]:
    """Chat messages from a ConsultationView's redacted transcript."""
    return [{"role": "user" if m["role"] == "patient" else "assistant", "content": escape_chat(m["text"])}
            for m in view.transcript]


def build_patient(service: Consultations, settings=None) -> gr.Blocks:
    s = settings or get_settings()
    max_chars = s.ui.max_message_chars

    with gr.Blocks(title="chatdoc — talk to the practice assistant", analytics_enabled=False) as demo:
        state = gr.State({})
        gr.HTML('<h2 id="page-title" style="margin:0">Before your appointment</h2>')
        persona_info = gr.HTML(elem_id="persona-info")
        persona = gr.Dropdown(
            label="Assistant",
            choices=[],
            visible=s.ui.allow_persona_select,
            interactive=True,
            elem_id="persona-select",
        )
        with gr.Group(visible=True) as consent_box:
            consent = gr.HTML(elem_id="consent-notice")
            consent_btn = gr.Button("I understand and agree — start", variant="primary", elem_id="consent-btn")
        with gr.Accordion("Continue an earlier conversation", open=False, visible=True) as resume_box:
            resume_code = gr.Textbox(label="Resume code", max_lines=1, elem_id="resume-input", type="password")
            resume_btn = gr.Button("Continue", elem_id="resume-btn")
        banner = gr.HTML(elem_id="banner-slot")
        with gr.Column(visible=False) as chat_box:
            chat = gr.Chatbot(
                elem_id="chat",
                height=420,
                label="Conversation",
                sanitize_html=True,
                render_markdown=True,
                latex_delimiters=[],
                feedback_options=None,
                group_consecutive_messages=False,
                buttons=["copy"],
            )
            msg = gr.Textbox(
                placeholder="Type your answer here…",
                label="Your message",
                lines=1,
                max_lines=6,
                elem_id="msg-input",
                autofocus=True,
            )
            with gr.Row():
                send_btn = gr.Button("Send", variant="primary", elem_id="send-btn", scale=2)
                end_btn = gr.Button("End consultation", elem_id="end-btn", scale=1)
        note = gr.HTML(elem_id="patient-notice")
        summary = gr.HTML(elem_id="summary-slot")
        resume_info = gr.HTML(elem_id="resume-slot")

        def _err(message: str):
            return {note: notice(message, "warn", "patient-error")}

        # ---------- start / persona / resume ----------
        def _fresh(persona_name: str | None, request: gr.Request | None):
            st = service.start_consultation(persona=persona_name or None)
            p = st.persona
            info = (
                f'<div class="cd-notice info"><b>{escape_html(p.display_name or p.name)}</b>'
                f' — {escape_html(p.description)}</div>'
            )
            return st, p, info

        def _resume_outputs(sid: str, request: gr.Request | None, st_extra: dict | None = None):
            view = service.get_state(sid)
            status = view.phase
            msgs = _transcript_messages(view)
            closed = status in CLOSED_PHASES
            banner_text = None
            if status == "escalated" or view.triage.get("level") == "emergency":
                banner_text = (
                    "This conversation was flagged as needing urgent attention. Please follow the advice in the "
                    "conversation; if you feel worse, call your emergency number now."
                )
            st = {"sid": sid, "consented": True, "closed": closed, "shown": msgs, **(st_extra or {})}
            out = {
                state: st,
                consent_box: gr.update(visible=False),
                resume_box: gr.update(visible=False),
                chat_box: gr.update(visible=True),
                chat: msgs,
                banner: banner_html(banner_text),
                note: notice("Welcome back. Your conversation is below.", "ok", "resume-ok"),
                persona: gr.update(visible=False),
                msg: gr.update(interactive=not closed),
                send_btn: gr.update(interactive=not closed),
                end_btn: gr.update(interactive=not closed),
                resume_info: resume_html(request, sid),
                persona_info: "",
            }
            if closed:
                try:
                    out[summary] = summary_html(service.summarize(sid))
                except Exception:  # noqa: BLE001 - the transcript is still useful without it
                    out[summary] = ""
            return out

        all_outputs = [
            state, consent_box, resume_box, chat_box, chat, banner, note, persona, msg, send_btn, end_btn,
            resume_info, persona_info, consent, summary,
        ]

        @safe_handler(_err)
        def on_load(request: gr.Request):
            choices = []
            if s.ui.allow_persona_select:
                choices = [(p.display_name or p.name, p.name) for p in service.list_personas()]
            sid = (request.query_params.get("session") if request is not None else None) or ""
            if sid:
                if not is_valid_session_id(sid):
                    return _start_outputs(None, request, choices, warn="That link is not valid.")
                try:
                    out = _resume_outputs(sid, request)
                    out[persona] = gr.update(visible=False)
                    return out
                except ServiceError:
                    return _start_outputs(
                        None, request, choices,
                        warn="We could not find that conversation. It may have been deleted or expired.",
                    )
            return _start_outputs(None, request, choices)

        def _start_outputs(persona_name, request, choices=None, warn: str | None = None):
            st, p, info = _fresh(persona_name, request)
            out = {
                state: {"sid": st.session_id, "consented": False, "closed": False},
                consent: f'<div class="cd-consent">{escape_html(st.consent_text)}</div>',
                persona_info: info,
                consent_box: gr.update(visible=True),
                chat_box: gr.update(visible=False),
                note: notice(warn, "warn", "patient-error") if warn else "",
            }
            if choices is not None:
                out[persona] = gr.update(choices=choices, value=p.name)
            return out

        demo.load(on_load, None, all_outputs, **_private())

        @safe_handler(_err)
        def on_persona(name, st, request: gr.Request):
            if st.get("consented"):
                return {}
            return _start_outputs(name, request)

        persona.input(on_persona, [persona, state], all_outputs, **_private())

        @safe_handler(_err)
        def on_consent(st, request: gr.Request):
            sid = st.get("sid")
            if not sid:
                return _err("Please reload the page to start again.")
            reply = service.record_consent(sid)
            text = reply.reply
            st = {**st, "consented": True, "shown": [{"role": "assistant", "content": escape_chat(text)}] if text else []}
            return {
                state: st,
                consent_box: gr.update(visible=False),
                resume_box: gr.update(visible=False),
                chat_box: gr.update(visible=True),
                chat: [{"role": "assistant", "content": escape_chat(text)}] if text else [],
                persona: gr.update(visible=False),
                resume_info: resume_html(request, sid),
                banner: banner_html(reply.banner),
                note: "",
            }

        consent_btn.click(on_consent, [state], all_outputs, **_private())

        @safe_handler(_err)
        def on_resume(code, st, request: gr.Request):
            code = (code or "").strip()
            if code.startswith("http") and "session=" in code:
                code = code.split("session=", 1)[1].split("&", 1)[0]
            if not is_valid_session_id(code):
                return _err("That resume code is not valid. Please check it and try again.")
            try:
                return _resume_outputs(code, request)
            except ServiceError:
                return _err("We could not find that conversation. It may have been deleted or expired.")

        resume_btn.click(on_resume, [resume_code, state], all_outputs, **_private())

        # ---------- chat ----------
        def _send_err(message: str):
            return {note: notice(message, "warn", "patient-error"), send_btn: gr.update(interactive=True)}

        @safe_handler(_send_err)
        def on_send(text, st):
            # The server owns the conversation: the chat shown is rebuilt from the stored (redacted)
            # transcript, never taken from the client (a client-sent history could name files on disk).
            sid = st.get("sid")
            if not sid or not st.get("consented"):
                yield _send_err("Please read the notice and press “I agree” first.")
                return
            if st.get("closed"):
                yield _send_err("This consultation has ended. Reload the page to start a new one.")
                return
            clean = validate_message(text, max_chars)
            # What this browser was shown is kept in its server-side gr.State (the client cannot set it);
            # after a restart it is rebuilt from the stored, redacted transcript.
            shown = st.get("shown")
            if shown is None:
                shown = _transcript_messages(service.get_state(sid))
            history = list(shown) + [
                {"role": "user", "content": escape_chat(clean)},
                {"role": "assistant", "content": ""},
            ]
            st["shown"] = history
            yield {chat: history, msg: "", note: "", send_btn: gr.update(interactive=False)}
            try:
                yield from _stream(sid, clean, history, st)
            except Exception as e:  # noqa: BLE001 - give the patient their words back, no traceback
                log_failure("on_send", e)
                if not history[-1]["content"]:
                    st["shown"] = history = history[:-2]
                yield {
                    chat: history,  # unsent: the text goes back
                    msg: clean,
                    note: notice(friendly_message(e), "warn", "patient-error"),
                    send_btn: gr.update(interactive=True),
                }

        def _stream(sid, clean, history, st):
            acc = ""
            queued = False
            for ev in service.stream_message(sid, clean):
                if ev.kind == "queue":  # every model slot is busy: say so, the turn waits its turn
                    queued = True
                    yield {note: notice(ev.text, "info", "patient-queue")}
                elif ev.kind == "banner":
                    yield {banner: banner_html(ev.text)}
                elif ev.kind == "token":
                    acc += ev.text
                    history[-1] = {"role": "assistant", "content": escape_chat(acc)}
                    yield {chat: history}
                elif ev.kind == "error":
                    if not acc:  # nothing was taken: drop the bubbles, the text goes back into the box
                        st["shown"] = history = history[:-2]
                    yield {
                        chat: history,
                        msg: clean,
                        note: notice(ev.text or "Sorry, that did not go through. Please try again.", "warn",
                                     "patient-error"),
                        send_btn: gr.update(interactive=True),
                    }
                    return
                elif ev.kind == "done" and ev.reply is not None:
                    reply: TurnReply = ev.reply
                    if reply.reply != acc:
                        acc = reply.reply
                        history[-1] = {"role": "assistant", "content": escape_chat(acc)}
                    out = {chat: history, send_btn: gr.update(interactive=True)}
                    if queued:
                        out[note] = ""
                    if reply.banner:
                        out[banner] = banner_html(reply.banner)
                    if reply.done or reply.phase in CLOSED_PHASES:
                        out[note] = notice(
                            "The assistant has all it needs. Press “End consultation” to see your summary.",
                            "ok",
                            "patient-done",
                        )
                    yield out
                    return
            yield {send_btn: gr.update(interactive=True)}

        send_outputs = [chat, msg, note, banner, send_btn]
        # Patient turns run TURN_CONCURRENCY at once: a turn is mostly quick Python (redaction, triage, Redis), and a
        # model turn waits for one of the service's ui.concurrency_limit generation slots inside the turn (with a
        # queue note), so a slow model turn does not hold template turns in Gradio's queue.
        turn_kwargs = {**_private(), "concurrency_id": "turn", "concurrency_limit": TURN_CONCURRENCY}
        send_btn.click(on_send, [msg, state], send_outputs, **turn_kwargs)
        msg.submit(on_send, [msg, state], send_outputs, **turn_kwargs)

        @safe_handler(_err)
        def on_end(st):
            sid = st.get("sid")
            if not sid or not st.get("consented"):
                return _err("There is no conversation to end yet.")
            summ = service.end_consultation(sid)
            return {
                state: {**st, "closed": True},
                summary: summary_html(summ),
                msg: gr.update(interactive=False),
                send_btn: gr.update(interactive=False),
                end_btn: gr.update(interactive=False),
                note: "",
            }

        end_btn.click(on_end, [state], all_outputs, **{**_private(), "concurrency_id": "turn"})

    return demo
