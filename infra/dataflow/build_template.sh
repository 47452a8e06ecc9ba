#!/usr/bin/env bash
# Build the Flex Template image with Cloud Build and publish the template spec to GCS.
#   PROJECT=p REGION=r BUCKET=b infra/dataflow/build_template.sh     (make dataflow-template)
# Optional: TAG (default: git short hash, else a timestamp), AR_REPO (default corpus-pipeline),
# IMAGE (default REGION-docker.pkg.dev/PROJECT/AR_REPO/corpus-pipeline:TAG),
# TEMPLATE_PATH (default gs://BUCKET/templates/corpus-pipeline.json), LAUNCHER_IMAGE (pin a
# dated python311-template-launcher-base tag), DRY_RUN=1 (print the commands, run nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { echo "error: $*" >&2; exit 2; }
missing=()
for v in PROJECT REGION BUCKET; do [[ -n "${!v:-}" ]] || missing+=("$v"); done
((${#missing[@]} == 0)) || die "set ${missing[*]} (e.g. make dataflow-template PROJECT=my-project REGION=us-central1 BUCKET=my-bucket)"
command -v gcloud >/dev/null || die "gcloud not found on PATH; install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install) and run 'gcloud auth login'"

TAG=${TAG:-$(git rev-parse --short HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)}
AR_REPO=${AR_REPO:-corpus-pipeline}
IMAGE=${IMAGE:-${REGION}-docker.pkg.dev/${PROJECT}/${AR_REPO}/corpus-pipeline:${TAG}}
TEMPLATE_PATH=${TEMPLATE_PATH:-gs://${BUCKET}/templates/corpus-pipeline.json}
AWS_SECRET_NAME=${AWS_SECRET_NAME:-commoncrawl-aws-credentials}
LAUNCHER_IMAGE=${LAUNCHER_IMAGE:-gcr.io/dataflow-templates-base/python311-template-launcher-base:latest}
BEAM_VERSION=$(sed -n 's/^apache-beam==//p' requirements.lock)
DOCKER_BEAM=$(sed -n 's|^FROM apache/beam_python3.11_sdk:||p' infra/dataflow/Dockerfile)
[[ "$BEAM_VERSION" == "$DOCKER_BEAM" ]] || die "infra/dataflow/Dockerfile uses Beam $DOCKER_BEAM but requirements.lock pins $BEAM_VERSION"

if [[ -x .venv/bin/python ]]; then
  .venv/bin/python infra/dataflow/worker_requirements.py --check \
    || die "infra/dataflow/requirements-worker.txt is stale; regenerate it first"
fi

cat <<PLAN
Flex Template build:
  1. Cloud Build (project $PROJECT, region $REGION) builds infra/dataflow/Dockerfile
     (apache/beam_python3.11_sdk:$BEAM_VERSION + requirements-worker.txt + pipelines/ filters/ tokenization/ settings/ configs/)
     and pushes $IMAGE
  2. gcloud dataflow flex-template build $TEMPLATE_PATH
     --image $IMAGE --sdk-language PYTHON --metadata-file infra/dataflow/metadata.json
PLAN

run() { printf '+ %s\n' "$*"; [[ "${DRY_RUN:-0}" == 1 ]] || "$@"; }

# Only what the image needs goes to Cloud Build (never .venv/, out/ or data).
CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/infra/dataflow"
cp -r pipelines filters tokenization settings configs pyproject.toml "$CTX/"
cp infra/dataflow/Dockerfile infra/dataflow/launcher.py infra/dataflow/entrypoint.sh infra/dataflow/requirements-worker.txt \
  "$CTX/infra/dataflow/"
find "$CTX" -name __pycache__ -type d -prune -exec rm -rf {} +
cat > "$CTX/cloudbuild.yaml" <<YAML
steps:
  - name: gcr.io/cloud-builders/docker
    args: [build, -f, infra/dataflow/Dockerfile, -t, "$IMAGE",
           --build-arg, "WORKER_IMAGE=$IMAGE", --build-arg, "LAUNCHER_IMAGE=$LAUNCHER_IMAGE",
           --build-arg, "AWS_SECRET_NAME=$AWS_SECRET_NAME", .]
images: ["$IMAGE"]
timeout: 3600s
YAML

run gcloud artifacts repositories describe "$AR_REPO" --location "$REGION" --project "$PROJECT" --format "value(name)" \
  || run gcloud artifacts repositories create "$AR_REPO" --repository-format docker --location "$REGION" --project "$PROJECT"
run gcloud builds submit "$CTX" --config "$CTX/cloudbuild.yaml" --project "$PROJECT" --region "$REGION"
run gcloud dataflow flex-template build "$TEMPLATE_PATH" --image "$IMAGE" --sdk-language PYTHON \
  --metadata-file infra/dataflow/metadata.json --project "$PROJECT"
echo "template: $TEMPLATE_PATH"
echo "image:    $IMAGE"
echo "next:     make dataflow-run SNAPSHOT=latest PROJECT=$PROJECT REGION=$REGION BUCKET=$BUCKET MAX_WARCS=10"
