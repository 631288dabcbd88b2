"""``chatdoc bench generate`` and ``chatdoc bench llm`` (``python -m chatdoc.tools.bench.llm`` is the same).

``bench generate``: load time, TTFT, decode speed, peak RSS and adapter switch time of the transformers backend per
quantization, each in a fresh subprocess (:func:`child_command`) so that load times and peak RSS are not polluted
by an earlier load in the same process.

``bench llm`` (:func:`run_llm_bench`, ``python -m chatdoc.tools.bench.llm``): decode tok/s and TTFT of every
engine in one run, on the same prompt, the same thread count, greedy: transformers nf4, llama.cpp in-process, and
a llama.cpp server on loopback through the openai backend (llama.cpp's ``llama-server`` when found, else
llama-cpp-python's server), each for the base model and with the shipped adapter. The engines take turns round by
round (a shared VM's speed drifts), medians reported; every round's prompt starts with a different line, so no
engine reuses a cached prefix (TTFT is a cold prefill).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_PROMPT_TURNS = [
    ("patient", "Hello, I have had a sore throat and a mild fever since Tuesday."),
    ("doctor", "I'm sorry to hear that. How high has the temperature been?"),
    ("patient", "About 38.2 this morning, and it hurts to swallow."),
]


def bench_prompt() -> str:
    """The fixed prompt of every decode measurement (this module's and ``chatdoc bench run``'s)."""
    from chatdoc.llm.prompt import Turn, render

    return render("You are a careful clinical assistant.", [Turn(r, t) for r, t in BENCH_PROMPT_TURNS])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one(quant: str, new_tokens: int, adapter: str | None, cold: bool) -> dict:
    """Runs inside the subprocess."""
    from chatdoc.config import load_settings
    from chatdoc.llm.backend import GenerationRequest, TransformersBackend
    from chatdoc.llm.source import resolve

    settings = load_settings(model={"quantization": quant}, adapters={"active": None})
    out: dict = {"quantization_requested": quant}
    if cold:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            resolve(settings.model.base, Path(tmp))
            out["cold_materialize_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    b = TransformersBackend(settings)
    out["cached_load_s"] = round(time.perf_counter() - t0, 2)
    out["quantization_in_effect"] = b.quantization["in_effect"]
    out["memory_footprint_mb"] = round(b.info()["memory_footprint_bytes"] / 2**20, 1)
    prompt = bench_prompt()

    def measure(adapter_name):
        req = GenerationRequest(prompt=prompt, greedy=True, max_new_tokens=new_tokens, stop=(), adapter=adapter_name)
        b.generate(GenerationRequest(prompt=prompt, greedy=True, max_new_tokens=4, stop=(), adapter=adapter_name))
        r = b.generate(req)
        return {
            "ttft_s": round(r.ttft_s, 3),
            "decode_tok_s": round(r.decode_tok_s, 2),
            "new_tokens": r.new_tokens,
            "prompt_tokens": r.prompt_tokens,
        }

    out["base"] = measure(None)
    with tempfile.TemporaryDirectory() as tmp:
        if adapter is None:
            from chatdoc.tools.lora import create_random_adapter

            create_random_adapter(b.resolved, Path(tmp) / "bench-random")
            b.adapters_root = Path(tmp)
            adapter = "bench-random"
        t0 = time.perf_counter()
        b.activate_adapter(adapter)
        out["adapter_first_load_s"] = round(time.perf_counter() - t0, 3)
        out["with_adapter"] = measure(adapter)
        t0 = time.perf_counter()
        b.activate_adapter(None)
        b.activate_adapter(adapter)
        out["adapter_switch_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return out


def child_command(quant: str, new_tokens: int, adapter: str | None, cold: bool) -> list[str]:
    """The command line of one measurement in a fresh Python; it prints one JSON line (:func:`_child`)."""
    code = "import sys; from chatdoc.tools.bench.llm import _child; _child(sys.argv[1:])"
    return [sys.executable, "-c", code, quant, str(new_tokens), adapter or "", "1" if cold else "0"]


def _child(argv: list[str]) -> None:
    from chatdoc.log import setup_logging

    setup_logging(level="WARNING")
    q, n, a, c = argv[0], int(argv[1]), argv[2] or None, argv[3] == "1"
    print(json.dumps(_one(q, n, a, c)))


def run_generate_bench(quants: list[str], new_tokens: int = 64, adapter: str | None = None, cold: bool = True) -> dict:
    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "runs": []}
    for i, q in enumerate(quants):
        proc = subprocess.run(child_command(q, new_tokens, adapter, cold and i == 0), capture_output=True, text=True)
        if proc.returncode != 0:
            results["runs"].append({"quantization_requested": q, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        results["runs"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results



# ---------------------------------------------------------------------------------------------- bench llm
def _machine() -> dict:
    """CPU model and count (chatdoc.tools.bench.run imports this module: no import back)."""
    import platform

    cpu = platform.processor() or "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()}


ENGINES = ("transformers-nf4", "llamacpp", "llamacpp-server")


def _engine(name: str, settings_kw: dict, adapter: str | None, server_engine: str):
    """(backend, closer, description) for one engine of the llm bench."""
    from chatdoc.config import load_settings

    active = {"active": None}
    if name == "transformers-nf4":
        from chatdoc.llm.backend import TransformersBackend

        b = TransformersBackend(load_settings(model={**settings_kw, "backend": "transformers", "quantization": "nf4"},
                                              adapters=active))
        return b, (lambda: None), {"engine": "transformers + bitsandbytes nf4 + peft"}
    if name == "llamacpp":
        from chatdoc.llm.llamacpp import LlamaCppBackend

        b = LlamaCppBackend(load_settings(model={**settings_kw, "backend": "llamacpp"}, adapters=active))
        return b, b.close, {"engine": f"llama-cpp-python {b.info()['engine']['llama_cpp_python']} in-process"}
    from chatdoc.llm.remote import RemoteBackend
    from chatdoc.llm.serve import ServerProcess, llama_server_binary

    engine = server_engine if server_engine != "auto" else ("llama-server" if llama_server_binary() else "llama-cpp-python")
    srv = ServerProcess(load_settings(model=settings_kw), engine=engine, adapters=(adapter,) if adapter else ()).start()
    b = RemoteBackend(load_settings(model={**settings_kw, **srv.settings_overrides()}, adapters=active))

    def close():
        b.close()
        srv.close()

    return b, close, {"engine": f"{engine} on loopback (openai backend, flavour {srv.flavour})", "url": srv.url}


def run_llm_bench(new_tokens: int = 64, rounds: int = 3, threads: int = 2, adapter: str | None = "consult-gemma3-270m",
                  engines: tuple[str, ...] = ENGINES, server_engine: str = "auto", progress=print) -> dict:
    """Decode tok/s and TTFT per engine (base and ``adapter``), alternating engines round by round."""
    import statistics
    from datetime import datetime, timezone

    from chatdoc.llm import GenerationRequest, Turn, render

    settings_kw = {"threads": threads, "device": "cpu"}
    out: dict = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": _machine(),
                 "config": {"new_tokens": new_tokens, "rounds": rounds, "threads": threads, "adapter": adapter,
                            "decoding": "greedy, no stop sequences"}, "engines": {}}
    loaded = {}
    try:
        for name in engines:
            progress(f"loading {name}")
            t0 = time.perf_counter()
            try:
                b, close, desc = _engine(name, settings_kw, adapter, server_engine)
            except Exception as e:  # noqa: BLE001 - an engine that cannot run here is reported, not fatal
                out["engines"][name] = {"error": f"{type(e).__name__}: {e}"}
                continue
            desc["load_s"] = round(time.perf_counter() - t0, 2)
            loaded[name] = (b, close)
            out["engines"][name] = desc
            for a in (None, adapter):  # warm-up: first-token paths, adapter loading / conversion
                b.generate(GenerationRequest(prompt=bench_prompt(), greedy=True, max_new_tokens=4, stop=(), adapter=a))
        runs: dict = {(n, a): [] for n in loaded for a in (None, adapter)}
        for r in range(rounds):
            progress(f"round {r + 1} of {rounds}")
            prompt = render(f"Session {r + 1}. You are a careful clinical assistant.",
                            [Turn(role, text) for role, text in BENCH_PROMPT_TURNS])
            for (name, a), rows in runs.items():
                res = loaded[name][0].generate(GenerationRequest(prompt=prompt, greedy=True, max_new_tokens=new_tokens,
                                                                 stop=(), adapter=a))
                rows.append({"ttft_s": res.ttft_s, "decode_tok_s": res.decode_tok_s, "new_tokens": res.new_tokens,
                             "prompt_tokens": res.prompt_tokens})
        for (name, a), rows in runs.items():
            key = "base" if a is None else "adapter"
            out["engines"][name][key] = {
                "decode_tok_s": round(statistics.median(x["decode_tok_s"] for x in rows), 2),
                "ttft_s": round(statistics.median(x["ttft_s"] for x in rows), 4),
                "decode_tok_s_best": round(max(x["decode_tok_s"] for x in rows), 2),  # the least disturbed run
                "decode_tok_s_runs": [round(x["decode_tok_s"], 2) for x in rows],
                "new_tokens": rows[-1]["new_tokens"], "prompt_tokens": rows[-1]["prompt_tokens"],
            }
    finally:
        for _b, close in loaded.values():
            close()
    ref = out["engines"].get("llamacpp", {}).get("base", {}).get("decode_tok_s")
    for e in out["engines"].values():
        if ref and "base" in e:
            e["decode_vs_llamacpp_in_process"] = round(e["base"]["decode_tok_s"] / ref, 3)
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return out


def format_llm_table(res: dict) -> str:
    lines = [f"chatdoc bench llm — {res['date']}, {res['machine'].get('cpu', '?')}, {res['config']['threads']} threads, "
             f"{res['config']['new_tokens']} greedy tokens, median of {res['config']['rounds']}",
             "tok/s: median (best) of the rounds; TTFT: median, cold prefill",
             f"{'engine':18s} {'base tok/s':>15s} {'TTFT s':>8s} {'adapter tok/s':>15s} {'TTFT s':>8s} {'load s':>7s}"]
    for name, e in res["engines"].items():
        if "error" in e:
            lines.append(f"{name:18s} error: {e['error']}")
            continue
        b, a = e.get("base", {}), e.get("adapter", {})
        def tps(x):
            return f"{x['decode_tok_s']} ({x['decode_tok_s_best']})" if x else "-"

        lines.append(f"{name:18s} {tps(b):>15} {b.get('ttft_s', '-'):>8} "
                     f"{tps(a):>15} {a.get('ttft_s', '-'):>8} {e.get('load_s', '-'):>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from chatdoc.log import setup_logging

    p = argparse.ArgumentParser(prog="chatdoc bench llm", description="Decode tok/s and TTFT of every engine.")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--adapter", default="consult-gemma3-270m", help="'' for the base model only")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--server", default="auto", choices=["auto", "llama-server", "llama-cpp-python"])
    p.add_argument("--out", default="runs/bench/llm.json")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    a = p.parse_args(argv)
    setup_logging(level="WARNING")
    res = run_llm_bench(a.new_tokens, a.rounds, a.threads, a.adapter or None,
                        tuple(x for x in a.engines.split(",") if x), a.server,
                        progress=lambda m: print(f"[bench llm] {m}", file=sys.stderr))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    print(format_llm_table(res))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
