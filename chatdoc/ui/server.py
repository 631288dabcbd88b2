"""The web app: three Gradio views mounted on one FastAPI app.

  /        patient view, public (the session id in the page state or ``?session=`` is the only key)
  /staff   staff view, log-in with role ``staff``
  /lab     researcher view, log-in with role ``researcher``

Log-in is chatdoc's own (``/auth/login``, :mod:`chatdoc.ui.auth`): a server-side session cookie that
Gradio reads through ``auth_dependency``, so Gradio refuses the page config and queue of ``/staff`` and
``/lab`` to anyone without a session of that role, and handlers re-check the role. The whole app sits
behind :class:`chatdoc.ui.security.SecurityMiddleware` (route allow-list, host/origin checks, headers).
Staff exports are served from memory by ``/exports/<token>`` (:mod:`chatdoc.ui.exports`).

The three views share ONE :class:`chatdoc.service.Consultations`, passed in by the caller (``serve()``
builds it; ``build_app()`` builds one when none is given).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Form, Request  # module level: the route signatures below are resolved by name

from chatdoc.config import Settings, get_settings
from chatdoc.log import audit, logger
from chatdoc.ui import common  # sets the offline environment before gradio is imported
from chatdoc.ui.auth import COOKIE, Auth, AuthUnavailable

if TYPE_CHECKING:
    from chatdoc.service import Consultations


WARM_TRANSCRIPT = "Doctor: What brings you in today?\nPatient: I have had a headache for two days, no fever."


class WarmUp:
    """Loads, in the background, what a patient turn needs (redaction, extraction, triage: ~1 min on a busy 2-core
    box the first time, which the first patients of a fresh process or replica would otherwise wait for), then the
    model (``service.warm_up()``), with progress in the log; ``state`` for /healthz.

    Failures never stop the app: the first use retries and shows a friendly error.
    """

    def __init__(self, service: Consultations):
        self.service = service
        self.state = "idle"  # idle | loading | ready | failed
        self.thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="chatdoc-warmup", daemon=True)
            self.thread.start()
        return self.thread

    def _run(self) -> None:
        t0 = time.perf_counter()
        self.state = "loading"
        logger.info("ui: loading the model in the background (the pages already work)")
        try:
            self.service.summarize_transcript(WARM_TRANSCRIPT)  # redaction, extraction, triage: nothing stored
        except Exception as e:  # noqa: BLE001 - the first turn loads them instead
            logger.warning("ui: warming the turn pipeline failed ({})", type(e).__name__)
        logger.info("ui: turn pipeline ready in {:.1f} s", time.perf_counter() - t0)
        try:
            self.service.warm_up()
        except Exception as e:  # noqa: BLE001
            self.state = "failed"
            logger.warning("ui: model warm-up failed ({}); it will be retried on first use", type(e).__name__)
            return
        self.state = "ready"
        logger.info("ui: model ready in {:.1f} s", time.perf_counter() - t0)


def build_app(settings: Settings | None = None, service: Consultations | None = None, warm: bool = False):
    """The FastAPI app with the three views mounted behind :class:`~chatdoc.ui.security.SecurityMiddleware`.

    ``service``: the process's :class:`~chatdoc.service.Consultations` (built here when None); ``warm``:
    load the model in the background now.
    """
    import anyio
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

    from chatdoc.ui.exports import ExportStore
    from chatdoc.ui.lab import build_lab
    from chatdoc.ui.patient import build_patient
    from chatdoc.ui.security import SecurityMiddleware, client_address, request_scheme, same_site_url
    from chatdoc.ui.staff import build_staff

    from chatdoc.service import build_service

    s = settings or get_settings()
    service = service or build_service(s)
    warm_up = WarmUp(service)
    sec = s.security
    auth = Auth(s)
    exports = ExportStore(sec.export_ttl_seconds)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.auth, app.state.exports, app.state.warm_up = auth, exports, warm_up

    def address(request: Request) -> str:
        return client_address(request, sec.trust_proxy_headers)

    def https(request: Request) -> bool:
        return request_scheme(request, sec.trust_proxy_headers) == "https"

    health_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chatdoc-health")

    @app.get("/healthz")
    async def healthz():
        # its own two threads: never queued behind Gradio handlers or the default thread pool (a load balancer's
        # probe must answer while every patient thread is busy)
        storage = await asyncio.get_running_loop().run_in_executor(health_pool, _storage_health)
        ok = bool(storage.get("ok"))
        return JSONResponse({"ok": ok, "model": warm_up.state, "storage": storage}, status_code=200 if ok else 503)

    @app.get("/auth/login")
    def login_page(request: Request, next: str = "/staff/"):
        target = same_site_url(next, "/staff/")
        return HTMLResponse(login_html(target, None))

    @app.post("/auth/login")
    async def login_post(request: Request, username: str = Form(""), password: str = Form(""),
                         next: str = Form("/staff/")):
        target = same_site_url(next, "/staff/")
        view = _view_role(target)
        if view is None:
            target, view = "/staff/", "staff"
        elif not target.startswith(("/staff/", "/lab/")):
            target += "/"  # the mounted views live under /staff/ and /lab/
        # bcrypt off the event loop: patients' turns and /healthz keep answering during a login storm
        result, value = await anyio.to_thread.run_sync(auth.login, username, password, address(request), view)
        if result == "unavailable":
            return HTMLResponse(login_html(target, "Log-in is unavailable right now (storage is down). Please try "
                                                   "again in a moment."), status_code=503)
        if result == "throttled":
            wait = int(value) + 1
            return HTMLResponse(login_html(target, f"Too many failed log-ins. Try again in {wait} seconds."),
                                status_code=429, headers={"Retry-After": str(wait)})
        if result != "ok":
            return HTMLResponse(login_html(target, "Wrong user name or password for this page."), status_code=401)
        token, _sess = value
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=https(request), path="/",
                        max_age=int(sec.session_max_hours * 3600))
        return resp

    @app.post("/auth/logout")
    def logout(request: Request, csrf: str = Form(""), next: str = Form("/staff/")):
        token = request.cookies.get(COOKIE)
        sess = auth.session(token, touch=False)
        if sess is None or not hmac.compare_digest(sess.csrf, csrf or ""):
            return JSONResponse({"detail": "Invalid or expired log-out request."}, status_code=403)
        try:
            auth.sessions.delete(token)
        except AuthUnavailable:
            return JSONResponse({"detail": "Log-out is unavailable right now; please try again."}, status_code=503)
        audit("logout", user=sess.user, address=address(request))
        resp = RedirectResponse("/auth/login?next=" + same_site_url(next, "/staff/"), status_code=303)
        resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=https(request))
        return resp

    @app.get("/exports/{token}")
    def download(request: Request, token: str):
        user = auth.user_for(request.cookies.get(COOKIE), "staff")
        exp = exports.take(token, user)
        if exp is None:
            audit("export_download", user=user, address=address(request), result="refused")
            return JSONResponse({"detail": "This download is not available (expired, used, or not yours)."},
                                status_code=404)
        audit("export_download", user=user, address=address(request), session_id=exp.session_id)
        return Response(exp.data, media_type=exp.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{exp.filename}"'})

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
        # Nothing is served from disk through Gradio's file routes (they are also closed at the door):
        allowed_paths=[],
        blocked_paths=[str(p) for p in _blocked_paths(s)],
        max_file_size=sec.max_upload_bytes,
    )
    if not s.ui.users:
        logger.warning("ui: no users configured (ui.users); the staff and lab views cannot be logged in to")

    def dependency(role: str):
        return lambda request: auth.user_for(request.cookies.get(COOKIE), role)

    views = [
        ("/staff", build_staff(service, s, exports=exports, auth=auth), "staff"),
        ("/lab", build_lab(service, s, auth=auth), "researcher"),
        ("/", build_patient(service, s), None),
    ]
    mounts = {}
    for path, blocks, role in views:
        threads, concurrency, max_size = view_concurrency(path, s)
        blocks.max_threads = threads  # != 40: the view gets its own thread limiter (Gradio's create_limiter)
        blocks.queue(default_concurrency_limit=concurrency, max_size=max_size)
        extra = {"auth_dependency": dependency(role)} if role else {}
        gr.mount_gradio_app(app, blocks, path=path, **extra, **common_kwargs)
        mounts["" if path == "/" else path] = (len(blocks.fns), role)

    def is_logged_in(scope, role: str) -> bool:
        return auth.user_for(Request(scope).cookies.get(COOKIE), role) is not None

    if warm:
        warm_up.start()
    return SecurityMiddleware(app, settings=s, mounts=mounts, is_logged_in=is_logged_in)


# Concurrency in one process, set deliberately (docs/RUNTIME.md, "Concurrency in one process"):
#  * model generations: at most ui.concurrency_limit at once (the service's GenerationGate); the other model turns
#    wait in a FIFO queue whose position the patient sees, and fall back to the template after a while;
#  * each view has its OWN Gradio thread limiter (max_threads != 40), so staff pages never wait for patient threads,
#    and /healthz has its own two threads: neither queues behind a model turn;
#  * patient turns (redaction, triage, Redis: CPU-bound Python, 15-80 ms) run up to TURN_CONCURRENCY at once, in
#    worker threads, never on the event loop; the lab's comparisons run the model, so ui.concurrency_limit there.
VIEW_THREADS = {"/": 64, "/staff": 16, "/lab": 8}
VIEW_QUEUE_MAX = {"/": 256, "/staff": 64, "/lab": 32}
STAFF_CONCURRENCY = 8


def view_concurrency(path: str, s: Settings) -> tuple[int, int, int]:
    """(worker threads, default concurrency per event, queue size) of the view mounted at ``path``."""
    from chatdoc.ui.patient import TURN_CONCURRENCY

    concurrency = {"/": TURN_CONCURRENCY, "/staff": STAFF_CONCURRENCY}.get(path, s.ui.concurrency_limit)
    return VIEW_THREADS[path], concurrency, VIEW_QUEUE_MAX[path]


def _view_role(path: str) -> str | None:
    for prefix, role in (("/staff", "staff"), ("/lab", "researcher")):
        if path == prefix or path.startswith(prefix + "/"):
            return role
    return None


def _blocked_paths(s: Settings) -> list[Path]:
    """Everything secret on this machine, for Gradio's blocked_paths (defence in depth)."""
    from chatdoc.config import REPO_ROOT

    paths = [Path("/etc"), Path("/proc"), Path("/root"), Path("/home"), Path("/var"), REPO_ROOT, s.data_path,
             Path.home()]
    return [p.resolve() for p in paths]


def _storage_health() -> dict:
    from chatdoc.memory import health

    try:
        return dict(health())
    except Exception as e:  # noqa: BLE001 - /healthz must answer
        return {"ok": False, "error": type(e).__name__}


def login_html(target: str, error: str | None) -> str:
    from chatdoc.ui.text import escape_html

    title = "Researcher log-in" if _view_role(target) == "researcher" else "Staff log-in"
    err = f'<p id="login-error" role="alert">{escape_html(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>chatdoc — {title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:360px;margin:10vh auto;padding:0 16px}}
label{{display:block;margin:12px 0 4px}}input{{width:100%;padding:8px;font-size:1rem;box-sizing:border-box}}
button{{margin-top:16px;padding:8px 16px;font-size:1rem}}#login-error{{color:#b00020;font-weight:600}}</style>
</head><body><h1>{title}</h1>{err}
<form method="post" action="/auth/login" id="login-form">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
<input type="hidden" name="next" value="{escape_html(target)}">
<button type="submit" id="login-btn">Log in</button></form></body></html>"""


def serve(host: str | None = None, port: int | None = None, warm: bool = True,
          service: Consultations | None = None) -> None:
    """Start the app (blocking) on ``ui.host``/``ui.port`` unless overridden, on ``service`` (built when None)."""
    import uvicorn

    from chatdoc.log import setup_logging

    s = get_settings()
    host = host or s.ui.host
    port = s.ui.port if port is None else port
    setup_logging()
    app = build_app(s, service, warm=warm)
    logger.info("ui: serving on http://{}:{} (patients /, staff /staff, researchers /lab)", host, port)
    from chatdoc.memory import exit_on_sigterm

    exit_on_sigterm()  # SIGTERM -> normal exit, so atexit stops the embedded Redis this process started
    # No access log: URLs can carry a resume link (?session=<id>), which is a secret.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=3)
