"""Pure text helpers for the views (no gradio here, so they are cheap to test).

Patient text is untrusted everywhere it is shown. Two defences, both applied:
  * :func:`escape_html` for every string placed inside HTML that we build ourselves;
  * :func:`escape_chat` for strings shown in components that render Markdown (the Chatbot):
    HTML-escaped first, then every Markdown control character backslash-escaped, so neither tags
    nor links/images/emphasis/LaTeX in the patient's words are interpreted.
"""

from __future__ import annotations

import html
import re
import time
import unicodedata

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~^$<>=:])")


def escape_html(text: object) -> str:
    """HTML-escape any value (None -> "")."""
    return html.escape("" if text is None else str(text), quote=True)


def escape_chat(text: object) -> str:
    """Text safe for a Markdown+HTML rendering component: shown literally, nothing interpreted.

    HTML-escape without quotes (quotes are harmless outside tags and entities like ``&#x27;`` would
    be broken by the Markdown pass), then Markdown-escape everything except the ``&`` and ``;`` of
    the entities just produced.
    """
    s = "" if text is None else str(text)
    s = html.escape(s, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", s)


class InputProblem(ValueError):
    """A patient message the UI refuses before calling the service; the message is shown as is."""


def validate_message(value: object, max_chars: int) -> str:
    """Return the cleaned message or raise :class:`InputProblem` with a friendly explanation."""
    if value is None:
        raise InputProblem("Please type a message first.")
    if isinstance(value, dict):  # a MultimodalTextbox-style payload or an API caller sending objects
        if value.get("files"):
            raise InputProblem("Only typed text can be sent. Files, images and recordings are not accepted.")
        value = value.get("text", "")
    if not isinstance(value, str):
        raise InputProblem("Only typed text can be sent.")
    text = value.replace("\r\n", "\n").strip()
    if not text:
        raise InputProblem("Please type a message first.")
    if len(text) > max_chars:
        raise InputProblem(
            f"Your message is too long ({len(text):,} characters). Please keep it under {max_chars:,} "
            "characters, or send it in parts."
        )
    bad = sum(1 for ch in text if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in "\n\t")
    if bad:
        raise InputProblem("Your message contains characters that are not text. Please type it again.")
    return text


def fmt_time(ts: float | None) -> str:
    if not ts:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts)))
