"""Flex Template entry point: template parameters -> ``python -m pipelines all`` arguments.

Dataflow starts the template's launcher with every parameter as ``--name=value`` plus its own
pipeline options (project, region, temp/staging locations, job name, service account...).  The
parameters (registered in ``pipelines.stages``; one per entry of infra/dataflow/metadata.json,
tested to match) become options of the ``all`` stage; everything else passes through to Beam.  Defaults that only make sense on
Dataflow are added when absent: the Dataflow runner (the stages' default is the local runner),
``--sdk_location=container`` (the image already holds Beam) and the worker image baked into the
template image at build time (``CORPUS_WORKER_IMAGE``).

The Flex launcher also passes ``--template_location``: with it Beam's DataflowRunner writes the
job description there instead of submitting, and the launcher creates the job from it.  ``all``
builds its three stages as one graph, so one launch is one Dataflow job; when the snapshot is
already complete that job is a single logging step (a launch must create a job).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from typing import Mapping, Sequence

from pipelines import stages

log = logging.getLogger("pipelines.template")

# template parameter -> option of `python -m pipelines all` (the stage registry's template stage)
TEMPLATE_PARAMETERS = dict(stages.stage(stages.TEMPLATE_STAGE).template_parameters)
WORKER_IMAGE_ENV = "CORPUS_WORKER_IMAGE"
# Secret Manager secret (short name in this project, or projects/P/secrets/S) holding the AWS
# key for s3://commoncrawl as JSON {"AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...}.
AWS_SECRET_ENV = "CORPUS_AWS_SECRET"
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def to_cli(argv: Sequence[str], environ=os.environ) -> list[str]:
    """The ``python -m pipelines ...`` argument list for the launcher's ``argv``."""
    from pipelines.runner import has_flag

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name in TEMPLATE_PARAMETERS:
        parser.add_argument(f"--{name}", default=None)
    params, beam_args = parser.parse_known_args(list(argv))
    cli = [stages.TEMPLATE_STAGE]
    for name, option in TEMPLATE_PARAMETERS.items():
        value = getattr(params, name)
        if value is not None and str(value).strip() != "":  # an unset optional parameter may arrive empty
            cli += [option, str(value).strip()]
    beam = list(beam_args)
    if not has_flag(beam, "--runner"):
        beam.append("--runner=DataflowRunner")
    if not has_flag(beam, "--sdk_location"):
        beam.append("--sdk_location=container")
    if environ.get(WORKER_IMAGE_ENV) and not has_flag(beam, "--sdk_container_image"):
        beam.append(f"--sdk_container_image={environ[WORKER_IMAGE_ENV]}")
    return cli + beam


def parse_aws_secret(payload: bytes | str) -> dict[str, str]:
    """The AWS variables in a secret's JSON payload; a clear ValueError for anything else."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"AWS secret is not JSON ({exc}); store "
                         '{"AWS_ACCESS_KEY_ID": "...", "AWS_SECRET_ACCESS_KEY": "..."}') from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in AWS_KEYS[:2]):
        raise ValueError("AWS secret must be a JSON object with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return {k: data[k] for k in AWS_KEYS if isinstance(data.get(k), str) and data[k]}


def secret_version_name(secret: str, project: str | None) -> str:
    if secret.startswith("projects/"):
        return secret if "/versions/" in secret else f"{secret}/versions/latest"
    if not project:
        raise ValueError(f"{AWS_SECRET_ENV}={secret}: no project to look it up in (set GOOGLE_CLOUD_PROJECT "
                         "or give projects/P/secrets/S)")
    return f"projects/{project}/secrets/{secret}/versions/latest"


def aws_env_from_secret(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """AWS credentials from Secret Manager when ``CORPUS_AWS_SECRET`` is set and the environment has
    none; {} (with a warning) when the secret cannot be read, so an https run still works."""
    secret = environ.get(AWS_SECRET_ENV)
    if not secret or environ.get("AWS_ACCESS_KEY_ID"):
        return {}
    try:
        import google.auth
        from google.cloud import secretmanager

        project = environ.get("GOOGLE_CLOUD_PROJECT") or google.auth.default()[1]
        client = secretmanager.SecretManagerServiceClient()
        payload = client.access_secret_version(name=secret_version_name(secret, project)).payload.data
        return parse_aws_secret(payload)
    except Exception as exc:  # noqa: BLE001 - any failure: run without S3 credentials, say why
        log.warning("no AWS credentials from secret %s (%s: %s); s3:// sources will fail, https works",
                    secret, type(exc).__name__, exc)
        return {}


def main(argv: Sequence[str] | None = None) -> int:
    from pipelines.cli import main as cli_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--print-aws-env"]:  # for the worker entrypoint: export lines, nothing else
        for key, value in aws_env_from_secret().items():
            print(f"export {key}={shlex.quote(value)}")
        return 0
    os.environ.update(aws_env_from_secret())
    return cli_main(to_cli(argv))


if __name__ == "__main__":
    sys.exit(main())
