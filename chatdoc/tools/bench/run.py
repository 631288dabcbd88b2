"""``chatdoc bench run``: end-to-end speed of the real path (service -> graph -> model -> Redis).

Measures, in one process unless noted:
* model load: cold (fresh GGUF materialization) and cached, in a subprocess via ``chatdoc.tools.bench.llm``;
  the in-process load of the shared backend is reported as well;
* model-only TTFT and decode tokens/s on the fixed bench prompt (greedy, ``new_tokens`` tokens);
* the same prompt and token count through llama.cpp (``llama-cpp-python``, the same GGUF file, same
  thread count, greedy/temperature 0) and the ratio chatdoc decode tok/s / llama.cpp decode tok/s;
  "not installed" when ``llama_cpp`` cannot be imported. The two alternate for ``ROUNDS`` runs each
  (medians reported, ratio = median of the per-round ratios), because this shared VM's speed drifts;
* a scripted ten-turn consultation through ``chatdoc.service``: per-turn latency p50/p95, generation
  time inside each turn (the backend's ``stream`` is wrapped to time it), graph overhead = turn time -
  generation time, Redis time (``redis.Redis.execute_command`` / pipeline ``execute`` are wrapped);
* 1, 4 and 8 concurrent scripted consultations (threads through the service): turns/s and p95;
* peak RSS of the process.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

SCRIPT = [
    "Hello, I'm a 34-year-old woman. I've had a sore throat and a mild fever since Tuesday.",
    "It started three days ago and it's getting a bit worse.",
    "My temperature was 38.2 this morning.",
    "It hurts to swallow, especially solid food.",
    "No, I don't have a cough or shortness of breath.",
    "I have mild asthma, that's all.",
    "I use a salbutamol inhaler when needed.",
    "No allergies that I know of.",
    "I don't smoke and I drink a glass of wine at weekends.",
    "No, nothing else. Thank you.",
]


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return round(v[lo] + (v[hi] - v[lo]) * (k - lo), 4)


class _Timers:
    """Thread-local accumulators for generation and Redis time, installed by wrapping."""

    def __init__(self):
        self.local = threading.local()

    def add(self, key: str, dt: float) -> None:
        d = getattr(self.local, "acc", None)
        if d is None:
            d = self.local.acc = {}
        d[key] = d.get(key, 0.0) + dt
        if key == "gen":
            d["gen_calls"] = d.get("gen_calls", 0) + 1

    def take(self) -> dict:
        d = getattr(self.local, "acc", None) or {}
        self.local.acc = {}
        return d


@contextlib.contextmanager
def instrument(backend):
    """Wrap backend.stream (generation time) and redis calls (Redis time) for this process."""
    import redis
    import redis.client

    timers = _Timers()
    orig_stream = backend.stream

    def stream(request, cancel=None):
        t0 = time.perf_counter()
        h = orig_stream(request, cancel)
        inner = h.pieces

        def pieces():
            t1 = time.perf_counter()
            try:
                yield from inner
            finally:
                timers.add("gen", time.perf_counter() - t1 + (t1 - t0))

        h.pieces = pieces()
        return h

    orig_exec = redis.Redis.execute_command
    orig_pipe = redis.client.Pipeline.execute

    def execute_command(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return orig_exec(self, *a, **kw)
        finally:
            if not isinstance(self, redis.client.Pipeline):
                timers.add("redis", time.perf_counter() - t0)

    def pipe_execute(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return orig_pipe(self, *a, **kw)
        finally:
            timers.add("redis", time.perf_counter() - t0)

    backend.stream = stream
    redis.Redis.execute_command = execute_command
    redis.client.Pipeline.execute = pipe_execute
    try:
        yield timers
    finally:
        backend.__dict__.pop("stream", None)
        redis.Redis.execute_command = orig_exec
        redis.client.Pipeline.execute = orig_pipe


def scripted_consultation(svc, timers: _Timers, turns: int = 10) -> list[dict]:
    """One scripted consultation through the service; per-turn timings."""
    s = svc.start_consultation()
    sid = s.session_id
    out = []
    try:
        timers.take()
        svc.record_consent(sid)
        timers.take()
        for msg in SCRIPT[:turns]:
            t0 = time.perf_counter()
            r = svc.send_message(sid, msg)
            dt = time.perf_counter() - t0
            acc = timers.take()
            out.append({"turn_s": dt, "gen_s": acc.get("gen", 0.0), "redis_s": acc.get("redis", 0.0),
                        "gen_calls": acc.get("gen_calls", 0)})
            if getattr(r, "done", False):
                break
    finally:
        with contextlib.suppress(Exception):
            svc.delete_consultation(sid)
    return out


def _turn_stats(rows: list[dict]) -> dict:
    t = [r["turn_s"] for r in rows]
    g = [r["gen_s"] for r in rows]
    o = [r["turn_s"] - r["gen_s"] for r in rows]
    rd = [r["redis_s"] for r in rows]
    return {
        "turns": len(rows),
        "turn_p50_s": _pct(t, 0.5),
        "turn_p95_s": _pct(t, 0.95),
        "turn_mean_s": round(statistics.mean(t), 4) if t else None,
        "generation_mean_s": round(statistics.mean(g), 4) if g else None,
        "graph_overhead_p50_s": _pct(o, 0.5),
        "graph_overhead_mean_s": round(statistics.mean(o), 4) if o else None,
        "redis_mean_s": round(statistics.mean(rd), 5) if rd else None,
        "model_calls_per_turn": round(statistics.mean(r["gen_calls"] for r in rows), 2) if rows else None,
    }


def concurrent(svc, timers: _Timers, users: int, turns: int) -> dict:
    rows: list[dict] = []
    errors: list[str] = []
    lock = threading.Lock()

    def user():
        try:
            r = scripted_consultation(svc, timers, turns)
            with lock:
                rows.extend(r)
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=user, name=f"bench-user-{i}") for i in range(users)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"users": users, "turns": len(rows), "wall_s": round(wall, 2),
            "turns_per_s": round(len(rows) / wall, 3) if wall else None,
            "turn_p50_s": _pct([r["turn_s"] for r in rows], 0.5), "turn_p95_s": _pct([r["turn_s"] for r in rows], 0.95),
            "errors": errors[:3]}


ROUNDS = 3  # decode speed on a shared 2-core VM drifts +-30% minute to minute: alternate chatdoc and llama.cpp


def _median_run(runs: list[dict]) -> dict:
    mid = sorted(runs, key=lambda r: r["decode_tok_s"])[len(runs) // 2]
    return {**mid, "decode_tok_s_runs": [r["decode_tok_s"] for r in runs]}


def model_once(backend, prompt: str, new_tokens: int) -> dict:
    from chatdoc.llm import GenerationRequest

    r = backend.generate(GenerationRequest(prompt=prompt, greedy=True, max_new_tokens=new_tokens, stop=(), adapter=None))
    return {"ttft_s": round(r.ttft_s, 4), "decode_tok_s": round(r.decode_tok_s, 2), "new_tokens": r.new_tokens,
            "prompt_tokens": r.prompt_tokens, "decode_loop": r.decode_loop}


def llama_cpp_session(prompt: str, threads: int, gguf_path):
    """(info, once) for llama.cpp on the same GGUF, or (status, None) when it is not installed."""
    try:
        import llama_cpp  # noqa: F401
        from llama_cpp import Llama
    except Exception:  # noqa: BLE001 - missing or broken build: optional
        return {"status": "not installed"}, None
    t0 = time.perf_counter()
    llm = Llama(model_path=str(gguf_path), n_threads=threads, n_threads_batch=threads, n_ctx=2048, verbose=False, seed=0)
    load_s = time.perf_counter() - t0
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    def once(n: int) -> dict:
        llm.reset()
        t_start = time.perf_counter()
        t_first = None
        count = 0
        for _tok in llm.generate(tokens, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
            count += 1
            if t_first is None:
                t_first = time.perf_counter()
            if count >= n:
                break
        end = time.perf_counter()
        tf = t_first or end
        return {"ttft_s": round(tf - t_start, 4), "new_tokens": count,
                "decode_tok_s": round((count - 1) / (end - tf), 2) if count > 1 and end > tf else 0.0}

    info = {"status": "ok", "version": getattr(llama_cpp, "__version__", "?"), "load_s": round(load_s, 3),
            "prompt_tokens": len(tokens), "threads": threads, "gguf": str(gguf_path)}
    return info, once


def decode_vs_llama_cpp(backend, new_tokens: int, threads: int, gguf, llama: bool = True, rounds: int = ROUNDS) -> dict:
    """chatdoc and llama.cpp decode, alternating run by run (so drift of the machine hits both), median of each.

    The ratio is the median of the per-round ratios."""
    from chatdoc.tools.bench.llm import bench_prompt

    prompt = bench_prompt()
    if not llama:
        lc, once = {"status": "skipped"}, None
    elif gguf is None:
        lc, once = {"status": "no GGUF for this base model"}, None
    else:
        lc, once = llama_cpp_session(prompt, threads, gguf)
    model_once(backend, prompt, 4)  # warm-up both
    if once:
        once(4)
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(model_once(backend, prompt, new_tokens))
        if once:
            theirs.append(once(new_tokens))
    out = {"model": _median_run(ours), "llama_cpp": {**lc, **_median_run(theirs)} if theirs else lc, "ratio": None}
    ratios = [a["decode_tok_s"] / b["decode_tok_s"] for a, b in zip(ours, theirs) if b["decode_tok_s"]]
    if ratios:
        out["ratio"] = round(sorted(ratios)[len(ratios) // 2], 3)
        out["ratio_runs"] = [round(r, 3) for r in ratios]
    return out


def _gguf_for(settings):
    from pathlib import Path

    from chatdoc.llm.source import BUILTIN_DEFAULT, builtin_gguf_path

    base = settings.model.base
    if base == BUILTIN_DEFAULT:
        return builtin_gguf_path()
    if str(base).endswith(".gguf"):
        return Path(base).expanduser()
    return None


def load_bench(new_tokens: int, cold: bool) -> dict:
    """Cold/cached load via chatdoc.tools.bench.llm in a fresh subprocess (honest load time and RSS)."""
    from chatdoc.config import get_settings
    from chatdoc.tools.bench.llm import child_command

    q = get_settings().model.quantization
    proc = subprocess.run(child_command(q, new_tokens, None, cold), capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    try:
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"error": "unreadable output from chatdoc.tools.bench.llm"}
    return {k: res.get(k) for k in ("quantization_in_effect", "cold_materialize_s", "cached_load_s", "peak_rss_mb", "base")}


def machine() -> dict:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        import torch

        dev = "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        threads = torch.get_num_threads()
    except Exception:  # noqa: BLE001
        dev, threads = "cpu", os.cpu_count()
    return {"cpu": cpu, "cpus": os.cpu_count(), "device": dev, "torch_threads": threads, "python": sys.version.split()[0],
            "platform": platform.platform()}


def run_bench(new_tokens: int = 64, turns: int = 10, concurrency: tuple[int, ...] = (1, 4, 8), concurrent_turns: int = 4,
              cold: bool = True, llama: bool = True, progress=None) -> dict:
    from chatdoc.config import get_settings
    from chatdoc.llm import get_backend

    say = progress or (lambda m: None)
    out: dict = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    settings = get_settings()
    out["config"] = {"model": settings.model.base, "quantization": settings.model.quantization,
                     "max_new_tokens": settings.generation.max_new_tokens, "new_tokens": new_tokens}
    say("model load (subprocess)")
    out["load"] = load_bench(new_tokens, cold)
    t0 = time.perf_counter()
    backend = get_backend()
    out["load"]["in_process_s"] = round(time.perf_counter() - t0, 3)
    threads = settings.model.threads or machine()["torch_threads"]
    out["config"]["threads"] = threads
    say(f"model-only generation{' and llama.cpp, alternating' if llama else ''}")
    d = decode_vs_llama_cpp(backend, new_tokens, threads, _gguf_for(settings) if llama else None, llama)
    out["model"], out["llama_cpp"] = d["model"], d["llama_cpp"]
    out["decode_ratio_vs_llama_cpp"] = d["ratio"]
    if "ratio_runs" in d:
        out["decode_ratio_runs"] = d["ratio_runs"]
    from chatdoc.service import build_service

    svc = build_service(settings)

    with instrument(backend) as timers:
        say(f"scripted {turns}-turn consultation")
        scripted_consultation(svc, timers, 1)  # warm-up: graph compile, Redis connection, first prompts
        rows = scripted_consultation(svc, timers, turns)
        out["consultation"] = _turn_stats(rows)
        out["consultation"]["per_turn"] = [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
        out["concurrency"] = []
        for n in concurrency:
            say(f"{n} concurrent consultations x {concurrent_turns} turns")
            out["concurrency"].append(concurrent(svc, timers, n, concurrent_turns))
    out["peak_rss_mb"] = _peak_rss_mb()
    return out
