"""The arrows point down (docs/ARCHITECTURE.md): checked on the source, without importing anything.

Every ``import`` in every module under chatdoc/ counts, including those inside functions (a lazy
import is still a dependency). An edge from a module to one of its own parent packages is not counted:
Python runs the parents of every submodule it imports anyway.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "chatdoc"

# Third-party packages that belong to one layer only.
UI_ONLY = {"gradio", "fastapi", "starlette", "uvicorn"}
STORAGE = {"redis", "langgraph"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=1)
def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(chatdoc module -> chatdoc modules it imports, chatdoc module -> top-level third-party names)."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    internal: dict[str, set[str]] = {m: set() for m in files}
    external: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import sub` depends on the submodule when there is one, else on pkg
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                           for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                raise AssertionError(f"{mod}: relative import; chatdoc uses absolute imports")
            else:
                continue
            for t in targets:
                if t.split(".")[0] != "chatdoc":
                    external[mod].add(t.split(".")[0])
                    continue
                while t not in files:
                    t = t.rpartition(".")[0]
                if t != mod and not mod.startswith(t + "."):
                    internal[mod].add(t)
    return internal, external


def _in(mod: str, *packages: str) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in packages)


def _violations(sources: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    internal, _ = _graph()
    return sorted(f"{m} -> {t}" for m, ts in internal.items() if _in(m, *sources) for t in ts if _in(t, *forbidden))


def test_the_graph_sees_the_package():
    internal, _ = _graph()
    assert {"chatdoc.config", "chatdoc.service", "chatdoc.dialogue.graph", "chatdoc.tools"} <= set(internal)
    assert "chatdoc.config" in internal["chatdoc.service"]  # imports are read


def test_product_does_not_import_tools():
    internal, _ = _graph()
    bad = sorted(f"{m} -> {t}" for m, ts in internal.items()
                 if not _in(m, "chatdoc.tools", "chatdoc.commands", "chatdoc.cli")
                 for t in ts if _in(t, "chatdoc.tools"))
    assert not bad, "the product must not import the tooling (chatdoc/tools): " + ", ".join(bad)


def test_tools_and_cli_are_not_imported_by_the_product():
    bad = _violations(
        ("chatdoc.service", "chatdoc.ui", "chatdoc.dialogue", "chatdoc.safety", "chatdoc.privacy", "chatdoc.llm",
         "chatdoc.memory", "chatdoc.train", "chatdoc.config", "chatdoc.log", "chatdoc.domain", "chatdoc.jsonl"),
        ("chatdoc.commands", "chatdoc.cli"),
    )
    assert not bad, "the product must not import the CLI: " + ", ".join(bad)


def test_dialogue_does_not_choose_storage_or_reach_up():
    bad = _violations(("chatdoc.dialogue",), ("chatdoc.memory", "chatdoc.service", "chatdoc.ui", "chatdoc.train"))
    assert not bad, "chatdoc/dialogue receives its checkpointer and never imports memory/service/ui: " + ", ".join(bad)


@pytest.mark.parametrize("lib", ["chatdoc.safety", "chatdoc.privacy"])
def test_safety_and_privacy_are_pure_libraries(lib):
    bad = _violations((lib,), ("chatdoc.memory", "chatdoc.service", "chatdoc.ui", "chatdoc.dialogue", "chatdoc.llm",
                               "chatdoc.train"))
    assert not bad, f"{lib} is a pure library (no storage, UI, dialogue or model layer): " + ", ".join(bad)
    _, external = _graph()
    third = sorted(f"{m} -> {t}" for m, ts in external.items() if _in(m, lib) for t in ts & (UI_ONLY | STORAGE))
    assert not third, f"{lib} must work without Redis, LangGraph or a web stack: " + ", ".join(third)


def test_llm_does_not_reach_up():
    bad = _violations(("chatdoc.llm",), ("chatdoc.service", "chatdoc.ui", "chatdoc.dialogue", "chatdoc.memory",
                                         "chatdoc.train"))
    assert not bad, "chatdoc/llm is below the dialogue: " + ", ".join(bad)


def test_memory_does_not_reach_up():
    bad = _violations(("chatdoc.memory",), ("chatdoc.service", "chatdoc.ui", "chatdoc.dialogue", "chatdoc.llm"))
    assert not bad, "chatdoc/memory is storage only: " + ", ".join(bad)


def test_service_does_not_import_the_ui():
    bad = _violations(("chatdoc.service",), ("chatdoc.ui",))
    assert not bad, "the UI calls the service, not the other way round: " + ", ".join(bad)


def test_base_modules_import_only_each_other():
    base = ("chatdoc.config", "chatdoc.log", "chatdoc.domain", "chatdoc.jsonl", "chatdoc.texts")
    internal, _ = _graph()
    bad = sorted(f"{m} -> {t}" for m in base for t in internal.get(m, ()) if not _in(t, *base))
    assert not bad, "config/log/domain/jsonl/texts are the bottom layer: " + ", ".join(bad)


def test_only_the_ui_imports_the_web_stack():
    _, external = _graph()
    bad = sorted(f"{m} -> {t}" for m, ts in external.items() if not _in(m, "chatdoc.ui", "chatdoc.tools")
                 for t in ts & UI_ONLY)
    assert not bad, "gradio/fastapi belong to chatdoc/ui: " + ", ".join(bad)


def test_privacy_engine_and_recognizers_are_not_a_cycle():
    internal, _ = _graph()
    assert "chatdoc.privacy.recognizers" in internal["chatdoc.privacy.engine"]
    assert "chatdoc.privacy.engine" not in internal["chatdoc.privacy.recognizers"]


def test_no_import_cycles():
    internal, _ = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(internal[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(internal):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles (lazy imports included): " + "; ".join(" <-> ".join(c) for c in cycles)
