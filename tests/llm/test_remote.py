"""The OpenAI-compatible remote backend (model.backend: openai) against real servers on loopback.

* llama-cpp-python's server (``python -m llama_cpp.server``), always where llama-cpp-python is installed, serving the
  built-in GGUF. It has no ``/lora-adapters`` and no per-request ``"lora"``; with a config file listing the base
  and an alias for the shipped adapter (the same GGUF + its GGUF LoRA) it chooses the adapter by ``"model": name``
  the way vLLM does, so these tests run the ``vllm`` flavour's adapter path against it.
* llama.cpp's own ``llama-server`` (``CHATDOC_LLAMA_SERVER_BIN`` or on PATH; skipped without it): the ``llamacpp``
  flavour, ``GET /lora-adapters`` and per-request ``"lora"``.
* httpx's MockTransport for what a real server cannot be made to do on cue (a 503, a stream that breaks).
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import httpx
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("sse_starlette")

from chatdoc.config import load_settings  # noqa: E402
from chatdoc.llm import AdapterError, EngineUnavailable, GenerationRequest, Turn, render  # noqa: E402
from chatdoc.llm.remote import RemoteBackend  # noqa: E402
from chatdoc.llm.serve import ServerProcess, free_port, llama_server_binary  # noqa: E402

pytestmark = pytest.mark.slow

SHIPPED = "consult-gemma3-270m"
PROMPT = render("You are a careful clinical assistant taking a history. Ask one question at a time.",
                [Turn("patient", "I have had a headache for three days.")])


def _remote(server: ServerProcess, adapter=None, **model) -> RemoteBackend:
    return RemoteBackend(load_settings(model={**server.settings_overrides(), **model}, adapters={"active": adapter}))


def _greedy(b, adapter=None, n=24, stop=(), **kw):
    return b.generate(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=n, stop=stop, adapter=adapter, **kw))


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(load_settings(model={"threads": 2}), adapters=(SHIPPED,)).start()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def remote(server):
    b = _remote(server)
    yield b
    b.close()


# ------------------------------------------------------------------------------------------ generation
def test_streamed_text_equals_the_non_streamed_completion(remote, server):
    h = remote.stream(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=24, stop=(), adapter=None))
    pieces = list(h)
    assert len(pieces) >= 2 and "".join(pieces).strip() == h.result.text
    body = {**remote._payload(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=24, stop=()), None),
            "stream": False}
    body.pop("stream_options")
    plain = httpx.post(server.url + "/v1/completions", json=body, timeout=60).json()
    assert plain["choices"][0]["text"].strip() == h.result.text
    r = h.result
    assert r.new_tokens == 24 and r.stopped_by == "length" and r.decode_loop == "openai:vllm"
    assert r.prompt_tokens == plain["usage"]["prompt_tokens"] and 0 < r.ttft_s <= r.total_s


def test_stop_sequences(remote):
    free = _greedy(remote, n=32).text
    words = free.split()
    assert len(words) >= 4, free
    stop = " " + words[2]
    cut = free[: free.index(stop)]
    r = _greedy(remote, n=32, stop=(stop,))
    assert r.text == cut.strip() and r.stopped_by == "stop" and r.new_tokens < 32
    kept = _greedy(remote, n=32, stop=(stop,), include_stop=True)  # cut here, not by the server
    assert kept.text == (cut + stop).strip()


def test_count_tokens_asks_the_server(remote):
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(remote.resolved.path), vocab_only=True, verbose=False)
    assert remote.count_tokens(PROMPT) == len(vocab.tokenize(PROMPT.encode(), add_bos=True, special=True))
    assert remote._tokenize_route == "/extras/tokenize"  # llama-cpp-python's; llama.cpp and vLLM: /tokenize


# ------------------------------------------------------------------------------------------ adapters
def test_adapter_listing_and_per_request_selection(remote):
    listed = {a["name"]: a for a in remote.list_adapters()}
    assert listed[SHIPPED]["served"] and listed[SHIPPED]["ok"] and listed[SHIPPED]["compatible"]
    assert listed[SHIPPED]["card"]["base_model"]  # the local card of the adapter the server runs
    base = _greedy(remote, None, n=12).text
    tuned = _greedy(remote, SHIPPED, n=12)
    assert tuned.adapter == SHIPPED and tuned.text != base
    assert _greedy(remote, None, n=12).text == base
    remote.activate_adapter(SHIPPED)
    try:
        assert remote.generate(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=12, stop=())).text \
            == tuned.text
        assert remote.info()["active_adapter"] == SHIPPED and remote.info()["engine"]["reachable"]
    finally:
        remote.activate_adapter(None)
    with pytest.raises(AdapterError):
        remote.activate_adapter("no-such-adapter")


# ------------------------------------------------------------------------------------------ failures
@pytest.fixture()
def victim():
    srv = ServerProcess(load_settings(model={"threads": 1})).start()
    yield srv
    srv.kill()
    srv.close()


def test_a_dead_or_hung_engine_is_engine_unavailable_within_5_s(victim):
    b = _remote(victim, remote_timeout_s=1.0, remote_retries=1)
    assert _greedy(b, n=2).new_tokens == 2
    victim.signal(signal.SIGSTOP)  # hung: accepts connections, answers nothing
    t0 = time.perf_counter()
    with pytest.raises(EngineUnavailable) as e:
        _greedy(b, n=4)
    assert time.perf_counter() - t0 < 5.0 and "Timeout" in str(e.value)
    assert "try again" in e.value.patient_message
    victim.signal(signal.SIGCONT)

    h = b.stream(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=400, stop=(), adapter=None))
    it = iter(h)
    next(it)
    t0 = time.perf_counter()
    victim.kill()  # killed mid-reply: no retry (the patient has seen text)
    with pytest.raises(EngineUnavailable, match="mid-reply"):
        for _ in it:
            pass
    assert time.perf_counter() - t0 < 5.0
    t0 = time.perf_counter()
    with pytest.raises(EngineUnavailable, match="2 times"):  # refused: retried once, then given up
        _greedy(b, n=4)
    assert time.perf_counter() - t0 < 5.0
    b.close()


class _LateRelay:
    """A TCP relay to ``target`` that starts listening only after ``delay_s`` (connections before are refused)."""

    def __init__(self, target: int, delay_s: float):
        self.port, self.target, self.listening_at = free_port(), target, None
        self._sock = None
        self._timer = threading.Timer(delay_s, self._listen)

    def start(self):
        """Start the countdown (right before the request, so a slow machine cannot let the delay pass first)."""
        self._timer.start()

    def _listen(self):
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self.listening_at = time.perf_counter()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self._timer.cancel()
        if self._sock:
            self._sock.close()


def test_a_transient_refusal_is_retried(server):
    relay = _LateRelay(server.port, 0.6)
    try:
        b = RemoteBackend(load_settings(model={**server.settings_overrides(), "remote_url": f"http://127.0.0.1:{relay.port}",
                                               "remote_retries": 3}, adapters={"active": None}))
        t0 = time.perf_counter()
        relay.start()
        r = _greedy(b, n=4)
        assert r.new_tokens == 4 and relay.listening_at and relay.listening_at > t0  # the first try was refused
        b.close()
    finally:
        relay.close()


# ------------------------------------------------------------------------------------------ protocol (mock server)
def _sse(*texts, finish="length"):
    lines = [f'data: {json.dumps({"choices": [{"text": t, "finish_reason": None}]})}\n\n' for t in texts]
    lines.append(f'data: {json.dumps({"choices": [{"text": "", "finish_reason": finish}], "usage": {"prompt_tokens": 5, "completion_tokens": len(texts)}})}\n\n')
    return "".join(lines) + "data: [DONE]\n\n"


def _mock(handler, flavour="llamacpp", **model):
    s = load_settings(model={"backend": "openai", "remote_url": "http://engine.test", "remote_flavour": flavour,
                             "remote_model": "base", **model}, adapters={"active": None})
    return RemoteBackend(s, transport=httpx.MockTransport(handler))


def test_llamacpp_flavour_chooses_the_adapter_by_lora_id():
    seen = []

    def handler(req: httpx.Request):
        if req.url.path == "/lora-adapters":
            return httpx.Response(200, json=[{"id": 0, "path": "/m/other.gguf", "scale": 0.0},
                                             {"id": 1, "path": f"/m/gguf-lora/{SHIPPED}-0123456789ab.gguf", "scale": 0.0}])
        seen.append(json.loads(req.content))
        return httpx.Response(200, text=_sse("Does", " it", " hurt?"), headers={"content-type": "text/event-stream"})

    b = _mock(handler)
    assert set(b.served_adapters()) == {"other", SHIPPED}
    assert _greedy(b, SHIPPED).text == "Does it hurt?"
    assert _greedy(b, None).text == "Does it hurt?"
    assert seen[0]["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}]
    assert seen[1]["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.0}]  # the base: every adapter named, at 0
    assert seen[0]["temperature"] == 0.0 and seen[0]["stream"] and "repeat_penalty" in seen[0]
    with pytest.raises(AdapterError, match="--lora"):
        b.activate_adapter("not-on-the-server")


def test_vllm_flavour_chooses_by_model_name_and_loads_at_run_time():
    calls = []
    models = [{"id": "base", "parent": None}]

    def handler(req: httpx.Request):
        calls.append((req.method, req.url.path))
        if req.url.path == "/v1/models":
            return httpx.Response(200, json={"data": models})
        if req.url.path == "/v1/load_lora_adapter":
            body = json.loads(req.content)
            models.append({"id": body["lora_name"], "parent": "base", "root": body["lora_path"]})
            return httpx.Response(200, text="ok")
        body = json.loads(req.content)
        return httpx.Response(200, text=_sse(body["model"]), headers={"content-type": "text/event-stream"})

    b = _mock(handler, flavour="vllm")
    assert _greedy(b, None).text == "base"
    assert _greedy(b, SHIPPED).text == SHIPPED  # not served: loaded with /v1/load_lora_adapter, then chosen by name
    assert ("POST", "/v1/load_lora_adapter") in calls
    assert {a["name"]: a for a in b.list_adapters()}[SHIPPED]["served"]


def test_5xx_is_retried_but_a_broken_stream_after_text_is_not():
    n = {"posts": 0}

    def flaky(req: httpx.Request):
        n["posts"] += 1
        if n["posts"] == 1:
            return httpx.Response(503, text="loading")
        return httpx.Response(200, text=_sse("Hello", "?", finish="stop"), headers={"content-type": "text/event-stream"})

    b = _mock(flaky, remote_retries=2)
    b._served = {}
    r = _greedy(b)
    assert r.text == "Hello?" and r.stopped_by == "stop" and n["posts"] == 2 and r.prompt_tokens == 5

    class Broken(httpx.SyncByteStream):
        def __iter__(self):
            yield _sse("Hello")[:80].encode()
            raise httpx.RemoteProtocolError("peer closed connection")

    n["posts"] = 0

    def broken(req: httpx.Request):
        n["posts"] += 1
        return httpx.Response(200, stream=Broken(), headers={"content-type": "text/event-stream"})

    b = _mock(broken, remote_retries=3)
    b._served = {}
    with pytest.raises(EngineUnavailable, match="mid-reply"):
        _greedy(b)
    assert n["posts"] == 1


def test_missing_url_is_a_clear_error():
    with pytest.raises(EngineUnavailable, match="remote_url"):
        RemoteBackend(load_settings(model={"backend": "openai"}))


# ------------------------------------------------------------------------------------------ llama.cpp's own server
@pytest.mark.skipif(not llama_server_binary(), reason="llama-server not found (CHATDOC_LLAMA_SERVER_BIN or PATH)")
def test_llama_server_lists_and_applies_lora_per_request():
    with ServerProcess(load_settings(model={"threads": 2}), engine="llama-server", adapters=(SHIPPED,)) as srv:
        b = _remote(srv)
        assert srv.flavour == "llamacpp" and list(b.served_adapters()) == [SHIPPED]
        base = _greedy(b, None, n=12).text
        tuned = _greedy(b, SHIPPED, n=12).text
        assert tuned != base and _greedy(b, None, n=12).text == base
        assert b.count_tokens(PROMPT) > 10 and b._tokenize_route == "/tokenize"
        b.close()
