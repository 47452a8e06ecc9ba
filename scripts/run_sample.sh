#!/usr/bin/env bash
# `make run`: the whole pipeline on the bundled sample, end to end, on this machine.
#   extract -> refine (filters + dedup) -> tokenizer -> tokenize -> train a tiny GPT -> sample
set -euo pipefail
PY=${1:-.venv/bin/python}
OUT=${2:-out}
SAMPLE=${3:-samples/sample.warc.gz}
STEPS=${RUN_TRAIN_STEPS:-300}

step() { printf '\n==> %s\n' "$*"; }

step "1/6 extract: $SAMPLE -> $OUT/extracted"
"$PY" -m pipelines extract --input "$SAMPLE" --output "$OUT/extracted" --overwrite

step "2/6 refine (quality, language, toxicity, PII, consent, dedup): -> $OUT/refined"
"$PY" -m pipelines refine --input "$OUT/extracted" --output "$OUT/refined" --overwrite

step "3/6 tokenizer: byte-level BPE trained on the refined sample -> $OUT/tokenizer.json"
"$PY" -m tokenization train-tokenizer --input "$OUT/refined" --vocab-size 2048 --out "$OUT/tokenizer.json"

step "4/6 tokenize: -> $OUT/shards (Megatron .bin/.idx + manifest.json)"
"$PY" -m pipelines tokenize --input "$OUT/refined" --tokenizer "$OUT/tokenizer.json" --output "$OUT/shards" \
  --val-fraction 0.2 --overwrite

# ~13k tokens of sample text: the model memorises them within ~100 steps, so validate every 10
# steps, keep the best-val checkpoint (run/best.pt, used by sample/eval) and stop after 5 evals
# without a new best (keep_best / early_stop_patience in configs/train/tiny.yaml).
step "5/6 train: tiny GPT for up to $STEPS steps on the CPU (keep best, early stop) -> $OUT/run"
"$PY" -m trainer train --data "$OUT/shards" --config configs/train/tiny.yaml --out "$OUT/run" --overwrite \
  max_steps="$STEPS" eval_interval=10 ckpt_interval=50

step "6/6 sample from the best checkpoint"
"$PY" -m trainer sample --ckpt "$OUT/run" --prompt "The library" --max-new-tokens 60 --seed 1

step "report: what the run did -> $OUT/report.html + $OUT/datacard.md"
"$PY" -m pipelines report --run "$OUT"

printf '\nDone. Outputs under %s/:\n' "$OUT"
printf '  extracted/  documents + signals (Parquet), dead-letter/, summary.json\n'
printf '  refined/    kept documents (Parquet), removed/ (with filter and reason), summary.json\n'
printf '  shards/     tokenized train/val shards + manifest.json\n'
printf '  run/        best.pt (best val loss), ckpt.pt (last step), metrics.jsonl, summary\n'
printf '  report.html open in a browser: funnel, languages, thresholds (what-if), dedup, PII, examples\n'
printf '\nReport: %s/report.html\n' "$OUT"
