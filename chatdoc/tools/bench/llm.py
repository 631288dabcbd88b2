"""``chatdoc bench generate``: load time, TTFT, decode speed, peak RSS, adapter switch time.

Every quantization is measured in a fresh subprocess (:func:`child_command`) so that load times and
peak RSS are not polluted by an earlier load in the same process.
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
    ck = b.info()["cpu_kernels"]
    out["cpu_kernels"] = ck["in_effect"]
    if "convert_s" in ck:
        out["cpu_kernels_convert_s"] = ck["convert_s"]
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

