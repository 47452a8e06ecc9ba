"""The layers hold (docs/architecture.md "Layers") and required modules are imported plainly.

* The import-linter contracts in ``pyproject.toml`` ([tool.importlinter]) are kept by the project
  and broken by a small tree built here that violates each of them, so a contract that checks
  nothing fails this test too.
* ``../shared/tools/check_layers.py`` (when ../shared is present) finds no import cycle, no
  upward import and no ImportError handler that swallows the error.
* A required module that cannot be imported (``sys.modules[name] = None`` before anything else
  runs) stops the stage at start with a one-line message naming it; nothing runs with the feature
  silently off (PII redaction, refine's dedup, robots fields, a CLI stage).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO_ROOT

CHECK_LAYERS = REPO_ROOT.parent / "shared" / "tools" / "check_layers.py"
CONTRACTS = ("filters and tokenization never import pipelines or trainer",
             "trainer never imports pipelines",
             "settings (the config reader) imports no project package",
             "filters, tokenization, settings and trainer import no Beam",
             "no import cycles among the modules of any package")


def lint_imports(cwd: Path, config: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))")
    env = dict(os.environ, PYTHONPATH=str(cwd), NO_COLOR="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def status_of(output: str) -> dict[str, str]:
    return {name: m.group(1) for name in CONTRACTS
            if (m := re.search(re.escape(name) + r"\s+(KEPT|BROKEN)", output))}


def test_the_project_keeps_every_import_contract():
    r = lint_imports(REPO_ROOT, REPO_ROOT / "pyproject.toml")
    assert status_of(r.stdout) == {name: "KEPT" for name in CONTRACTS}, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_contracts_catch_an_upward_import_beam_below_pipelines_and_a_cycle(tmp_path):
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text[text.index("[tool.importlinter]"):text.index("[tool.pytest.ini_options]")]
    (tmp_path / "pyproject.toml").write_text(section, encoding="utf-8")
    files = {
        "settings/__init__.py": "import yaml\n",
        "filters/__init__.py": "",
        "filters/quality.py": "import apache_beam as beam\n",                 # Beam below pipelines
        "tokenization/__init__.py": "",
        "tokenization/shards.py": "def load():\n    from tokenization import tokenizer\n",
        "tokenization/tokenizer.py": "from tokenization.shards import load\n",  # cycle (lazy side)
        "tokenization/__main__.py": "def cfg():\n    from pipelines.config import load_config\n",
        "pipelines/__init__.py": "",
        "pipelines/config.py": "from settings import *\n",
        "trainer/__init__.py": "",
        "trainer/config.py": "from settings import read_yaml\n",
        "trainer/ablate.py": "def check():\n    from pipelines.config import load_config\n",
    }
    for rel, body in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body, encoding="utf-8")
    r = lint_imports(tmp_path, tmp_path / "pyproject.toml")
    assert status_of(r.stdout) == {
        "filters and tokenization never import pipelines or trainer": "BROKEN",
        "trainer never imports pipelines": "BROKEN",
        "settings (the config reader) imports no project package": "KEPT",
        "filters, tokenization, settings and trainer import no Beam": "BROKEN",
        "no import cycles among the modules of any package": "BROKEN",
    }, r.stdout + r.stderr
    assert r.returncode != 0
    assert "tokenization.__main__ -> pipelines.config" in r.stdout
    assert "trainer.ablate -> pipelines.config" in r.stdout


def test_shared_layer_check_finds_no_cycle_upward_import_or_import_guard():
    if not CHECK_LAYERS.is_file():
        pytest.skip(f"layer checker not found at {CHECK_LAYERS} (../shared is not present)")
    r = subprocess.run([sys.executable, str(CHECK_LAYERS)], cwd=REPO_ROOT, capture_output=True,
                       text=True, timeout=120)
    findings = r.stdout.splitlines()
    assert findings and findings[-1].startswith("layers: "), r.stdout + r.stderr
    bad = [f for f in findings if f.startswith(("cycle:", "ImportError guard:", "imports pipelines from below:"))]
    assert bad == [], r.stdout
    assert re.search(r"layers: 0 cycles, 0 ImportError guards, 0 upward imports", findings[-1]), r.stdout


# ------------------------------------------------------------------ required modules fail loudly
def run_blocked(blocked: str, code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter where importing ``blocked`` raises ImportError."""
    prologue = f"import sys; sys.modules[{blocked!r}] = None\n"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def cli(*argv: str) -> str:
    return f"from pipelines.cli import main\nsys.exit(main({list(argv)!r}))\n"


def docs_input(tmp_path: Path) -> Path:
    inp = tmp_path / "in"
    inp.mkdir()
    text = "Call me at alice@example.com about the order. " * 20
    pq.write_table(pa.Table.from_pylist([{"url": "https://a.example/1", "text": text}]), inp / "docs.parquet")
    return inp


def assert_one_line_about(r: subprocess.CompletedProcess, module: str) -> None:
    assert r.returncode != 0, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"required module {module} cannot be imported" in errors[0], r.stderr
    assert "Traceback" not in r.stderr, r.stderr


def test_refine_without_the_pii_module_fails_at_start_instead_of_keeping_pii(tmp_path):
    inp, out = docs_input(tmp_path), tmp_path / "out"
    r = run_blocked("filters.pii", cli("refine", "--input", str(inp), "--output", str(out)), tmp_path)
    assert_one_line_about(r, "filters.pii")
    assert not out.exists() or not list(out.rglob("*.parquet")), "refine wrote output without PII redaction"
    assert "kept" not in r.stderr


def test_refine_dedup_hook_raises_when_the_dedup_module_is_missing(tmp_path):
    code = """
        from pipelines import refine
        from pipelines.config import load_config
        assert refine.dedup_transform(load_config(overrides={"refine": {"dedup": False}})) is None
        refine.dedup_transform(load_config(overrides={"refine": {"dedup": True}}))
        print("dedup skipped silently")
    """
    r = run_blocked("pipelines.dedup", code, tmp_path)
    assert r.returncode != 0 and "dedup skipped silently" not in r.stdout, r.stdout + r.stderr
    assert "pipelines.dedup" in r.stderr.splitlines()[-1], r.stderr


def test_refine_schema_without_the_consent_module_fails_instead_of_dropping_robots_fields(tmp_path):
    code = """
        from pipelines import refine
        print(sorted(f.name for f in refine.kept_schema()))
    """
    r = run_blocked("pipelines.consent", code, tmp_path)
    assert r.returncode != 0, r.stdout
    assert "pipelines.consent" in r.stderr.splitlines()[-1], r.stderr


def test_cli_with_a_stage_module_missing_fails_instead_of_hiding_the_stage(tmp_path):
    r = run_blocked("pipelines.report", cli("--help"), tmp_path)
    assert_one_line_about(r, "pipelines.report")
    assert "report" not in r.stdout   # no help listing without the stage


def test_signals_always_count_pii(tmp_path):
    from filters.signals import pii_counts, redact_pii
    from pipelines.config import load_config

    cfg = load_config()
    counts = pii_counts("write to alice@example.com today", "https://a.example/", "en", cfg)
    assert counts is not None and counts.get("email") == 1
    text, done = redact_pii("write to alice@example.com today", "https://a.example/", "en", cfg)
    assert "alice@example.com" not in text and done.get("email") == 1
