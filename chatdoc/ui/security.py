"""The app's front door: one ASGI middleware around the FastAPI app and its three mounted Gradio apps.

Deny by default. Gradio serves many routes (file=, upload, deep_link, proxy=, run/call/api, token,
info, openapi, mcp, ...) that chatdoc does not use; mounted apps do not get Gradio's path checks
(those only apply to ``launch()``). So only the routes the pages actually use pass (:data:`ROUTES`),
and everything else is a 404. On top:

  * Host allow-list (``security.allowed_hosts``; default the listening host and localhost names);
  * Origin check: a request carrying an ``Origin`` that is not its own origin or in
    ``security.allowed_origins`` is refused, and no ``Access-Control-*`` header leaves the app
    except for an allowed origin (Gradio's own CORS middleware trusts any origin for a non-localhost Host);
  * request bodies capped at ``security.max_upload_bytes``;
  * ``queue/join`` bodies checked: ``fn_index`` in range (else 404, Gradio answers 500), and no
    client-supplied file references (none of chatdoc's inputs takes a file);
  * the staff/lab pages redirect to the log-in page when there is no valid session;
  * security headers on every response: CSP with a per-response nonce for the page's inline scripts,
    ``frame-ancestors 'none'`` + ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy: no-referrer``,
    ``Cache-Control: no-store`` (pages and API answers carry health data; only hashed assets are cached).

Written as a plain ASGI middleware (not Starlette's BaseHTTPMiddleware) so the SSE streams of the
queue pass through untouched.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from chatdoc.log import logger

# Per mount prefix ("", "/staff", "/lab"): (methods, path pattern after the prefix).
_GET = frozenset({"GET", "HEAD"})
ROUTES: list[tuple[frozenset[str], re.Pattern]] = [
    (_GET, re.compile(r"/?")),
    (_GET, re.compile(r"/assets/[\w.\-]+")),
    (_GET, re.compile(r"/static/(?:js|img|fonts)/[\w.\-]+")),
    (_GET, re.compile(r"/theme\.css")),
    (_GET, re.compile(r"/config/?")),
    (_GET, re.compile(r"/gradio_api/heartbeat/\w+")),
    (_GET, re.compile(r"/gradio_api/queue/data")),
    (frozenset({"POST"}), re.compile(r"/gradio_api/queue/join")),
]
# The app's own routes (absolute paths).
OWN_ROUTES: list[tuple[frozenset[str], re.Pattern]] = [
    (_GET, re.compile(r"/healthz")),
    (frozenset({"GET", "HEAD", "POST"}), re.compile(r"/auth/login")),
    (frozenset({"POST"}), re.compile(r"/auth/logout")),
    (_GET, re.compile(r"/exports/[\w\-]{20,100}")),
]
_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])")


def csp(nonce: str) -> str:
    return (
        "default-src 'self'; "
        # Gradio's HTML component compiles its templates with Function(): 'unsafe-eval' is needed; inline
        # <script> still needs this response's nonce and nothing loads from another origin.
        f"script-src 'self' 'nonce-{nonce}' 'unsafe-eval'; "
        "style-src 'self' 'unsafe-inline'; "  # Svelte sets style attributes
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; media-src 'self' blob:; "
        "worker-src 'self' blob:; manifest-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


class _Reject(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


class SecurityMiddleware:
    """See the module docstring. ``mounts`` maps a prefix to (number of events, protected role or None);
    ``is_logged_in(scope, role)`` says whether the request's session has that role."""

    def __init__(self, app, *, settings, mounts: dict[str, tuple[int, str | None]],
                 is_logged_in: Callable[[dict, str], bool]):
        self.app = app
        sec = settings.security
        self.max_body = sec.max_upload_bytes
        hosts = list(sec.allowed_hosts) or [settings.ui.host, "localhost", "127.0.0.1", "[::1]", "::1"]
        self.hosts = {h.lower() for h in hosts if h and h not in ("0.0.0.0", "::")}
        if not sec.allowed_hosts and settings.ui.host in ("0.0.0.0", "::"):
            logger.warning("ui: listening on all interfaces but security.allowed_hosts is empty: only localhost "
                           "names are answered; set security.allowed_hosts to the public host name")
        self.origins = {o.rstrip("/").lower() for o in sec.allowed_origins}
        self.trust_proxy = sec.trust_proxy_headers
        self.mounts = dict(sorted(mounts.items(), key=lambda kv: -len(kv[0])))  # longest prefix first
        self.is_logged_in = is_logged_in

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _header(scope, name: bytes) -> str | None:
        for k, v in scope.get("headers") or []:
            if k == name:
                return v.decode("latin-1")
        return None


    def _host_ok(self, host: str) -> bool:
        h = host.strip().lower()
        if h.startswith("["):
            name = h[: h.find("]") + 1] if "]" in h else h
        else:
            name = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
        return name in self.hosts

    def _route(self, method: str, path: str) -> tuple[str, str | None] | None:
        """(mount prefix, protected role) of an allowed route, or None."""
        for methods, rx in OWN_ROUTES:
            if method in methods and rx.fullmatch(path):
                return ("#own", None)
        for prefix, (_, role) in self.mounts.items():
            if prefix and not (path == prefix or path.startswith(prefix + "/")):
                continue
            rest = path[len(prefix):]
            for methods, rx in ROUTES:
                if method in methods and rx.fullmatch(rest):
                    return (prefix, role)
            return None  # the longest matching mount decides
        return None

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":  # no websockets are used
            return await _respond(send, 404, "Not found.")
        method, path = scope["method"], scope["path"]
        host = self._header(scope, b"host") or ""
        scheme = request_scheme(scope, self.trust_proxy)
        nonce = secrets.token_urlsafe(16)
        try:
            if not self._host_ok(host):
                raise _Reject(400, "Unknown host.")
            origin = self._header(scope, b"origin")
            own = f"{scheme}://{host}".lower()
            allowed_origin = origin is not None and origin.rstrip("/").lower() in self.origins
            # With Referrer-Policy no-referrer a browser's form POST says "Origin: null"; accepted only on the
            # two log-in forms (log-out carries a CSRF token; a forged log-in needs the password anyway).
            null_ok = origin == "null" and path in ("/auth/login", "/auth/logout")
            if origin is not None and origin.lower() != own and not allowed_origin and not null_ok:
                raise _Reject(403, "Cross-origin requests are not allowed.")
            if method == "OPTIONS":
                if allowed_origin:
                    return await _respond(send, 204, "", extra=_cors(origin), nonce=nonce)
                raise _Reject(403, "Cross-origin requests are not allowed.")
            hit = self._route(method, path)
            if hit is None:
                raise _Reject(404, "Not found.")
            prefix, role = hit
            length = self._header(scope, b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                raise _Reject(413, "The request is too large.")
            if role is not None and method in _GET and path.rstrip("/") == prefix and not self.is_logged_in(scope, role):
                return await _redirect(send, "/auth/login?next=" + quote(prefix + "/", safe="/"), nonce)
            if not ("/assets/" in path or "/static/" in path):
                # HTML gets a nonce per response: keep it uncompressed (Gradio's Brotli middleware)
                scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"accept-encoding"]}
            if path.endswith("/gradio_api/queue/join"):
                body = await _read_body(receive, self.max_body)
                self._check_join(body, self.mounts[prefix][0])
                receive = _replay(body)
            else:
                receive = _capped(receive, self.max_body)
        except _Reject as r:
            if r.status >= 400 and r.status != 404:
                logger.info("ui: refused {} {} ({})", method, path[:80], r.status)
            return await _respond(send, r.status, r.message, nonce=nonce)

        html = {"on": False}
        cors = _cors(origin) if allowed_origin else []

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if not k.lower().startswith(b"access-control-")
                           and k.lower() not in (b"content-security-policy", b"x-frame-options")]
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                cacheable = "/assets/" in path or "/static/" in path or path.endswith("/theme.css")
                if ctype.startswith(b"text/html"):
                    html["on"] = True
                    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                    html["start"] = {**message, "headers": headers + _security_headers(nonce, cacheable) + cors}
                    html["body"] = b""
                    return
                message = {**message, "headers": headers + _security_headers(nonce, cacheable) + cors}
            elif message["type"] == "http.response.body" and html["on"]:
                html["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                body = _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode() + b'"', html["body"])
                start = html["start"]
                start["headers"] = start["headers"] + [(b"content-length", str(len(body)).encode())]
                await send(start)
                message = {"type": "http.response.body", "body": body, "more_body": False}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except _Reject as r:  # the body grew past the cap while the app read it
            await _respond(send, r.status, r.message, nonce=nonce)

    def _check_join(self, body: bytes, n_events: int) -> None:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise _Reject(400, "Malformed request.") from None
        if not isinstance(payload, dict):
            raise _Reject(400, "Malformed request.")
        fn = payload.get("fn_index")
        if not isinstance(fn, int) or isinstance(fn, bool) or not 0 <= fn < n_events:
            raise _Reject(404, "Unknown event.")
        if _has_file_ref(payload.get("data")):
            raise _Reject(400, "Files are not accepted.")


def _has_file_ref(value, depth: int = 0) -> bool:
    """Any dict that Gradio would treat as a file (``path``/``url`` keys or a FileData ``meta``)."""
    if depth > 20:
        return True
    if isinstance(value, dict):
        if "path" in value or "url" in value or "file" in value or (
                isinstance(value.get("meta"), dict) and "_type" in value["meta"]):
            return True
        return any(_has_file_ref(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_has_file_ref(v, depth + 1) for v in value)
    return False


def _cors(origin: str) -> list[tuple[bytes, bytes]]:
    return [(b"access-control-allow-origin", origin.encode()), (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", b"GET, POST"), (b"access-control-allow-headers", b"content-type"),
            (b"vary", b"Origin")]


def _security_headers(nonce: str, cacheable: bool = False) -> list[tuple[bytes, bytes]]:
    h = [
        (b"content-security-policy", csp(nonce).encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    ]
    if not cacheable:
        h.append((b"cache-control", b"no-store"))
    return h


async def _respond(send, status: int, text: str, extra=None, nonce: str | None = None) -> None:
    body = json.dumps({"detail": text}).encode() if text else b""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += _security_headers(nonce or secrets.token_urlsafe(16)) + list(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send, location: str, nonce: str) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")] + _security_headers(nonce)
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _read_body(receive, cap: int) -> bytes:
    body = b""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        body += msg.get("body", b"")
        if len(body) > cap:
            raise _Reject(413, "The request is too large.")
        if not msg.get("more_body"):
            break
    return body


def _replay(body: bytes):
    done = {"sent": False}

    async def receive():
        if not done["sent"]:
            done["sent"] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _capped(receive, cap: int):
    seen = {"n": 0}

    async def wrapped():
        msg = await receive()
        if msg["type"] == "http.request":
            seen["n"] += len(msg.get("body", b""))
            if seen["n"] > cap:
                raise _Reject(413, "The request is too large.")
        return msg

    return wrapped


def request_scheme(scope_or_request, trust_proxy: bool) -> str:
    """``http`` or ``https`` as the client used it (``X-Forwarded-Proto`` only when the proxy is trusted)."""
    scope = scope_or_request.scope if hasattr(scope_or_request, "scope") else scope_or_request
    if trust_proxy:
        for k, v in scope.get("headers") or []:
            if k == b"x-forwarded-proto" and v.strip():
                return v.decode("latin-1").split(",")[0].strip().lower()
    return scope.get("scheme", "http")


def client_address(scope_or_request, trust_proxy: bool) -> str:
    """The client's address (the first ``X-Forwarded-For`` hop only when the proxy is trusted)."""
    scope = scope_or_request.scope if hasattr(scope_or_request, "scope") else scope_or_request
    if trust_proxy:
        for k, v in scope.get("headers") or []:
            if k == b"x-forwarded-for":
                return v.decode("latin-1").split(",")[0].strip()[:64]
    client = scope.get("client")
    return client[0] if client else "?"


def same_site_url(value: str | None, default: str) -> str:
    """A redirect target that stays on this site (a path), else ``default``."""
    v = value or ""
    parts = urlsplit(v)
    if not v.startswith("/") or v.startswith("//") or parts.scheme or parts.netloc or "\\" in v:
        return default
    return v
