"""``chatdoc model info``, ``chatdoc generate``, ``chatdoc adapters list|show``, ``chatdoc bench generate``."""

from __future__ import annotations

import typer

from chatdoc.commands._util import emit, fail, read_text_arg


def _backend():
    from chatdoc.llm import ModelNotFoundError, get_backend

    try:
        return get_backend()
    except ModelNotFoundError as e:
        fail(str(e))


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    model_app = typer.Typer(help="Base model information.", no_args_is_help=True)
    adapters_app = typer.Typer(help="LoRA adapters: list and inspect.", no_args_is_help=True)
    bench_app = groups.setdefault("bench", typer.Typer(help="Speed benchmarks.", no_args_is_help=True))
    app.add_typer(model_app, name="model")
    app.add_typer(adapters_app, name="adapters")
    if not any(getattr(g, "name", None) == "bench" for g in app.registered_groups):
        app.add_typer(bench_app, name="bench")

    @model_app.command("info")
    def model_info(as_json: bool = typer.Option(False, "--json")) -> None:
        """Base model, source, cache path, quantization in effect, device, parameters, memory, adapter."""
        info = _backend().info()
        emit(info, as_json)

    @app.command("generate")
    def generate(
        prompt: str = typer.Option(None, "--prompt", help="Raw prompt text."),
        stdin: bool = typer.Option(False, "--stdin", help="Read the prompt from standard input."),
        adapter: str = typer.Option(None, "--adapter", help="Adapter name; 'base' for none."),
        max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, max=4096),
        greedy: bool = typer.Option(False, "--greedy", help="Deterministic decoding."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Generate a continuation of a prompt (streams to the terminal unless --json)."""
        from chatdoc.llm import AdapterError, GenerationRequest

        text = read_text_arg(prompt, stdin, "--prompt")
        if not text.strip():
            fail("the prompt is empty")
        b = _backend()
        req = GenerationRequest(prompt=text, max_new_tokens=max_new_tokens, greedy=greedy or None)
        if adapter is not None:
            req.adapter = None if adapter == "base" else adapter
        try:
            h = b.stream(req)
            for piece in h:
                if not as_json:
                    typer.echo(piece, nl=False)
        except AdapterError as e:
            fail(str(e))
        r = h.result
        if as_json:
            emit(
                {
                    "text": r.text,
                    "adapter": r.adapter,
                    "prompt_tokens": r.prompt_tokens,
                    "new_tokens": r.new_tokens,
                    "ttft_s": round(r.ttft_s, 4),
                    "total_s": round(r.total_s, 4),
                    "decode_tok_s": round(r.decode_tok_s, 2),
                    "stopped_by": r.stopped_by,
                },
                True,
            )
        else:
            typer.echo("")

    @adapters_app.command("list")
    def adapters_list(as_json: bool = typer.Option(False, "--json")) -> None:
        """Adapters in the adapters directory, with validity and base-model compatibility."""
        from chatdoc.config import get_settings
        from chatdoc.llm.adapters import list_adapters

        s = get_settings()
        items = list_adapters(s.path(s.adapters.dir))
        if as_json:
            emit(items, True)
            return
        if not items:
            typer.echo(f"no adapters in {s.path(s.adapters.dir)}")
        for a in items:
            card = a.get("card") or {}
            status = "ok" if a["ok"] else f"UNUSABLE: {a['error']}"
            active = " (configured default)" if a["name"] == s.adapters.active else ""
            typer.echo(f"{a['name']}{active}: {card.get('description', '')} [{status}]")

    @adapters_app.command("show")
    def adapters_show(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
        """The card of one adapter."""
        from chatdoc.config import get_settings
        from chatdoc.llm.adapters import AdapterError, adapter_dir, check_files, read_card

        s = get_settings()
        try:
            d = adapter_dir(s.path(s.adapters.dir), name)
            card = read_card(d)
            cfg = check_files(d)
        except AdapterError as e:
            fail(str(e))
        out = card.model_dump()
        out["lora"] = {k: cfg.get(k) for k in ("r", "lora_alpha", "lora_dropout", "target_modules")}
        out["path"] = str(d)
        emit(out, as_json)

    @bench_app.command("generate")
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
        from chatdoc.llm.bench import run_generate_bench

        res = run_generate_bench([q.strip() for q in quantizations.split(",") if q.strip()], new_tokens, adapter, cold)
        emit(res, as_json, text=None)
