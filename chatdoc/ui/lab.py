"""Researcher view (``/lab``, log-in with role ``researcher``): adapters and side-by-side comparison."""

from __future__ import annotations

import gradio as gr

from chatdoc.service import Comparison, Consultations, model_part_counts
from chatdoc.ui.auth import require
from chatdoc.ui.common import logout_form, notice, private, safe_handler
from chatdoc.ui.text import escape_html

ROLE = "researcher"
BASE = "(base model)"
MAX_SCRIPT_LINES = 12


def _usable(a: dict) -> bool:
    return bool(a.get("ok")) and a.get("compatible", True)


def adapters_html(items: list[dict]) -> str:
    """``items``: :meth:`Consultations.list_adapters` entries (name, card, ok, error, compatible, active)."""
    if not items:
        return '<p id="adapter-empty">No adapters found in the adapters directory.</p>'
    rows = []
    for a in items:
        card = a.get("card") or {}
        status = "usable" if _usable(a) else escape_html(a.get("error") or ("incompatible" if a.get("ok") else "unusable"))
        details = "".join(
            f"<li><b>{escape_html(k)}</b>: {escape_html(v)}</li>"
            for k, v in card.items()
            if k not in ("description",) and v not in (None, "", [], {})
        )
        badge = ' <span class="cd-tag routine">active</span>' if a.get("active") else ""
        rows.append(
            "<tr>"
            f"<td><b>{escape_html(a['name'])}</b>{badge}</td>"
            f"<td>{escape_html(card.get('description') or '')}<details><summary>card</summary><ul>{details}</ul></details></td>"
            f"<td>{status}</td></tr>"
        )
    return (
        '<table class="cd-table" id="adapter-table"><thead><tr><th>Adapter</th><th>Card</th><th>Status</th></tr>'
        "</thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def comparison_html(comp: Comparison) -> str:
    cols = []
    for r in comp.rows:
        name = r.adapter or BASE
        items = []
        for i, rep in enumerate(r.replies):
            extra = []
            if rep.parts:
                extra.append(", ".join(f"{escape_html(p.get('kind', ''))}: {escape_html(p.get('source', ''))}"
                                       for p in rep.parts))
            elif rep.source:
                extra.append(f"source {escape_html(rep.source)}")
            if i < len(r.timings) and "total_s" in r.timings[i]:
                extra.append(f"{r.timings[i]['total_s']:.2f} s")
            meta = f" <small>({', '.join(extra)})</small>" if extra else ""
            b_html = f'<div class="cd-redflag">{escape_html(rep.banner)}</div>' if rep.banner else ""
            items.append(f'<li>{b_html}<span class="cd-pre">{escape_html(rep.text)}</span>{meta}</li>')
        used, tried = model_part_counts(r.replies)
        score = f'<p class="cd-acc">model parts accepted by the checks: {used} of {tried}</p>' if tried else ""
        cols.append(
            f'<div class="col" data-adapter="{escape_html(name)}"><h4>{escape_html(name)}</h4>{score}'
            f'<ol>{"".join(items)}</ol></div>'
        )
    return '<div class="cd-cmp" id="comparison">' + "".join(cols) + "</div>"


def build_lab(service: Consultations, settings=None, auth=None) -> gr.Blocks:
    with gr.Blocks(title="chatdoc — lab", analytics_enabled=False) as demo:
        comp_state = gr.State(None)
        with gr.Row():
            gr.HTML('<h2 style="margin:0">Adapters and comparisons</h2>')
            who = gr.HTML(elem_id="lab-user")
        table = gr.HTML(elem_id="adapter-list")
        with gr.Row():
            active = gr.Dropdown(choices=[], label="Adapter for new consultations", elem_id="active-adapter")
            activate_btn = gr.Button("Use for new consultations", elem_id="activate-btn", scale=0)
        note = gr.HTML(elem_id="lab-notice")
        gr.HTML("<h3>Compare</h3>")
        script = gr.Textbox(
            label="Patient message(s) — one per line for a scripted consultation",
            lines=4,
            elem_id="compare-input",
        )
        with gr.Row():
            chosen = gr.CheckboxGroup(choices=[], label="Adapters (the base model is always included)", elem_id="compare-adapters")
            persona = gr.Dropdown(choices=[], label="Persona", elem_id="compare-persona")
        with gr.Row():
            run_btn = gr.Button("Run comparison", variant="primary", elem_id="compare-btn")
            save_btn = gr.Button("Save comparison", elem_id="save-compare-btn", interactive=False)
        result = gr.HTML(elem_id="compare-result")

        def _err(message: str):
            return {note: notice(message, "warn", "lab-error")}

        def _adapter_outputs(keep=None):
            items = service.list_adapters()
            usable = [a["name"] for a in items if _usable(a)]
            current = next((a["name"] for a in items if a.get("active")), None)
            return {
                table: adapters_html(items),
                active: gr.update(choices=[BASE] + usable, value=current or BASE),
                chosen: gr.update(choices=usable, value=[n for n in (keep or usable[:1]) if n in usable]),
            }

        @safe_handler(_err)
        def on_load(request: gr.Request):
            user = require(request, ROLE)
            out = _adapter_outputs()
            personas = service.list_personas()
            out[persona] = gr.update(
                choices=[(p.display_name or p.name, p.name) for p in personas],
                value=personas[0].name if personas else None,
            )
            out[who] = f'<span id="lab-user-name">Signed in as {escape_html(user)}</span>' + logout_form(auth, request, "/lab/")
            return out

        demo.load(on_load, None, [table, active, chosen, persona, who, note], **private())

        @safe_handler(_err)
        def on_activate(name, keep, request: gr.Request):
            require(request, ROLE)
            target = None if not name or name == BASE else name
            service.activate_adapter(target)
            out = _adapter_outputs(keep)
            out[note] = notice(
                f"New consultations will use {'the base model' if target is None else target}.", "ok", "lab-ok"
            )
            return out

        activate_btn.click(on_activate, [active, chosen], [table, active, chosen, note], **private())

        @safe_handler(_err)
        def on_compare(text, names, persona_name, request: gr.Request):
            require(request, ROLE)
            lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
            if not lines:
                return _err("Type at least one patient message.")
            if len(lines) > MAX_SCRIPT_LINES:
                return _err(f"At most {MAX_SCRIPT_LINES} messages per comparison.")
            adapters = [None] + [n for n in (names or []) if n and n != BASE]
            comp = service.compare(lines, adapters, persona=persona_name or None)
            return {
                comp_state: comp,
                result: comparison_html(comp),
                save_btn: gr.update(interactive=True),
                note: notice(f"Compared {len(adapters)} models on {len(lines)} message(s).", "ok", "lab-ok"),
            }

        run_btn.click(
            on_compare,
            [script, chosen, persona],
            [comp_state, result, save_btn, note],
            concurrency_limit=1,
            concurrency_id="lab-compare",
            **private(),
        )

        @safe_handler(_err)
        def on_save(comp, request: gr.Request):
            require(request, ROLE)
            if comp is None:
                return _err("Run a comparison first.")
            rid = service.save_comparison(comp)
            return {note: notice(f"Comparison saved as {rid}.", "ok", "lab-saved"), save_btn: gr.update(interactive=False)}

        save_btn.click(on_save, [comp_state], [note, save_btn], **private())

    return demo
