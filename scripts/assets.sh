#!/usr/bin/env bash
# `make assets`: download the LDNOOBW word lists (CC-BY-4.0) for the toxicity word-list score.
# Needs network; the project does not vendor the lists. Then set in your --config:
#   toxicity: {wordlists: assets/badwords}
set -euo pipefail
PY=${1:-.venv/bin/python}
DEST=${2:-assets/badwords}
LANGS=${ASSET_LANGS:-"ar cs da de en eo es fa fi fil fr hi hu it ja ko nl no pl pt ru sv th tr zh"}
BASE=${LDNOOBW_BASE:-https://raw.githubusercontent.com/LDNOOBW/List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words/master}
mkdir -p "$DEST"
"$PY" - "$DEST" "$BASE" $LANGS <<'PY'
import sys, urllib.request, urllib.error
from pathlib import Path
dest, base, langs = Path(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3:]
ok = 0
for lang in langs:
    url = f"{base}/{lang}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot download {url}: {exc} (offline? copy the lists into {dest}/ by hand)", file=sys.stderr)
        continue
    (dest / lang).write_bytes(data)
    ok += 1
    print(f"  {lang}: {len(data.splitlines())} entries")
print(f"{ok}/{len(langs)} lists in {dest}; use them with a --config holding: toxicity: {{wordlists: {dest}}}")
sys.exit(0 if ok == len(langs) else 1)
PY
