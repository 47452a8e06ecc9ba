"""infra/terraform parsed with python-hcl2: the monthly launch, least-privilege identities, the
temp-data lifecycle, and that every variable used is declared.  Nothing is planned or applied."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import hcl2
import pytest

from tests.script_tools import stub_tool, tool_path

REPO = Path(__file__).resolve().parent.parent
TF = REPO / "infra" / "terraform"
METADATA = REPO / "infra" / "dataflow" / "metadata.json"


def unquote(value):
    """python-hcl2 keeps string literals quoted and expressions as ${...}; give plain values."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


@pytest.fixture(scope="module")
def tf() -> dict:
    merged: dict = {"resource": {}, "variable": {}, "locals": {}, "output": {}}
    for path in sorted(TF.glob("*.tf")):
        with open(path) as fh:
            data = unquote(hcl2.load(fh))
        for block in data.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    merged["resource"].setdefault(rtype, {})[name] = body
        for block in data.get("variable", []):
            merged["variable"].update(block)
        for block in data.get("locals", []):
            merged["locals"].update(block)
        for block in data.get("output", []):
            merged["output"].update(block)
    return merged


def all_text() -> str:
    return "\n".join(p.read_text() for p in sorted(TF.glob("*.tf")))


def test_every_variable_used_is_declared_and_every_declared_one_is_used(tf):
    text = all_text()
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", text))
    declared = set(tf["variable"])
    assert used - declared == set(), f"undeclared: {sorted(used - declared)}"
    assert declared - used == set(), f"declared but unused: {sorted(declared - used)}"
    for name in ("project", "region", "bucket_name", "schedule", "flexrs", "template_path", "aws_secret_name"):
        assert name in declared
    assert all(v.get("description") for v in tf["variable"].values())


def test_scheduler_launches_the_template_monthly_with_snapshot_latest(tf):
    job = tf["resource"]["google_cloud_scheduler_job"]["monthly"]
    assert re.fullmatch(r"\$\{var\.schedule\}", job["schedule"])
    default_cron = tf["variable"]["schedule"]["default"].split()
    assert len(default_cron) == 5 and default_cron[2] != "*" and default_cron[3:] == ["*", "*"]  # monthly
    target = job["http_target"][0]
    assert target["http_method"] == "POST"
    assert target["uri"] == ("https://dataflow.googleapis.com/v1b3/projects/${var.project}/locations/"
                             "${var.region}/flexTemplates:launch")
    assert target["body"] == "${base64encode(jsonencode(local.launch_body))}"
    assert target["oauth_token"][0]["service_account_email"] == "${google_service_account.scheduler.email}"
    launch = tf["locals"]["launch_body"]["launchParameter"]
    assert launch["containerSpecGcsPath"] == "${local.template_path}"
    assert "var.template_path" in tf["locals"]["template_path"]
    assert launch["parameters"] == "${local.template_parameters}"
    assert launch["environment"] == "${local.launch_environment}"
    base = tf["locals"]["base_parameters"]
    assert base["snapshot"] == "latest"
    tp = tf["locals"]["template_parameters"]
    assert "local.base_parameters" in tp and "local.optional_parameters" in tp
    names = {p["name"] for p in json.loads(METADATA.read_text())["parameters"]}
    assert set(base) | set(tf["locals"]["optional_parameters"]) == names


def test_flexrs_is_optional_and_cost_optimized(tf):
    env = tf["locals"]["launch_environment"]
    assert re.search(r"var\.flexrs\s*\?\s*\{\s*flexrsGoal\s*=\s*\"FLEXRS_COST_OPTIMIZED\"", env)
    assert tf["variable"]["flexrs"]["default"] is False
    assert "google_service_account.worker.email" in env  # jobs run as the worker account


def grants(tf) -> dict[str, set[tuple[str, str]]]:
    """member service account -> {(role, scope)} over every IAM resource."""
    out: dict[str, set[tuple[str, str]]] = {}
    scope_keys = {"google_project_iam_member": "project",
                  "google_storage_bucket_iam_member": "bucket",
                  "google_secret_manager_secret_iam_member": "secret_id",
                  "google_artifact_registry_repository_iam_member": "repository",
                  "google_service_account_iam_member": "service_account_id"}
    for rtype, named in tf["resource"].items():
        if "iam" not in rtype:
            continue
        assert rtype in scope_keys, f"unexpected IAM resource type {rtype} (bindings/policies replace others' grants)"
        for body in named.values():
            member = re.fullmatch(r"serviceAccount:\$\{google_service_account\.(\w+)\.email\}", body["member"])
            assert member, body["member"]
            out.setdefault(member.group(1), set()).add((body["role"], body[scope_keys[rtype]]))
    return out


def test_service_accounts_have_exactly_the_roles_they_need(tf):
    g = grants(tf)
    assert g["worker"] == {
        ("roles/dataflow.worker", "${var.project}"),
        ("roles/storage.objectAdmin", "${google_storage_bucket.corpus.name}"),
        ("roles/secretmanager.secretAccessor", "${google_secret_manager_secret.aws.id}"),
        ("roles/artifactregistry.reader", "${google_artifact_registry_repository.images.name}"),
    }  # the launcher runs as this account too, but only describes the job: Dataflow creates it
    assert g["scheduler"] == {
        ("roles/dataflow.developer", "${var.project}"),
        ("roles/iam.serviceAccountUser", "${google_service_account.worker.name}"),
    }
    assert not re.search(r"roles/(owner|editor|viewer|storage\.admin)\b", all_text())


def test_bucket_deletes_temp_data_and_the_secret_has_no_value(tf):
    bucket = tf["resource"]["google_storage_bucket"]["corpus"]
    assert bucket["name"] == "${var.bucket_name}"
    deletes = [r for r in bucket["lifecycle_rule"] if r["action"][0]["type"] == "Delete"]
    assert len(deletes) == 1
    cond = deletes[0]["condition"][0]
    assert cond["age"] == "${var.temp_retention_days}" and sorted(cond["matches_prefix"]) == ["staging/", "tmp/"]
    assert bucket["public_access_prevention"] == "enforced"
    assert tf["resource"]["google_secret_manager_secret"]["aws"]["secret_id"] == "${var.aws_secret_name}"
    assert "google_secret_manager_secret_version" not in tf["resource"]
    assert not re.search(r"AKIA[0-9A-Z]{16}|secret_data", all_text())


def run_script(args, env, tmp_path):
    base = {"PATH": env.pop("PATH"), "HOME": str(tmp_path)}
    return subprocess.run(["bash", str(REPO / "scripts" / "dataflow.sh"), *args], capture_output=True, text=True,
                          env={**base, **env}, timeout=60)


def test_make_schedule_checks_variables_and_terraform_then_plans(tmp_path):
    path = tool_path(tmp_path, {"terraform", "gcloud"})
    proc = run_script(["schedule"], {"PATH": path, "PROJECT": "p", "REGION": "r"}, tmp_path)
    assert proc.returncode == 2 and "BUCKET" in proc.stderr and "PROJECT" not in proc.stderr.split("e.g.")[0]
    proc = run_script(["schedule"], {"PATH": path, "PROJECT": "p", "REGION": "r", "BUCKET": "b"}, tmp_path)
    assert proc.returncode == 2 and "terraform not found" in proc.stderr
    stub_tool(tmp_path, "terraform", log_own_path=True)
    stub_tool(tmp_path, "gcloud", log_own_path=True)
    log = tmp_path / "calls.log"
    proc = run_script(["schedule"], {"PATH": path, "PROJECT": "p", "REGION": "us-central1", "BUCKET": "b",
                                     "FLEXRS": "1", "FAKE_LOG": str(log)}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert [c.split()[2] for c in calls] == ["init", "plan"]  # no apply without APPLY=1
    assert "-var project=p" in calls[1] and "-var bucket_name=b" in calls[1] and "-var flexrs=true" in calls[1]
    assert "APPLY=1" in proc.stdout
    proc = run_script(["schedule"], {"PATH": path, "PROJECT": "p", "REGION": "us-central1", "BUCKET": "b",
                                     "APPLY": "1", "FAKE_LOG": str(log)}, tmp_path)
    assert proc.returncode == 0 and log.read_text().splitlines()[-1].split()[2:] == ["apply", "-input=false", "tfplan"]
