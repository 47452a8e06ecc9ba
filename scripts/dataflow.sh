#!/usr/bin/env bash
# The Dataflow make targets.  Each prints what it will do and stops with a clear message when a
# variable or a tool is missing.  DRY_RUN=1 prints the commands without running them.
#   scripts/dataflow.sh template        make dataflow-template PROJECT= REGION= BUCKET=
#   scripts/dataflow.sh run             make dataflow-run SNAPSHOT= PROJECT= REGION= BUCKET= [MAX_WARCS= SOURCE= ...]
#   scripts/dataflow.sh schedule        make schedule PROJECT= REGION= BUCKET= [APPLY=1]
#   scripts/dataflow.sh cost-estimate   make cost-estimate [COST_ARGS="--flexrs --warcs 90000"]
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "error: $*" >&2; exit 2; }
need_vars() {
  local missing=() v
  for v in "$@"; do [[ -n "${!v:-}" ]] || missing+=("$v"); done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}: e.g. make $TARGET $(printf '%s=... ' "$@")"
}
need_tool() {
  command -v "$1" >/dev/null || die "$1 not found on PATH; $2"
}
run() { printf '+ %s\n' "$*"; [[ "${DRY_RUN:-0}" == 1 ]] || "$@"; }

cmd=${1:-}
case "$cmd" in
  template)
    TARGET=dataflow-template
    exec bash infra/dataflow/build_template.sh ;;

  run)
    TARGET=dataflow-run
    need_vars SNAPSHOT PROJECT REGION BUCKET
    need_tool gcloud "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
    TEMPLATE_PATH=${TEMPLATE_PATH:-gs://${BUCKET}/templates/corpus-pipeline.json}
    OUTPUT=${OUTPUT:-gs://${BUCKET}/corpus}
    SOURCE=${SOURCE:-https}
    TOKENIZER=${TOKENIZER:-train}
    STAGES=${STAGES:-extract,refine,tokenize}
    JOB=${JOB_NAME:-corpus-$(echo "$SNAPSHOT" | tr 'A-Z' 'a-z')-$(date -u +%Y%m%d-%H%M%S)}
    # '~' separates parameters so the comma list of stages survives gcloud's list parsing.
    params="snapshot=${SNAPSHOT}~output=${OUTPUT}~source=${SOURCE}~tokenizer=${TOKENIZER}~stages=${STAGES}"
    [[ -z "${MAX_WARCS:-}" ]] || params+="~max_warcs=${MAX_WARCS}"
    [[ -z "${CONFIG:-}" ]] || params+="~config=${CONFIG}"
    extra=()
    [[ -z "${SERVICE_ACCOUNT:-}" ]] || extra+=(--service-account-email "$SERVICE_ACCOUNT")
    [[ "${FLEXRS:-0}" != 1 ]] || extra+=(--flexrs-goal COST_OPTIMIZED)
    [[ -z "${MAX_WORKERS:-}" ]] || extra+=(--max-workers "$MAX_WORKERS")
    [[ -z "${MACHINE_TYPE:-}" ]] || extra+=(--worker-machine-type "$MACHINE_TYPE")
    echo "Launching template $TEMPLATE_PATH as job $JOB in $PROJECT/$REGION:"
    echo "  snapshot $SNAPSHOT, ${MAX_WARCS:-all} WARC files from $SOURCE, stages $STAGES, tokenizer $TOKENIZER"
    echo "  outputs under $OUTPUT/<snapshot>/ (skipped when $OUTPUT/<snapshot>/_COMPLETE.json matches the config)"
    run gcloud dataflow flex-template run "$JOB" --project "$PROJECT" --region "$REGION" \
      --template-file-gcs-location "$TEMPLATE_PATH" \
      --temp-location "gs://${BUCKET}/tmp" --staging-location "gs://${BUCKET}/staging" \
      --parameters "^~^${params}" "${extra[@]}"
    echo "monitor: https://console.cloud.google.com/dataflow/jobs?project=${PROJECT}"
    echo "         gcloud dataflow jobs list --project $PROJECT --region $REGION --status active" ;;

  schedule)
    TARGET=schedule
    need_vars PROJECT REGION BUCKET
    need_tool terraform "install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)"
    need_tool gcloud "install the Google Cloud CLI and run 'gcloud auth application-default login'"
    TF=(terraform -chdir=infra/terraform)
    vars=(-var "project=${PROJECT}" -var "region=${REGION}" -var "bucket_name=${BUCKET}")
    [[ -z "${TEMPLATE_PATH:-}" ]] || vars+=(-var "template_path=${TEMPLATE_PATH}")
    [[ -z "${SCHEDULE:-}" ]] || vars+=(-var "schedule=${SCHEDULE}")
    [[ -z "${FLEXRS:-}" ]] || vars+=(-var "flexrs=$([[ $FLEXRS == 1 ]] && echo true || echo false)")
    [[ -z "${MAX_WARCS:-}" ]] || vars+=(-var "max_warcs=${MAX_WARCS}")
    echo "Terraform in infra/terraform: bucket gs://$BUCKET (lifecycle on tmp/ and staging/), worker and"
    echo "scheduler service accounts, the AWS-credentials secret (no value), and a Cloud Scheduler job"
    echo "that launches the template monthly with snapshot=latest, in $PROJECT/$REGION."
    run "${TF[@]}" init -input=false
    run "${TF[@]}" plan -input=false -out=tfplan "${vars[@]}"
    if [[ "${APPLY:-0}" == 1 ]]; then
      run "${TF[@]}" apply -input=false tfplan
      echo "next: add the AWS key (only for source=s3):"
      echo "  printf '{\"AWS_ACCESS_KEY_ID\":\"...\",\"AWS_SECRET_ACCESS_KEY\":\"...\"}' | gcloud secrets versions add \\"
      echo "    \$(terraform -chdir=infra/terraform output -raw aws_secret_id) --data-file=- --project $PROJECT"
    else
      echo "plan saved to infra/terraform/tfplan; review it, then: make schedule PROJECT=$PROJECT REGION=$REGION BUCKET=$BUCKET APPLY=1"
    fi ;;

  cost-estimate)
    TARGET=cost-estimate
    PY=${PY:-.venv/bin/python}
    [[ -x "$PY" ]] || die "$PY not found; run 'make venv' first"
    # shellcheck disable=SC2086  # COST_ARGS is a list of options
    run "$PY" bench/cost_model.py ${COST_ARGS:-} ;;

  *)
    die "usage: scripts/dataflow.sh template|run|schedule|cost-estimate (see the header of this file)" ;;
esac
