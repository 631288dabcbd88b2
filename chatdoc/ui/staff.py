"""Staff view (``/staff``, log-in with role ``staff``): consultation list, transcript, summary review.

Every value shown comes from a handler run after log-in (never from the page config), and every
handler re-checks the role, so an anonymous request gets no consultation data through the page or the
API routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from chatdoc.domain import LEVELS, PHASES, is_valid_session_id
from chatdoc.log import audit
from chatdoc.service import Consultations, ConsultationView, Summary
from chatdoc.ui.auth import require
from chatdoc.ui.common import client_addr, logout_form, notice, private, safe_handler
from chatdoc.ui.text import escape_html, fmt_time

if TYPE_CHECKING:
    from chatdoc.memory import SessionMeta

ROLE = "staff"
ANY = "any"


def tag(level: str | None) -> str:
    lvl = level if level in LEVELS else "unknown"
    return f'<span class="cd-tag {lvl}">{escape_html(lvl.replace("_", " "))}</span>'


def list_html(items: list[SessionMeta]) -> str:
    if not items:
        return '<p id="consult-empty">No consultations match.</p>'
    rows = []
    for m in items:
        rows.append(
            "<tr>"
            f"<td>{tag(m.triage_level)}{' &#9873;' if m.flagged else ''}</td>"
            f"<td>{escape_html(m.status)}</td>"
            f"<td>{escape_html(fmt_time(m.updated_at))}</td>"
            f"<td>{escape_html(m.title)}</td>"
            f"<td>{'&#10003; ' + escape_html(m.approved_by) if m.approved_by else ''}</td>"
            f"<td><code>{escape_html(m.id[:10])}</code></td>"
            "</tr>"
        )
    return (
        '<table class="cd-table" id="consult-table"><thead><tr><th>Triage</th><th>Status</th><th>Updated</th>'
        "<th>Complaint</th><th>Approved</th><th>Id</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _choice_label(m: SessionMeta) -> str:
    title = m.title or "(no complaint yet)"
    return f"[{m.triage_level}] {fmt_time(m.updated_at)} · {title} · {m.id[:8]}"


def transcript_html(view: ConsultationView) -> str:
    parts = []
    for t in view.transcript:
        patient = t["role"] == "patient"
        who = "Patient" if patient else "Assistant"
        parts.append(
            f'<div class="cd-turn {"patient" if patient else "assistant"}"><span class="who">{who}:</span>'
            f'<span class="cd-pre">{escape_html(t["text"])}</span></div>'
        )
    if not parts:
        parts.append("<p>No messages yet.</p>")
    return '<div id="transcript">' + "".join(parts) + "</div>"


def _fmt_value(v) -> str:
    if v is None or v == "" or v == [] or v == {}:
        return "<i>—</i>"
    if isinstance(v, dict):
        return "<ul>" + "".join(f"<li><b>{escape_html(k)}</b>: {_fmt_value(x)}</li>" for k, x in v.items()) + "</ul>"
    if isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float)) for x in v):
        return f'<span class="cd-pre">{escape_html(", ".join(map(str, v)))}</span>'
    if isinstance(v, (list, tuple)):
        return "<ul>" + "".join(f"<li>{_fmt_value(x)}</li>" for x in v) + "</ul>"
    return f'<span class="cd-pre">{escape_html(v)}</span>'


def structured_html(summary: Summary) -> str:
    st = summary.structured
    flags = st.get("red_flags") or []
    flag_html = ""
    if flags:
        items = []
        for f in flags:
            if isinstance(f, dict):
                title = f.get("title") or f.get("id") or ""
                lvl = f.get("level") or ""
                ev = f.get("evidence")
                ev_s = ", ".join(map(str, ev)) if isinstance(ev, (list, tuple)) else (ev or "")
                items.append(
                    f'<div class="cd-redflag">&#9873; {escape_html(title)} {tag(lvl) if lvl else ""}'
                    + (f' <span style="font-weight:400">— {escape_html(ev_s)}</span>' if ev_s else "")
                    + "</div>"
                )
            else:
                items.append(f'<div class="cd-redflag">&#9873; {escape_html(f)}</div>')
        flag_html = '<div id="red-flags"><h4>Red flags</h4>' + "".join(items) + "</div>"
    rows = "".join(
        f"<tr><th>{escape_html(k.replace('_', ' '))}</th><td>{_fmt_value(v)}</td></tr>"
        for k, v in st.items()
        if k != "red_flags"
    )
    triage = st.get("triage_level")
    appr = (
        f'<p id="approval" class="cd-notice ok">Approved by <b>{escape_html(summary.approved_by)}</b> at '
        f"{escape_html(fmt_time(summary.approved_at))}</p>"
        if summary.approved_by
        else '<p id="approval" class="cd-notice warn">Not approved yet.</p>'
    )
    edited = " (edited)" if summary.edited else ""
    return (
        f'<div id="structured-summary"><h4>Structured summary{edited} {tag(triage) if triage else ""}</h4>'
        f'{appr}{flag_html}<table class="cd-table">{rows}</table></div>'
    )


def build_staff(service: Consultations, settings=None, exports=None, auth=None) -> gr.Blocks:
    """``exports`` (:class:`~chatdoc.ui.exports.ExportStore`) holds downloads; ``auth`` gives the log-out token."""
    with gr.Blocks(title="chatdoc — staff", analytics_enabled=False) as demo:
        current = gr.State("")
        with gr.Row():
            gr.HTML('<h2 style="margin:0">Consultations</h2>')
            who = gr.HTML(elem_id="staff-user")
        with gr.Row():
            f_status = gr.Dropdown([ANY, *PHASES], value=ANY, label="Status", elem_id="filter-status")
            f_triage = gr.Dropdown([ANY, *LEVELS], value=ANY, label="Triage", elem_id="filter-triage")
            refresh = gr.Button("Refresh", elem_id="refresh-btn", scale=0)
        table = gr.HTML(elem_id="consult-list")
        pick = gr.Dropdown(choices=[], label="Open a consultation", elem_id="consult-pick", interactive=True)
        note = gr.HTML(elem_id="staff-notice")
        with gr.Column(visible=False) as detail:
            with gr.Row():
                with gr.Column(scale=1):
                    gr.HTML("<h4>Transcript (redacted)</h4>")
                    transcript = gr.HTML(elem_id="transcript-slot")
                with gr.Column(scale=1):
                    structured = gr.HTML(elem_id="structured-slot")
            summary_text = gr.Textbox(label="Summary (editable)", lines=10, max_lines=30, elem_id="summary-text")
            with gr.Row():
                save_btn = gr.Button("Save edits", elem_id="save-summary-btn")
                approve_btn = gr.Button("Approve summary", variant="primary", elem_id="approve-btn")
            with gr.Row():
                exp_json = gr.Button("Export JSON", elem_id="export-json-btn")
                exp_md = gr.Button("Export Markdown", elem_id="export-md-btn")
            export_file = gr.HTML(elem_id="export-file", visible=False)
            with gr.Row():
                delete_btn = gr.Button("Delete consultation…", variant="stop", elem_id="delete-btn")
            with gr.Group(visible=False) as confirm_box:
                gr.HTML(
                    '<div class="cd-notice warn" id="delete-warning">This permanently erases the whole consultation '
                    "(transcript, summary, approvals). It cannot be undone.</div>"
                )
                with gr.Row():
                    confirm_btn = gr.Button("Yes, erase it", variant="stop", elem_id="delete-confirm-btn")
                    cancel_btn = gr.Button("Cancel", elem_id="delete-cancel-btn")

        def _err(message: str):
            return {note: notice(message, "warn", "staff-error")}

        def _filters(status, triage):
            return (None if not status or status == ANY else status), (None if not triage or triage == ANY else triage)

        def _list_outputs(status, triage, keep: str = ""):
            st, tr = _filters(status, triage)
            items = service.list_consultations(status=st, triage=tr, limit=200)
            choices = [(_choice_label(m), m.id) for m in items]
            ids = {c[1] for c in choices}
            return {
                table: list_html(items),
                pick: gr.update(choices=choices, value=keep if keep in ids else None),
            }

        @safe_handler(_err)
        def on_load(status, triage, request: gr.Request):
            user = require(request, ROLE)
            out = _list_outputs(status, triage)
            out[who] = (f'<span id="staff-user-name">Signed in as {escape_html(user)}</span>'
                        + logout_form(auth, request, "/staff/"))
            return out

        list_outputs = [table, pick, who, note]
        demo.load(on_load, [f_status, f_triage], list_outputs, **private())

        @safe_handler(_err)
        def on_filter(status, triage, sid, request: gr.Request):
            require(request, ROLE)
            out = _list_outputs(status, triage, keep=sid or "")
            out[note] = ""
            return out

        for ev in (f_status.change, f_triage.change, refresh.click):
            ev(on_filter, [f_status, f_triage, current], list_outputs, **private())

        detail_outputs = [current, detail, transcript, structured, summary_text, note, export_file, confirm_box]

        def _detail(sid: str):
            view = service.get_state(sid)
            summ = service.summarize(sid)
            return {
                current: sid,
                detail: gr.update(visible=True),
                transcript: transcript_html(view),
                structured: structured_html(summ),
                summary_text: summ.text,
                export_file: gr.update(value="", visible=False),
                confirm_box: gr.update(visible=False),
                note: "",
            }

        @safe_handler(_err)
        def on_pick(sid, request: gr.Request):
            require(request, ROLE)
            if not sid:
                return {current: "", detail: gr.update(visible=False)}
            if not is_valid_session_id(sid):
                return _err("Unknown consultation.")
            out = _detail(sid)
            audit("view", user=request.username, address=client_addr(request), session_id=sid)
            return out

        pick.input(on_pick, [pick], detail_outputs, **private())

        @safe_handler(_err)
        def on_save(sid, text, request: gr.Request):
            user = require(request, ROLE)
            if not sid:
                return _err("Open a consultation first.")
            if not (text or "").strip():
                return _err("The summary is empty; nothing was saved.")
            summ = service.update_summary(sid, text, user)
            audit("edit_summary", user=user, address=client_addr(request), session_id=sid)
            return {structured: structured_html(summ), note: notice("Summary saved.", "ok", "staff-ok")}

        save_btn.click(on_save, [current, summary_text], [structured, note], **private())

        @safe_handler(_err)
        def on_approve(sid, text, status, triage, request: gr.Request):
            user = require(request, ROLE)
            if not sid:
                return _err("Open a consultation first.")
            summ = service.summarize(sid)
            if (text or "").strip() and text.strip() != summ.text.strip():
                service.update_summary(sid, text, user)
            summ = service.approve_summary(sid, user)
            audit("approve", user=user, address=client_addr(request), session_id=sid)
            out = _list_outputs(status, triage, keep=sid)
            out[structured] = structured_html(summ)
            out[note] = notice(f"Summary approved by {user}.", "ok", "staff-ok")
            return out

        approve_btn.click(
            on_approve, [current, summary_text, f_status, f_triage], [structured, note, table, pick], **private()
        )

        def _export(fmt: str):
            @safe_handler(_err)
            def on_export(sid, request: gr.Request):
                user = require(request, ROLE)
                if not sid:
                    return _err("Open a consultation first.")
                data = service.export_consultation(sid, fmt)
                ext = "json" if fmt == "json" else "md"
                media = "application/json" if fmt == "json" else "text/markdown; charset=utf-8"
                name = f"consultation-{sid[:12]}.{ext}"
                # Held in memory for one download by this user (never written to disk, never public).
                token = exports.put(user, sid, name, media, data.encode("utf-8"))
                audit("export", user=user, address=client_addr(request), session_id=sid, format=ext)
                link = (f'<a id="export-link" href="/exports/{token}" download="{escape_html(name)}">'
                        f'Download {escape_html(name)}</a> <small>(one download, expires in '
                        f'{int(exports.ttl_s // 60) or 1} min)</small>')
                return {
                    export_file: gr.update(value=link, visible=True),
                    note: notice(f"Export ready ({ext.upper()}).", "ok", "staff-ok"),
                }

            return on_export

        exp_json.click(_export("json"), [current], [export_file, note], **private())
        exp_md.click(_export("markdown"), [current], [export_file, note], **private())

        delete_btn.click(lambda: gr.update(visible=True), None, [confirm_box], **private())
        cancel_btn.click(lambda: gr.update(visible=False), None, [confirm_box], **private())

        @safe_handler(_err)
        def on_delete(sid, status, triage, request: gr.Request):
            user = require(request, ROLE)
            if not sid:
                return _err("Open a consultation first.")
            n = service.delete_consultation(sid)
            audit("erase", user=user, address=client_addr(request), session_id=sid, items=n)
            out = _list_outputs(status, triage)
            out.update(
                {
                    current: "",
                    detail: gr.update(visible=False),
                    confirm_box: gr.update(visible=False),
                    transcript: "",
                    structured: "",
                    summary_text: "",
                    export_file: gr.update(value="", visible=False),
                    note: notice(f"Consultation erased ({n} stored items removed).", "ok", "staff-deleted"),
                }
            )
            return out

        confirm_btn.click(
            on_delete,
            [current, f_status, f_triage],
            [current, detail, confirm_box, transcript, structured, summary_text, export_file, note, table, pick],
            **private(),
        )

    return demo
