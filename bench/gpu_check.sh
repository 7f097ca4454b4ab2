#!/usr/bin/env bash
# The GPU checks of issue #18 in one command (bench/gpu_check.py says what it measures):
#   bench/gpu_check.sh --out FILE.json [--smoke] [--budget SECONDS] [more: --help]
# Python: $PYTHON if set, else the project's .venv, else python3. On a GPU run (no --smoke),
# a .venv whose torch sees no GPU gives way to a python3 whose torch does (a GPU machine's image).
set -euo pipefail
export GPU_CHECK_STARTED="${GPU_CHECK_STARTED:-$(date +%s.%N)}"  # the time budget counts from here
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
has_cuda='import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
  py="$root/.venv/bin/python"
  [[ -x "$py" ]] || py="$(command -v python3)"
  if [[ " $* " != *" --smoke "* && " $* " != *" --device cpu "* ]] && ! "$py" -c "$has_cuda" 2>/dev/null; then
    alt="$(command -v python3 || true)"
    if [[ -n "$alt" && "$alt" != "$py" ]] && "$alt" -c "$has_cuda" 2>/dev/null; then
      echo "gpu_check.sh: $py has no CUDA torch; using $alt" >&2
      py="$alt"
    fi
  fi
fi
export PYTHONPATH="$root/platform:$root/bench${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
exec "$py" "$root/bench/gpu_check.py" "$@"
