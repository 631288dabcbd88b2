"""Finding 1 (critical): anonymous arbitrary file read through Gradio's file routes.

The attack that worked: an anonymous patient session sends a chat *history* naming a file; the send
handler returned it, Gradio copied the file into its cache and served it at ``/gradio_api/file=...``.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from chatdoc.config import REPO_ROOT
from tests.fixtures_app import RESEARCHER, STAFF
from tests.security.conftest import login_client
from tests.security.gradio_raw import GradioRaw

pytestmark = pytest.mark.slow

FILE_ROUTES = ("/gradio_api/file={p}", "/file={p}", "/gradio_api/file/{p}", "/file/{p}", "/gradio_api/proxy={p}")


def _secrets(ui_app, redis_server) -> dict[Path, bytes]:
    """Files an attacker wants, with a marker of their content."""
    files = [Path("/etc/passwd"), Path(redis_server.password_path), REPO_ROOT / "configs" / "default.yaml",
             REPO_ROOT / "pyproject.toml", Path("/proc/self/environ")]
    files += [p for p in Path(redis_server.dir).rglob("*") if p.is_file() and ".aof" in p.name][:3]
    out = {}
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if len(data.strip()) >= 8:
            out[f] = data.strip()[:24]
    assert Path("/etc/passwd") in out and Path(redis_server.password_path) in out
    return out


def _file_message(path: str) -> dict:
    return {"role": "user", "content": [{"type": "file", "file": {"path": path, "meta": {"_type": "gradio.FileData"}}}]}


def test_chat_history_from_the_client_cannot_name_a_file(ui_app, redis_server):
    g = GradioRaw(ui_app.base)
    send = g.fn_index("on_send")
    assert g.call(g.fn_index("on_load"), [])["messages"][-1]["success"]
    assert g.call(g.fn_index("on_consent"), [None])["messages"][-1]["success"]
    # The server owns the conversation: the send handler takes the message and the server-side state only.
    assert len(g.config["dependencies"][send]["inputs"]) == 2
    for target in ("/etc/passwd", str(redis_server.password_path)):
        for data in (["hello", [_file_message(target)], None],  # the old (text, history, state) shape
                     [[_file_message(target)], None],
                     [{"text": "hi", "files": [{"path": target}]}, None]):
            res = g.call(send, data)
            text = g.outputs_text(res)
            assert target not in text
            for url in set(re.findall(r'"url": "([^"]+)"', text)):
                assert httpx.get(url, timeout=30).status_code != 200, url
    # a normal message still works and comes back as text
    res = g.call(send, ["I have had a cough for a week", None])
    assert res["messages"][-1].get("success"), res["messages"][-1]


@pytest.mark.parametrize("prefix", ["", "/staff", "/lab"])
def test_no_file_route_serves_a_file(ui_app, redis_server, prefix):
    secrets = _secrets(ui_app, redis_server)
    anon = httpx.Client(base_url=ui_app.base, timeout=30)
    staff = login_client(ui_app.base, RESEARCHER, "/lab/") if prefix == "/lab" else login_client(ui_app.base, STAFF)
    for client in (anon, staff):
        for path, marker in secrets.items():
            for route in FILE_ROUTES:
                for p in (str(path), str(path).lstrip("/"), "../../../.." + str(path)):
                    r = client.get(prefix + route.format(p=p))
                    assert r.status_code in (400, 401, 403, 404), (prefix, route, p, r.status_code)
                    assert marker not in r.content
    # static assets the pages need are still served
    page = anon.get(prefix + "/") if not prefix else staff.get(prefix + "/")
    assert page.status_code == 200
    asset = re.search(r'src="\./(assets/[^"]+\.js)"', page.text).group(1)
    assert anon.get(f"{prefix}/{asset}").status_code == 200


def test_every_patient_event_refuses_file_references(ui_app):
    """No input of the public app accepts a file: a file-like payload in any input is refused."""
    g = GradioRaw(ui_app.base)
    for i, dep in enumerate(g.config["dependencies"]):
        data = [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}] * max(1, len(dep["inputs"]))
        r = g.http.post(g.url("/gradio_api/queue/join"),
                        json={"data": data, "fn_index": i, "session_hash": g.session_hash})
        assert r.status_code == 400, (i, r.status_code, r.text[:100])
