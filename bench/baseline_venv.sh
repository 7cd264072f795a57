#!/usr/bin/env bash
# A second hookmq build to measure against in the same run: a detached checkout of REF in DIR
# with its own virtual environment, for `hookmq bench compare --baseline-hookmq DIR/.venv`.
#   bench/baseline_venv.sh main /tmp/hookmq-main
#   bench/baseline_venv.sh before-seams /tmp/hookmq-before-seams
#   PURE=1 bench/baseline_venv.sh HEAD /tmp/hookmq-pure      (skip the mypyc build: the pure-Python one)
# The checkout is a git worktree: remove it with `git worktree remove --force DIR`.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 REF DIR" >&2; exit 2; }
ref=$1
dir=$2
repo="$(cd "$(dirname "$0")/.." && pwd)"
git -C "$repo" worktree add --detach "$dir" "$ref" >/dev/null
python3 -m venv "$dir/.venv"
"$dir/.venv/bin/python" -m pip install -q --upgrade 'pip>=24' 'setuptools>=77,<90' 'wheel>=0.45'
if [ -n "${PURE:-}" ]; then export HOOKMQ_COMPILE=0; fi
"$dir/.venv/bin/pip" install -q -e "$dir[bench]"
"$dir/.venv/bin/python" -c 'import hookmq; print("baseline:", hookmq.__version__, hookmq.__file__)'
