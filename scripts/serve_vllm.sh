#!/usr/bin/env bash
# Serve a 7-8B base in 4-bit (bitsandbytes nf4) with chatdoc's LoRA adapters through vLLM's OpenAI-compatible
# server, for `CHATDOC_PROFILE=vllm` (configs/vllm.yaml). Needs a CUDA GPU (a 7B nf4 base needs ~5 GB of
# VRAM for the weights; the rest goes to the KV cache) and `pip install vllm bitsandbytes` in the environment
# that runs it (not chatdoc's .venv: vLLM pins its own torch).
#
#   scripts/serve_vllm.sh                                   # base + adapters/consult-<base> if present
#   BASE=meta-llama/Llama-3.1-8B ADAPTERS="consult=adapters/consult-llama8b triage=adapters/triage-llama8b" \
#     scripts/serve_vllm.sh
#
# Adapters (--lora-modules name=dir, PEFT directories as `chatdoc train` writes them) are chosen per request
# by "model": name; more can be loaded at run time with POST /v1/load_lora_adapter (chatdoc does it when an
# adapter from adapters/ is activated in the lab and the server can read that directory), which vLLM allows
# only with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True (set below; unset it to freeze the adapter set).
# --max-loras 2: two adapters in one batch on the GPU at once (e.g. the clinic's and a researcher's).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-Qwen/Qwen2.5-7B}
PORT=${PORT:-8000}
HOST=${HOST:-127.0.0.1}                      # loopback: put the app (or nginx) on the same host, or a private net
MAX_LEN=${MAX_LEN:-4096}                     # = model.max_context_tokens
GPU_UTIL=${GPU_UTIL:-0.85}
ADAPTERS=${ADAPTERS:-}
if [[ -z "$ADAPTERS" && -d adapters/consult-qwen2.5-7b ]]; then ADAPTERS="consult=adapters/consult-qwen2.5-7b"; fi
LORA_ARGS=()
if [[ -n "$ADAPTERS" ]]; then
  LORA_ARGS=(--enable-lora --max-loras 2 --max-lora-rank 64 --lora-modules $ADAPTERS)
fi
API_KEY_ARGS=()
if [[ -n "${CHATDOC_MODEL_REMOTE_API_KEY:-}" ]]; then API_KEY_ARGS=(--api-key "$CHATDOC_MODEL_REMOTE_API_KEY"); fi
export VLLM_ALLOW_RUNTIME_LORA_UPDATING=${VLLM_ALLOW_RUNTIME_LORA_UPDATING:-True}
set -x
exec vllm serve "$BASE" \
  --served-model-name "$BASE" \
  --host "$HOST" --port "$PORT" \
  --quantization bitsandbytes \
  --max-model-len "$MAX_LEN" \
  --gpu-memory-utilization "$GPU_UTIL" \
  --enable-prefix-caching \
  "${LORA_ARGS[@]}" "${API_KEY_ARGS[@]}" "$@"
