#!/bin/bash
# Worker entrypoint: AWS credentials for s3://commoncrawl from Secret Manager (the worker
# service account may read that one secret), exported for boto3, then Beam's own boot.
# Without the secret (or with source=https) the workers simply run without AWS credentials.
if [[ -z "${AWS_ACCESS_KEY_ID:-}" && -n "${CORPUS_AWS_SECRET:-}" ]]; then
  if creds=$(python -m pipelines.template_main --print-aws-env); then
    eval "$creds"
  fi
fi
exec /opt/apache/beam/boot "$@"
