"""Evaluation output: JSON files, a PNG plot (matplotlib, Agg), and the results tables in docs/RESULTS.md.

docs/RESULTS.md holds one table per evaluation between markers
``<!-- chatdoc-results:NAME -->`` ... ``<!-- /chatdoc-results:NAME -->``; each run adds a row at the top
(newest first, at most ``MAX_ROWS`` rows). Text outside the markers is left alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from chatdoc.config import REPO_ROOT

RESULTS_MD = REPO_ROOT / "docs" / "RESULTS.md"
MAX_ROWS = 12

TABLES = {
    "consult": ("Simulated-patient consultations (`chatdoc eval consult`)",
                ["date", "machine", "cases", "model wording", "max turns", "mean coverage", "repeated q", "hallucinations",
                 "mean turns", "mean questions", "turn p50 s", "weakest categories"]),
    "summary": ("Summary quality (`chatdoc eval summary`), ROUGE F1 x100",
                ["date", "machine", "dataset", "items", "chatdoc R-1", "R-2", "R-L", "first-12-doctor-turns R-1",
                 "R-2", "R-L"]),
    "bench": ("Speed (`chatdoc bench run`)",
              ["date", "machine", "model/quant", "load cold s", "load cached s", "TTFT s", "decode tok/s",
               "llama.cpp tok/s", "ratio", "turn p50 s", "turn p95 s", "graph overhead s", "redis s/turn",
               "1/4/8 users turns/s", "1/4/8 users p95 s", "peak RSS MB"]),
}


def write_json(obj, out_dir: str | Path, name: str) -> Path:
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(json.dumps(obj, indent=2, default=str, ensure_ascii=False))
    return p


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v).replace("|", "/")


def machine_label(m: dict) -> str:
    return f"{m.get('cpus')}×CPU {m.get('device', 'cpu')} ({(m.get('cpu') or '')[:40]})".strip()


def update_results_md(name: str, row: list, path: Path = RESULTS_MD) -> Path:
    title, header = TABLES[name]
    start, end = f"<!-- chatdoc-results:{name} -->", f"<!-- /chatdoc-results:{name} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Results\n"
    line = "| " + " | ".join(_fmt(v) for v in row) + " |"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        block, after = rest.split(end, 1)
        rows = [ln for ln in block.splitlines() if ln.startswith("| ") and not ln.startswith("| date") and not set(ln) <= set("|- ")]
    else:
        before, after, rows = text.rstrip() + f"\n\n## {title}\n\n", "\n", []
    rows = [line] + rows[: MAX_ROWS - 1]
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(before + start + "\n" + table + "\n" + end + after, encoding="utf-8")
    return path


# ---------------------------------------------------------------- rows

def consult_row(res: dict, machine: str) -> list:
    s = res["summary"]
    kinds = sorted(((k, v["coverage"]) for k, v in s["per_kind"].items() if v["coverage"] is not None), key=lambda x: x[1])
    weakest = ", ".join(f"{k} {v:.2f}" for k, v in kinds[:3])
    wording = (res.get("config") or {}).get("use_model_wording")
    return [res.get("date"), machine, s["cases"], {True: "on", False: "off"}.get(wording, "?"), res["max_turns"], s["mean_coverage"], s["repeated_questions"],
            s["hallucinations"], s["mean_turns"], s["mean_questions_asked"], s["turn_p50_s"], weakest]


def summary_row(res: dict, machine: str) -> list:
    c, b = res.get("chatdoc") or {}, res.get("baseline_first12_doctor_turns") or {}
    return [res.get("date"), machine, res["dataset"], res["items"], c.get("rouge1"), c.get("rouge2"), c.get("rougeL"),
            b.get("rouge1"), b.get("rouge2"), b.get("rougeL")]


def bench_row(res: dict) -> list:
    conc = res.get("concurrency") or []
    c = res.get("consultation") or {}
    lc = res.get("llama_cpp") or {}
    return [
        res["date"], machine_label(res["machine"]),
        f"{res['config']['model']}/{res['config']['quantization']}"
        + (f", {res['config']['threads']} thr" if res["config"].get("threads") else ""),
        (res.get("load") or {}).get("cold_materialize_s"), (res.get("load") or {}).get("cached_load_s"),
        res["model"]["ttft_s"], res["model"]["decode_tok_s"],
        lc.get("decode_tok_s") if lc.get("status") == "ok" else lc.get("status"), res.get("decode_ratio_vs_llama_cpp"),
        c.get("turn_p50_s"), c.get("turn_p95_s"), c.get("graph_overhead_p50_s"), c.get("redis_mean_s"),
        " / ".join(_fmt(x.get("turns_per_s")) for x in conc), " / ".join(_fmt(x.get("turn_p95_s")) for x in conc),
        res.get("peak_rss_mb"),
    ]


# ---------------------------------------------------------------- plot

def bench_plot(res: dict, out_dir: str | Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    per = (res.get("consultation") or {}).get("per_turn") or []
    ax = axes[0]
    if per:
        x = list(range(1, len(per) + 1))
        gen = [r["gen_s"] for r in per]
        other = [max(0.0, r["turn_s"] - r["gen_s"] - r["redis_s"]) for r in per]
        red = [r["redis_s"] for r in per]
        ax.bar(x, gen, label="generation")
        ax.bar(x, other, bottom=gen, label="graph overhead")
        ax.bar(x, red, bottom=[g + o for g, o in zip(gen, other)], label="redis")
        ax.legend()
    ax.set_title("scripted consultation: time per turn")
    ax.set_xlabel("turn")
    ax.set_ylabel("seconds")
    ax = axes[1]
    conc = res.get("concurrency") or []
    if conc:
        users = [c["users"] for c in conc]
        ax.plot(users, [c["turns_per_s"] or 0 for c in conc], "o-", label="turns/s")
        ax2 = ax.twinx()
        ax2.plot(users, [c["turn_p95_s"] or 0 for c in conc], "s--", color="tab:red", label="p95 s")
        ax2.set_ylabel("p95 turn latency (s)")
        ax.set_xticks(users)
    ax.set_title("concurrent consultations")
    ax.set_xlabel("users")
    ax.set_ylabel("throughput (turns/s)")
    ax = axes[2]
    names, vals = ["chatdoc"], [res["model"]["decode_tok_s"]]
    lc = res.get("llama_cpp") or {}
    if lc.get("status") == "ok":
        names.append("llama.cpp")
        vals.append(lc["decode_tok_s"])
    ax.bar(names, vals, color=["tab:blue", "tab:green"][: len(vals)])
    ax.set_title(f"decode tokens/s ({res['config']['new_tokens']} tokens, greedy)")
    fig.suptitle(f"chatdoc bench {res['date']} - {machine_label(res['machine'])}", fontsize=9)
    fig.tight_layout()
    p = Path(out_dir) / "bench.png"
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p


def consult_plot(res: dict, out_dir: str | Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    pk = res["summary"]["per_kind"]
    kinds = sorted(pk)
    fig, ax = plt.subplots(figsize=(8, 4))
    x = range(len(kinds))
    ax.bar([i - 0.2 for i in x], [pk[k]["disclosed_share"] or 0 for k in kinds], width=0.4, label="disclosed by patient")
    ax.bar([i + 0.2 for i in x], [pk[k]["coverage"] or 0 for k in kinds], width=0.4, label="in final summary")
    ax.set_xticks(list(x))
    ax.set_xticklabels([re.sub("_", " ", k) for k in kinds], rotation=20)
    ax.set_ylim(0, 1)
    ax.set_title(f"history coverage by fact kind ({res['summary']['cases']} cases)")
    ax.legend()
    fig.tight_layout()
    p = Path(out_dir) / "consult.png"
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p
