"""``chatdoc model info``, ``chatdoc generate``, ``chatdoc adapters list|show``, ``chatdoc bench generate``."""

from __future__ import annotations

import typer

from chatdoc.commands._util import emit, fail, read_text_arg, service, service_errors

model_app = typer.Typer(help="Base model information.", no_args_is_help=True)
adapters_app = typer.Typer(help="LoRA adapters: list and inspect.", no_args_is_help=True)


@model_app.command("info")
def model_info(as_json: bool = typer.Option(False, "--json")) -> None:
    """Base model, source, cache path, quantization in effect, device, parameters, memory, adapter."""
    with service_errors():
        emit(service().model_info(), as_json)


def generate(
    prompt: str = typer.Option(None, "--prompt", help="Raw prompt text."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the prompt from standard input."),
    adapter: str = typer.Option(None, "--adapter", help="Adapter name; 'base' for none."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, max=4096),
    greedy: bool = typer.Option(False, "--greedy", help="Deterministic decoding."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Generate a continuation of a prompt (streams to the terminal unless --json)."""
    text = read_text_arg(prompt, stdin, "--prompt")
    if not text.strip():
        fail("the prompt is empty")
    chosen = ... if adapter is None else (None if adapter == "base" else adapter)
    with service_errors():
        h = service().generate(text, adapter=chosen, max_new_tokens=max_new_tokens, greedy=greedy or None)
        for piece in h:
            if not as_json:
                typer.echo(piece, nl=False)
    r = h.result
    if not as_json:
        typer.echo("")
        return
    emit({"text": r.text, "adapter": r.adapter, "prompt_tokens": r.prompt_tokens, "new_tokens": r.new_tokens,
          "ttft_s": round(r.ttft_s, 4), "total_s": round(r.total_s, 4), "decode_tok_s": round(r.decode_tok_s, 2),
          "stopped_by": r.stopped_by}, True)


@adapters_app.command("list")
def adapters_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Adapters in the adapters directory, with validity (the model is not loaded)."""
    svc = service()
    items = svc.list_adapters(load_model=False)
    if as_json:
        emit(items, True)
        return
    if not items:
        typer.echo(f"no adapters in {svc.settings.path(svc.settings.adapters.dir)}")
    for a in items:
        status = "ok" if a["ok"] else f"UNUSABLE: {a['error']}"
        active = " (configured default)" if a["active"] else ""
        typer.echo(f"{a['name']}{active}: {(a.get('card') or {}).get('description', '')} [{status}]")


@adapters_app.command("show")
def adapters_show(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The card of one adapter."""
    with service_errors():
        emit(service().adapter_card(name), as_json)


def bench_generate(
    as_json: bool = typer.Option(False, "--json"),
    quantizations: str = typer.Option("nf4,none", help="Comma-separated quantizations to compare."),
    new_tokens: int = typer.Option(64, help="Tokens to decode per run."),
    adapter: str = typer.Option(None, help="Adapter to measure (default: a temporary random LoRA)."),
    cold: bool = typer.Option(True, "--cold/--no-cold", help="Also time a first GGUF materialization."),
) -> None:
    """Load time, TTFT, decode tok/s, peak RSS per quantization, with/without adapter, switch time.

    Each quantization runs in a fresh subprocess so load times and peak RSS are honest.
    """
    from chatdoc.tools.bench.llm import run_generate_bench

    res = run_generate_bench([q.strip() for q in quantizations.split(",") if q.strip()], new_tokens, adapter, cold)
    emit(res, as_json, text=None)
