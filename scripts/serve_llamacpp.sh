#!/usr/bin/env bash
# Serve the built-in GGUF (gemma-3-270m Q4_K_M) with the shipped adapter over an OpenAI-compatible API on this
# machine, for app replicas that share one engine (model.backend: openai; docs/RUNTIME.md).
#
#   scripts/serve_llamacpp.sh                       # port 8080, adapters.active, every core
#   PORT=8081 THREADS=2 scripts/serve_llamacpp.sh --adapter consult-gemma3-270m --adapter my-adapter
#
# The PEFT adapters are converted to GGUF LoRA first (cached under ~/.cache/chatdoc/models/gguf-lora).
# Engine: llama.cpp's own `llama-server` when CHATDOC_LLAMA_SERVER_BIN is set or it is on PATH (all adapters
# loaded once, chosen per request: CHATDOC_MODEL_REMOTE_FLAVOUR=llamacpp; --parallel N for N concurrent slots),
# else llama-cpp-python's server (`python -m llama_cpp.server`, installed with the llama.cpp backend: one alias
# per adapter, chosen by "model": name, reloaded on a switch: CHATDOC_MODEL_REMOTE_FLAVOUR=vllm). The settings
# to give the app are printed first. Options: python -m chatdoc.llm.serve --help
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m chatdoc.llm.serve --port "${PORT:-8080}" --threads "${THREADS:-0}" "$@"
