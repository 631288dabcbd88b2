"""The web app: three Gradio views mounted on one FastAPI app.

  /        patient view, public (the session id in the page state or ``?session=`` is the only key)
  /staff   staff view, log-in with role ``staff``
  /lab     researcher view, log-in with role ``researcher``

Gradio's ``launch(auth=...)`` protects a whole app, which would lock patients out, so each view is its
own Blocks with its own ``auth`` callable (bcrypt users from ``ui.users``) and its own cookie; Gradio
then refuses the page config, queue, run/call and file routes of ``/staff`` and ``/lab`` to anyone
not logged in to that view, and handlers re-check the role.
"""

from __future__ import annotations

import threading
import time

from chatdoc.config import Settings, get_settings
from chatdoc.log import logger
from chatdoc.ui import common  # sets the offline environment before gradio is imported
from chatdoc.ui.auth import make_auth

_warm_thread: threading.Thread | None = None
_warm_status: dict = {"state": "idle"}


def warm_up_async() -> threading.Thread:
    """Load the model in the background with progress in the log; failures never stop the app."""
    global _warm_thread
    if _warm_thread is not None:
        return _warm_thread

    def _run():
        t0 = time.perf_counter()
        _warm_status["state"] = "loading"
        logger.info("ui: loading the model in the background (the pages already work)")
        try:
            try:
                svc = common.service()
                warm = getattr(svc, "warm_up", None)
            except ImportError:
                warm = None
            if callable(warm):
                warm()
            else:
                from chatdoc.llm import get_backend

                get_backend()
            _warm_status["state"] = "ready"
            logger.info("ui: model ready in {:.1f} s", time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - the first consultation will retry and show a friendly error
            _warm_status["state"] = "failed"
            logger.warning("ui: model warm-up failed ({}); it will be retried on first use", type(e).__name__)

    _warm_thread = threading.Thread(target=_run, name="chatdoc-warmup", daemon=True)
    _warm_thread.start()
    return _warm_thread


def build_app(settings: Settings | None = None):
    """The FastAPI app with the three views mounted (no server started)."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from chatdoc.ui.lab import build_lab
    from chatdoc.ui.patient import build_patient
    from chatdoc.ui.staff import build_staff

    s = settings or get_settings()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz():
        return JSONResponse({"ok": True, "model": _warm_status["state"]})

    common_kwargs = dict(
        theme=common.theme(),
        css=common.CSS,
        ssr_mode=False,
        footer_links=[],
        show_error=False,
        run_history=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        server_name=s.ui.host,
        server_port=s.ui.port,
    )
    if not s.ui.users:
        logger.warning("ui: no users configured (ui.users); the staff and lab views cannot be logged in to")

    views = [
        ("/staff", build_staff(s), make_auth("staff"), "Staff log-in"),
        ("/lab", build_lab(s), make_auth("researcher"), "Researcher log-in"),
        ("/", build_patient(s), None, None),
    ]
    for path, blocks, auth, message in views:
        blocks.queue(default_concurrency_limit=s.ui.concurrency_limit, max_size=64)
        gr.mount_gradio_app(app, blocks, path=path, auth=auth, auth_message=message, **common_kwargs)
    return app


def serve(host: str | None = None, port: int | None = None, warm: bool = True) -> None:
    """Start the app (blocking) on ``ui.host``/``ui.port`` unless overridden."""
    import uvicorn

    from chatdoc.log import setup_logging

    s = get_settings()
    host = host or s.ui.host
    port = s.ui.port if port is None else port
    setup_logging()
    app = build_app(s)
    if warm:
        warm_up_async()
    logger.info("ui: serving on http://{}:{} (patients /, staff /staff, researchers /lab)", host, port)
    # No access log: URLs can carry a resume link (?session=<id>), which is a secret.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=3)
