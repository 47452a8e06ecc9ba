#!/usr/bin/env bash
# `make ablation`: is the pipeline's filtering worth it?  Build three variants of the same crawl,
# train the same small GPT on each (same token budget, same seeds), compare bits per byte.
#   raw      = extract output, no filters, no dedup
#   filtered = refine with every filter, dedup off (refine.dedup: false)
#   full     = refine with filters + dedup (the default pipeline)
# One BPE tokenizer for all variants, trained on raw (the superset of the others' documents).
# Evaluation: WikiText-2 test (English Wikipedia) and German pages held out of the crawl before
# anything else (every 10th German page by doc_id hash, then cleaned by the full refine); every
# variant is decontaminated against both texts (refine --benchmark) and `trainer ablate` checks it.
# Environment: ABL_TOKENS (training tokens per run), ABL_SEEDS, ABL_VOCAB, ABL_EVAL_BYTES.
set -euo pipefail
PY=${1:-.venv/bin/python}
OUT=${2:-out/ablation}
SHARED_WARC=../shared/data/realweb/realweb.warc.gz
WIKI=../shared/data/text/wikitext-2-test.txt
if [[ -f "$SHARED_WARC" ]]; then INPUT=$SHARED_WARC; else INPUT=samples/sample.warc.gz; fi
TOKENS=${ABL_TOKENS:-200000}
SEEDS=${ABL_SEEDS:-3}
VOCAB=${ABL_VOCAB:-4096}
EVAL_BYTES=${ABL_EVAL_BYTES:-100000}
W="$OUT/work"
mkdir -p "$W"
step() { printf '\n==> %s\n' "$*"; }
# A stage whose stamp exists is skipped, so a killed `make ablation` resumes where it stopped (the
# ablation itself resumes from its finished runs).  ABL_FRESH=1 or deleting $W starts again.
[[ "${ABL_FRESH:-0}" == 1 ]] && rm -rf "$W" && mkdir -p "$W"
done_() { [[ -f "$W/.$1.done" ]]; }
mark() { touch "$W/.$1.done"; }
start=$(date +%s)

step "extract: $INPUT -> $W/extracted"
done_ extract || { "$PY" -m pipelines extract --input "$INPUT" --output "$W/extracted" --overwrite; mark extract; }

step "hold out German pages (every 10th by doc_id hash) before any variant is built"
done_ heldout || {
  "$PY" -m trainer.ablate_data split --input "$W/extracted" --pool "$W/pool" --heldout "$W/heldout-de" \
    --lang de --every 10
  "$PY" -m pipelines refine --input "$W/heldout-de" --output "$W/heldout-de-clean" --overwrite
  "$PY" -m trainer.ablate_data text --input "$W/heldout-de-clean" --out "$W/heldout-de.txt"
  mark heldout; }

EVALS=(--eval "de-heldout=$W/heldout-de.txt")
BENCH=(--benchmark "de-heldout=$W/heldout-de.txt")
if [[ -f "$WIKI" ]]; then
  EVALS=(--eval "wikitext2-test=$WIKI" "${EVALS[@]}")
  BENCH+=(--benchmark "wikitext2-test=$WIKI")
else
  echo "note: $WIKI not found (no ../shared): evaluating on the held-out German text only"
fi

printf 'refine:\n  filters: []\n  apply_c4_lines: false\n  dedup: false\n' > "$W/raw.yaml"
printf 'refine:\n  dedup: false\n' > "$W/filtered.yaml"
printf 'refine:\n  dedup: true\n' > "$W/full.yaml"
for v in raw filtered full; do
  step "variant $v: refine ($W/$v.yaml, decontaminated against the eval texts) -> $W/$v"
  done_ "refine-$v" || { "$PY" -m pipelines refine --config "$W/$v.yaml" --input "$W/pool" --output "$W/$v" \
    --overwrite "${BENCH[@]}"; mark "refine-$v"; }
done

step "tokenizer: byte-level BPE ($VOCAB) trained on raw, used for every variant"
done_ tokenizer || { "$PY" -m tokenization train-tokenizer --input "$W/raw" --vocab-size "$VOCAB" \
  --out "$W/tokenizer.json"; mark tokenizer; }
VARIANTS=()
for v in raw filtered full; do
  step "tokenize $v -> $W/$v-shards"
  done_ "tokenize-$v" || { "$PY" -m pipelines tokenize --input "$W/$v" --tokenizer "$W/tokenizer.json" \
    --output "$W/$v-shards" --val-fraction 0.05 --overwrite; mark "tokenize-$v"; }
  VARIANTS+=(--variant "$v=$W/$v-shards")
done

step "ablation: 3 variants x $SEEDS seeds x $TOKENS tokens -> $OUT"
"$PY" -m trainer ablate "${VARIANTS[@]}" --config configs/train/ablation-tiny.yaml --tokens "$TOKENS" \
  --seeds "$SEEDS" "${EVALS[@]}" --eval-bytes "$EVAL_BYTES" --out "$OUT"
printf '\nDone in %d s: %s/results.md, results.json, curves.svg\n' "$(( $(date +%s) - start ))" "$OUT"
