"""Shared pieces of the three views: offline theme, CSS, friendly errors."""

from __future__ import annotations

import functools
import inspect
import os
import traceback

# Must happen before gradio is imported anywhere: no analytics / version pings, nothing leaves the host.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_SSR_MODE", "False")


def _private_gradio_cache() -> None:
    """Gradio's cache in a 0700 folder of the data dir, not the shared, world-readable /tmp/gradio."""
    try:
        from chatdoc.config import get_settings

        d = get_settings().data_path / "gradio-cache"
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        d.chmod(0o700)
        os.environ.setdefault("GRADIO_TEMP_DIR", str(d))
    except Exception:  # noqa: BLE001 - a bad config is reported by whoever loads the settings next
        pass


_private_gradio_cache()

import gradio as gr  # noqa: E402

from chatdoc.log import logger  # noqa: E402
from chatdoc.service import ServiceError  # noqa: E402
from chatdoc.ui.auth import Forbidden  # noqa: E402
from chatdoc.ui.text import InputProblem  # noqa: E402

SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]

CSS = """
.gradio-container { max-width: 1000px !important; width: 100% !important; margin: 0 auto; }
#triage-banner { background: #b00020; color: #fff; border: 4px solid #7a0016; border-radius: 10px;
  padding: 16px 18px; font-size: 1.25rem; font-weight: 700; line-height: 1.4; }
#triage-banner, #triage-banner * { color: #fff !important; }
#banner-slot { position: sticky; top: 0; z-index: 100; }
#chat button[aria-label="Clear"] { display: none !important; }
#triage-banner .banner-title { font-size: 1.6rem; display: block; margin-bottom: 6px; }
#triage-banner .banner-text { white-space: pre-wrap; }
.cd-notice { border-radius: 8px; padding: 10px 12px; margin: 4px 0; }
.cd-notice.warn { background: #fff4e5; color: #663c00; border: 1px solid #ffb74d; }
.cd-notice.info { background: #e8f1fb; color: #0b3c6f; border: 1px solid #90caf9; }
.cd-notice.ok { background: #e8f5e9; color: #1b5e20; border: 1px solid #81c784; }
.cd-pre { white-space: pre-wrap; word-break: break-word; }
.cd-consent { white-space: pre-wrap; line-height: 1.5; padding: 12px; background: var(--background-fill-primary); }
#resume-info a, #resume-info code { word-break: break-all; overflow-wrap: anywhere; }
.cd-table { width: 100%; border-collapse: collapse; font-size: 0.95rem; }
.cd-table th, .cd-table td { border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: left; vertical-align: top; }
.cd-tag { display: inline-block; border-radius: 6px; padding: 1px 8px; font-weight: 600; font-size: 0.85rem; }
.cd-tag.emergency { background: #b00020; color: #fff; }
.cd-tag.urgent { background: #e65100; color: #fff; }
.cd-tag.routine { background: #1565c0; color: #fff; }
.cd-tag.self_care { background: #2e7d32; color: #fff; }
.cd-tag.unknown { background: #757575; color: #fff; }
.cd-redflag { background: #ffebee; color: #8e0000; border-left: 5px solid #b00020; padding: 6px 10px; margin: 4px 0;
  font-weight: 600; }
.cd-turn { margin: 6px 0; padding: 6px 10px; border-radius: 8px; }
.cd-turn.patient { background: #f1f8e9; }
.cd-turn.assistant { background: #f5f5f5; }
.cd-turn .who { font-weight: 700; margin-right: 6px; }
.cd-cmp { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 10px; }
.cd-cmp .col { border: 1px solid #ccc; border-radius: 8px; padding: 8px; }
.cd-cmp .col h4 { margin: 0 0 6px 0; }
@media (max-width: 480px) {
  .gradio-container { padding: 4px !important; }
  #triage-banner { font-size: 1.1rem; }
}
"""


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts only (the stock theme pulls fonts from Google)."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def notice(text: str, kind: str = "info", elem_id: str | None = None) -> str:
    from chatdoc.ui.text import escape_html

    ident = f' id="{elem_id}"' if elem_id else ""
    return f'<div class="cd-notice {kind}"{ident} role="status">{escape_html(text)}</div>'


def friendly_message(exc: BaseException) -> str:
    """The sentence a person sees for an exception (never a traceback)."""
    if isinstance(exc, InputProblem):
        return str(exc)
    if isinstance(exc, Forbidden):
        return "You are not allowed to do this. Please log in with the right account."
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, (ImportError, ModuleNotFoundError)):
        return "The consultation service is not available right now. Please try again in a few minutes."
    return "Sorry, something went wrong on our side. Please try again in a moment."


def log_failure(where: str, exc: BaseException) -> None:
    """Log a handler failure without patient text: type, code and the code location only."""
    if isinstance(exc, (InputProblem,)):
        return
    frames = traceback.extract_tb(exc.__traceback__)
    loc = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    if isinstance(exc, (ServiceError, Forbidden)):
        logger.info("ui {}: {} {}", where, type(exc).__name__, getattr(exc, "code", None) or "")
    else:
        logger.error("ui {} failed: {} at {}", where, type(exc).__name__, loc)


def safe_handler(on_error):
    """Wrap a Gradio handler (function or generator): any exception -> ``on_error(message)``'s outputs.

    ``on_error`` receives the friendly message and returns the handler's outputs (a tuple or dict).
    """

    def deco(fn):
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                try:
                    yield from fn(*args, **kwargs)
                except Exception as e:  # noqa: BLE001 - the UI must never show a traceback
                    log_failure(fn.__name__, e)
                    yield on_error(friendly_message(e))

            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                log_failure(fn.__name__, e)
                return on_error(friendly_message(e))

        return wrapper

    return deco


def private() -> dict:
    """Event kwargs: hidden from the API page and Gradio clients (the browser still calls them)."""
    return {"api_visibility": "private"}


def client_addr(request) -> str | None:
    """The client's address for the audit log (X-Forwarded-For only when ``security.trust_proxy_headers``)."""
    from chatdoc.config import get_settings
    from chatdoc.ui.security import client_address

    try:
        return client_address(request.request if hasattr(request, "request") else request,
                              get_settings().security.trust_proxy_headers)
    except Exception:  # noqa: BLE001 - the audit record still names the user and the action
        return None


def logout_form(auth, request, view: str) -> str:
    """A POST log-out button carrying the session's CSRF token (log-out by GET would be forgeable)."""
    from chatdoc.ui.auth import COOKIE
    from chatdoc.ui.text import escape_html

    raw = getattr(request, "request", None) or request  # gr.Request wraps the Starlette request
    sess = auth.session(raw.cookies.get(COOKIE), touch=False) if auth is not None and raw is not None else None
    if sess is None:
        return ""
    return (
        f'<form method="post" action="/auth/logout" class="cd-logout">'
        f'<input type="hidden" name="csrf" value="{escape_html(sess.csrf)}">'
        f'<input type="hidden" name="next" value="{escape_html(view)}">'
        '<button type="submit" id="logout-btn">Log out</button></form>'
    )
