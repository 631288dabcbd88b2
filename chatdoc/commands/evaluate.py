"""``chatdoc eval consult``, ``chatdoc eval summary``, ``chatdoc bench run``.

Evaluation drives the real path: ``chatdoc.service`` (graph, model, Redis). See chatdoc/tools/eval/.
"""

from __future__ import annotations

from pathlib import Path

import typer

from chatdoc.commands._util import emit, fail, service, service_errors


def _progress(as_json: bool):
    def say(msg: str) -> None:
        if not as_json:
            typer.echo(msg, err=True)

    return say


def eval_consult(
    cases: str = typer.Option(..., "--cases", help="AgentClinic OSCE .jsonl, a YAML case file, or a directory of them."),
    max_turns: int = typer.Option(12, "--max-turns", min=1, max=60, help="Patient turns per consultation."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N cases."),
    out: str = typer.Option("runs/eval", "--out", help="Directory for consult.json and consult.png."),
    results_md: bool = typer.Option(True, "--results-md/--no-results-md", help="Add a row to docs/RESULTS.md."),
    keep: bool = typer.Option(False, "--keep", help="Keep the consultations in Redis (default: erase after scoring)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Simulated patients answer the assistant from their case records; score the final staff summary."""
    from datetime import datetime, timezone

    from chatdoc.tools.eval import report
    from chatdoc.tools.bench.run import machine
    from chatdoc.tools.eval.cases import CaseError, load_cases
    from chatdoc.tools.eval.consult import run_cases

    try:
        items = load_cases(cases)
    except CaseError as e:
        fail(str(e))
    if not items:
        fail(f"no cases in {cases}")
    say = _progress(as_json)

    def progress(i, n, r):
        if "error" in r:
            say(f"[{i}/{n}] {r['case']}: ERROR {r['error']}")
        else:
            say(f"[{i}/{n}] {r['case']}: coverage {r['coverage'] if r['coverage'] is None else round(r['coverage'], 2)}"
                f" turns {r['turns']} repeated {r['repeated_questions']} hallucinations {r['hallucinations']}"
                f" triage {r['triage_level']}")

    with service_errors():
        res = run_cases(items, max_turns=max_turns, limit=limit, service=service(), progress=progress, keep=keep)
    res["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    res["machine"] = machine()
    res["cases_file"] = str(cases)
    from chatdoc.config import get_settings

    st = get_settings()
    res["config"] = {"model": st.model.base, "quantization": st.model.quantization,
                     "use_model_wording": st.dialogue.use_model_wording, "max_questions": st.dialogue.max_questions}
    p = report.write_json(res, out, "consult.json")
    report.consult_plot(res, out)
    if results_md and res["summary"]["cases"] > res["summary"]["errors"]:
        report.update_results_md("consult", report.consult_row(res, report.machine_label(res["machine"])))
    s = res["summary"]
    if as_json:
        emit(res, True)
        return
    typer.echo(f"cases: {s['cases']} (errors {s['errors']})  mean coverage: {s['mean_coverage']}  "
               f"repeated questions: {s['repeated_questions']}  hallucinations: {s['hallucinations']}  "
               f"mean turns: {s['mean_turns']}  turn p50: {s['turn_p50_s']}s")
    for k, v in sorted(s["per_kind"].items()):
        typer.echo(f"  {k:13s} covered {v['covered']}/{v['total']} ({v['coverage']})  disclosed by patient {v['disclosed']}")
    typer.echo(f"  misses: never disclosed {s['missed_never_disclosed']}, disclosed but not summarized "
               f"{s['missed_disclosed_not_summarized']}; triage {s['triage_levels']}")
    typer.echo(f"written: {p}")


def eval_summary(
    aci: str = typer.Option(None, "--aci", help="ACI-BENCH csv (dialogue, note)."),
    mts: str = typer.Option(None, "--mts", help="MTS-Dialog csv (dialogue, section_text)."),
    limit: int = typer.Option(None, "--limit", min=1),
    out: str = typer.Option("runs/eval", "--out"),
    results_md: bool = typer.Option(True, "--results-md/--no-results-md"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """ROUGE-1/2/L of chatdoc's transcript summaries vs the reference (and the first-12-doctor-turns baseline)."""
    from datetime import datetime, timezone

    from chatdoc.tools.eval import report
    from chatdoc.tools.bench.run import machine
    from chatdoc.tools.eval.summary_eval import DataError, evaluate, load_aci, load_mts

    if bool(aci) == bool(mts):
        fail("give exactly one of --aci FILE or --mts FILE")
    try:
        items, name = (load_aci(aci), "aci-bench") if aci else (load_mts(mts), "mts-dialog")
    except DataError as e:
        fail(str(e))
    say = _progress(as_json)
    with service_errors():
        res = evaluate(items, name, limit=limit, summarize=service().summarize_transcript,
                       progress=lambda i, n: say(f"[{i}/{n}]"))
    res["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    res["machine"] = machine()
    p = report.write_json(res, out, f"summary-{name}.json")
    if results_md and res["items"] > res["errors"]:
        report.update_results_md("summary", report.summary_row(res, report.machine_label(res["machine"])))
    if as_json:
        emit(res, True)
        return
    typer.echo(f"{name}: {res['items']} items (errors {res['errors']}), reference: {res['reference']}")
    typer.echo(f"  chatdoc            {res['chatdoc']}")
    typer.echo(f"  first 12 dr turns  {res['baseline_first12_doctor_turns']}")
    if name == "aci-bench":
        typer.echo(f"  paper anchors (test set 1, R-1): BART 52.4, GPT-4 41.2, first-12-turns 23.7")
    typer.echo(f"written: {p}")


def bench_run(
    out: str = typer.Option("runs/bench", "--out", help="Directory for bench.json and bench.png."),
    new_tokens: int = typer.Option(64, "--new-tokens", min=2, max=1024, help="Tokens for model-only / llama.cpp."),
    turns: int = typer.Option(10, "--turns", min=1, max=10, help="Turns of the scripted consultation."),
    concurrency: str = typer.Option("1,4,8", "--concurrency", help="Comma-separated concurrent users."),
    concurrent_turns: int = typer.Option(4, "--concurrent-turns", min=1, max=10, help="Turns per concurrent consultation."),
    cold: bool = typer.Option(True, "--cold/--no-cold", help="Also time a cold GGUF materialization."),
    llama: bool = typer.Option(True, "--llama-cpp/--no-llama-cpp", help="Compare with llama.cpp when installed."),
    results_md: bool = typer.Option(True, "--results-md/--no-results-md"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """End-to-end speed: load, TTFT, decode tok/s vs llama.cpp, per-turn p50/p95, overhead, Redis, concurrency."""
    from chatdoc.tools.eval import report
    from chatdoc.tools.bench.run import run_bench
    from chatdoc.llm import ModelNotFoundError

    try:
        users = tuple(int(x) for x in concurrency.split(",") if x.strip())
    except ValueError:
        fail("--concurrency takes comma-separated integers, e.g. 1,4,8")
    if any(u < 1 or u > 64 for u in users):
        fail("--concurrency values must be between 1 and 64")
    try:
        with service_errors():
            res = run_bench(new_tokens=new_tokens, turns=turns, concurrency=users, concurrent_turns=concurrent_turns,
                            cold=cold, llama=llama, progress=_progress(as_json))
    except ModelNotFoundError as e:
        fail(str(e))
    p = report.write_json(res, out, "bench.json")
    png = report.bench_plot(res, out)
    if results_md:
        report.update_results_md("bench", report.bench_row(res))
    if as_json:
        emit(res, True)
        return
    c = res["consultation"]
    lc = res["llama_cpp"]
    typer.echo(f"load: {res['load']}")
    typer.echo(f"model: TTFT {res['model']['ttft_s']}s, decode {res['model']['decode_tok_s']} tok/s; "
               f"llama.cpp: {lc.get('decode_tok_s', lc.get('status'))} tok/s; ratio {res['decode_ratio_vs_llama_cpp']}")
    typer.echo(f"consultation: turn p50 {c['turn_p50_s']}s p95 {c['turn_p95_s']}s, graph overhead p50 "
               f"{c['graph_overhead_p50_s']}s, redis {c['redis_mean_s']}s/turn")
    for x in res["concurrency"]:
        typer.echo(f"  {x['users']} users: {x['turns_per_s']} turns/s, p95 {x['turn_p95_s']}s")
    typer.echo(f"peak RSS {res['peak_rss_mb']} MB; written: {p}{'' if png is None else ', ' + str(png)}")


def bench_dialogue(
    model: bool = typer.Option(False, "--model", help="Also time turns with model wording (loads the model)."),
    concurrency: str = typer.Option("1,4,8,16,50", "--concurrency",
                                    help="Simultaneous simulated patients per level, comma-separated ('' = skip)."),
    turns: int = typer.Option(5, "--turns", min=1, max=9, help="Template turns per simulated patient."),
    out: str = typer.Option("runs/bench/dialogue.json", "--out", help="Where the JSON result is written."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per-turn time of scripted consultations through the service (graph, redaction, safety, Redis [+ model]),
    then 1/4/8/16/50 simulated patients at once in one process: throughput, p50/p95, errors, lost turns, peak RSS."""
    import json

    from chatdoc.tools.bench.dialogue import bench, concurrent_patients, format_concurrency, format_text

    try:
        levels = tuple(int(x) for x in concurrency.split(",") if x.strip())
    except ValueError:
        fail("--concurrency takes comma-separated integers, e.g. 1,4,8,16,50")
    if any(n < 1 or n > 200 for n in levels):
        fail("--concurrency values must be between 1 and 200")
    say = (lambda m: None) if as_json else (lambda m: typer.echo(f"[bench dialogue] {m}", err=True))
    with service_errors():
        res = {"sequential": bench(model)}
        if levels:
            res["concurrency"] = concurrent_patients(levels, turns, progress=say)
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(res, indent=1))
    if as_json:
        emit(res, True)
        return
    typer.echo(format_text(res["sequential"]))
    if levels:
        typer.echo(format_concurrency(res["concurrency"]))
    typer.echo(f"written: {p}")


def bench_llm(
    new_tokens: int = typer.Option(64, "--new-tokens", min=2, max=1024, help="Greedy tokens per measurement."),
    rounds: int = typer.Option(3, "--rounds", min=1, max=20, help="Rounds; the engines alternate, medians reported."),
    threads: int = typer.Option(2, "--threads", min=1, help="CPU threads of every engine."),
    adapter: str = typer.Option("consult-gemma3-270m", "--adapter", help="Adapter measured next to the base; '' = none."),
    engines: str = typer.Option("transformers-nf4,llamacpp,llamacpp-server", "--engines", help="Comma-separated."),
    server: str = typer.Option("auto", "--server", help="auto | llama-server | llama-cpp-python"),
    out: str = typer.Option("runs/bench/llm.json", "--out", help="Where the JSON result is written."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Decode tok/s and TTFT of every engine in one run: transformers nf4, llama.cpp in-process, llama.cpp server."""
    from chatdoc.tools.bench.llm import ENGINES, main as llm_main

    names = [x.strip() for x in engines.split(",") if x.strip()]
    bad = [x for x in names if x not in ENGINES] + ([server] if server not in ("auto", "llama-server", "llama-cpp-python") else [])
    if bad or not names:
        typer.echo(f"chatdoc: unknown engine or server {bad or engines!r} (engines: {', '.join(ENGINES)})", err=True)
        raise typer.Exit(2)
    argv = ["--new-tokens", str(new_tokens), "--rounds", str(rounds), "--threads", str(threads), "--adapter", adapter,
            "--engines", ",".join(names), "--server", server, "--out", out] + (["--json"] if as_json else [])
    raise typer.Exit(llm_main(argv))


def bench_ui(
    turns: int = typer.Option(10, "--turns", min=1, max=30, help="Patient turns per consultation."),
    model_wording: bool = typer.Option(True, "--model-wording/--no-model-wording"),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, max=512),
    warmup: int = typer.Option(1, "--warmup", min=0, max=5, help="Consultations run before timing."),
    out: Path = typer.Option(Path("artifacts/ui-bench.json"), "--out", help="Where the JSON result is written."),
) -> None:
    """Time to first token and full reply in a real browser against a real app (needs the test install:
    Playwright and Debian chromium)."""
    try:
        from chatdoc.tools.bench.ui import run
    except ModuleNotFoundError as e:
        fail(f"{e.name} is missing: install the test extras (bash scripts/install.sh --test)")
    res = run(turns, model_wording, max_new_tokens, out, warmup)
    emit(res, True)


def eval_conversation(
    split: str = typer.Option("dev", "--set", help="dev | test (the frozen split) | all"),
    voiced: int = typer.Option(0, "--voiced", min=0, help="Also run the first N AgentClinic cases voiced as patients."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N scripted cases."),
    model_wording: bool = typer.Option(None, "--model/--no-model", help="Model parts on/off (default: dialogue.use_model_wording)."),
    out: str = typer.Option("runs/eval", "--out", help="Directory for conversation.json and conversation.md."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Scripted consultations with patient questions, corrections, distress and unclear answers (see
    tests/evalsets/CONVERSATIONS.md): answered questions, model acceptance, acknowledgement facts, groundedness,
    answers below the triage level, corrections applied, latency."""
    import os
    from datetime import datetime, timezone

    from chatdoc.tools.bench.run import machine
    from chatdoc.tools.eval import report
    from chatdoc.tools.eval.conversation import load_conversations, load_voiced, report_md, run

    if split not in ("dev", "test", "all"):
        fail("--set must be dev, test or all")
    if model_wording is not None:
        os.environ["CHATDOC_DIALOGUE_USE_MODEL_WORDING"] = "true" if model_wording else "false"
        from chatdoc.config import get_settings

        get_settings.cache_clear()
    cases, problems = load_conversations(split)
    for p in problems:
        typer.echo(f"skipped: {p}", err=True)
    cases = cases[:limit] if limit else cases
    cases += load_voiced(voiced) if voiced else []
    if not cases:
        fail("no cases")
    say = _progress(as_json)

    def progress(i, n, r):
        say(f"[{i}/{n}] {r['case']}: " + (f"ERROR {r['error']}" if "error" in r else f"{len(r['turns'])} turns"))

    with service_errors():
        svc = service()
        res = run(cases, svc, progress)
    from chatdoc.config import get_settings

    st = get_settings()
    res["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    res["machine"] = machine()
    res["config"] = {"set": split, "use_model_wording": st.dialogue.use_model_wording, "adapter": st.adapters.active,
                     "model_budget_s": st.dialogue.model_budget_s, "backend": st.model.backend}
    p = report.write_json(res, out, "conversation.json")
    md = Path(p).with_name("conversation.md")
    md.write_text(report_md(res), encoding="utf-8")
    if as_json:
        emit({k: v for k, v in res.items() if k != "results"}, True)
        return
    for k in ("questions_answered_rate", "question_class_agreement", "model_ack_acceptance", "model_question_acceptance",
              "model_answer_acceptance", "acks_with_unsaid_facts", "answers_below_level", "grounded_unsupported",
              "corrections_applied_rate", "distress_acknowledged_rate", "unclear_clarified_rate", "turn_p50_s", "turn_p95_s"):
        typer.echo(f"{k:30s} {res.get(k)}")
    typer.echo(f"per source: {res['per_source']}   errors: {len(res['errors'])}")
    typer.echo(f"written: {p} and {md}")
