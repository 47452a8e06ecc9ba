"""Hostile configuration and output arguments (issue 11, items 8-10): every one ends as a one-line
error naming the key or argument with exit status 2, before any work and in bounded memory."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import config as config_mod
from pipelines.config import MAX_CONFIG_BYTES, ConfigError, check_output_dir, load_config, read_yaml

REPO = Path(__file__).resolve().parent.parent


def alias_bomb(key_path: list[str], levels: int = 9, width: int = 9) -> bytes:
    """A "billion laughs" YAML under ``key_path``: ~400 bytes that expand to width**levels strings."""
    lines, indent = [], ""
    for key in key_path:
        lines.append(f"{indent}{key}:")
        indent += "  "
    lines.append(f'{indent}- &a ["lol"' + ',"lol"' * (width - 1) + "]")
    for i in range(1, levels):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{indent}- &{name} [" + ",".join([f"*{prev}"] * width) + "]")
    return ("\n".join(lines) + "\n").encode()


def write(tmp_path: Path, data: bytes, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def one_line_error(stderr: str, *needles: str) -> str:
    """The error line; checks there is no traceback and that it names every needle."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert lines, "no error message"
    last = lines[-1]
    assert "error" in last, stderr
    for needle in needles:
        assert needle in last, (needle, stderr)
    return last


def _limit_memory():  # a regression must die of MemoryError here, not take the machine down
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def run_module(*args: str, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *python_flags, "-m", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, preexec_fn=_limit_memory)


# ---- item 8: the YAML reader ---------------------------------------------------------------------
def test_a_small_alias_bomb_is_refused_not_expanded(tmp_path):
    path = write(tmp_path, alias_bomb(["extract", "html_types"], levels=4))
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_config(path)
    with pytest.raises(ConfigError, match="anchors and aliases"):
        read_yaml(write(tmp_path, b"a: &x 1\nb: 2\n", "anchor_only.yaml"))  # an anchor alone too


def test_the_alias_bomb_ends_the_pipelines_cli_with_exit_2(tmp_path):
    bomb = alias_bomb(["extract", "html_types"])
    assert len(bomb) < 450  # a few hundred bytes that would expand to 9**9 strings
    cfg = write(tmp_path, bomb)
    r = run_module("pipelines", "extract", "--config", str(cfg), "--input", str(tmp_path / "none.warc.gz"),
                   "--output", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    one_line_error(r.stderr, str(cfg), "aliases")


def test_the_alias_bomb_ends_trainer_train_with_exit_2_and_the_trainer_imports_no_beam(tmp_path):
    cfg = write(tmp_path, alias_bomb(["device"]))
    r = run_module("trainer", "train", "--data", str(tmp_path / "no-shards"), "--config", str(cfg),
                   "--out", str(tmp_path / "run"), python_flags=("-X", "importtime"))
    assert r.returncode == 2, r.stderr
    one_line_error(r.stderr, str(cfg), "aliases")
    # the trainer reads its config with settings.read_yaml (pipelines.config re-exports it): that
    # must pull in neither Beam nor the pipelines package
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "settings" in imported and "apache_beam" not in imported and "pipelines" not in imported


def test_oversized_deep_wide_and_binary_files_are_refused(tmp_path):
    big = write(tmp_path, b"# padding\n" * (MAX_CONFIG_BYTES // 10 + 1), "big.yaml")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(big)
    deep = write(tmp_path, b"extract: " + b"[" * 1500 + b"]" * 1500 + b"\n", "deep.yaml")
    with pytest.raises(ConfigError, match="nested too deeply|YAML nodes"):
        load_config(deep)
    wide = write(tmp_path, b"extract:\n  html_types: [" + b"a," * (config_mod.MAX_CONFIG_NODES + 1) + b"a]\n",
                 "wide.yaml")
    with pytest.raises(ConfigError, match="YAML nodes"):
        load_config(wide)
    binary = write(tmp_path, b"extract:\n  html_types: [\xff\xfe]\n", "binary.yaml")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="top level"):
        load_config(write(tmp_path, b"- a\n- b\n", "list.yaml"))


# ---- item 9: every value checked against its default -----------------------------------------------
BAD_VALUES = [
    ({"extract": {"html_types": "text/html"}}, "extract.html_types"),         # a string for a list
    ({"extract": {"html_types": ["text/html", 3]}}, "extract.html_types[1]"),
    ({"extract": {"max_payload_bytes": "5MB"}}, "extract.max_payload_bytes"),
    ({"extract": {"max_payload_bytes": 0}}, "extract.max_payload_bytes"),
    ({"extract": {"max_payload_bytes": True}}, "extract.max_payload_bytes"),  # a bool is not an int
    ({"extract": {"max_payload_bytes": 5.5e6}}, "extract.max_payload_bytes"),  # a float is not an int
    ({"extract": {"timeout_s": "slow"}}, "extract.timeout_s"),
    ({"extract": {"timeout_s": -1}}, "extract.timeout_s"),
    ({"extract": {"drop_truncated": "no"}}, "extract.drop_truncated"),
    ({"extract": {"min_charset_confidence": 1.5}}, "extract.min_charset_confidence"),
    ({"extract": {"min_charset_confidence": float("nan")}}, "extract.min_charset_confidence"),
    ({"extract": {"splits_per_file": "many"}}, "extract.splits_per_file"),
    ({"extract": {"splits_per_file": 0}}, "extract.splits_per_file"),
    ({"extract": {"trafilatura": {"fast": "yes"}}}, "extract.trafilatura.fast"),
    ({"extract": {"trafilatura": None}}, "extract.trafilatura"),
    ({"tokenize": {"val_fraction": 2}}, "tokenize.val_fraction"),
    ({"tokenize": {"shard_tokens": -5}}, "tokenize.shard_tokens"),
    ({"tokenize": {"train": {"vocab_size": "big"}}}, "tokenize.train.vocab_size"),
    ({"sources": {"timeout_s": 0}}, "sources.timeout_s"),
    ({"sources": {"max_retries": -1}}, "sources.max_retries"),
    ({"dedup": {"order": "url"}}, "dedup.order"),
    ({"dedup": {"minhash": {"bands": 0}}}, "dedup.minhash.bands"),
    ({"dedup": {"minhash": {"verify": "maybe"}}}, "dedup.minhash.verify"),
    ({"language": {"keep": "en"}}, "language.keep"),
    ({"language": {"keep": ["en", 7]}}, "language.keep[1]"),
    ({"language": {"model_path": 5}}, "language.model_path"),
    ({"quality": {"per_language": "de"}}, "quality.per_language"),
    ({"quality": {"per_language": {"de": {"gopher_min_words": "80"}}}},
     "quality.per_language.de.gopher_min_words"),
    ({"quality": {"per_language": {"de": {"gopher_min_wrds": 80}}}},
     "quality.per_language.de.gopher_min_wrds"),
    ({"quality": {"thresholds": {"gopher_max_dup_lines_frac": 3}}},
     "quality.thresholds.gopher_max_dup_lines_frac"),
    ({"pii": {"redact": None}}, "pii.redact"),
    ({"pii": {"placeholders": {"email": 1}}}, "pii.placeholders.email"),
    ({"consent": {"server_error": "ignore"}}, "consent.server_error"),
]


@pytest.mark.parametrize("override,key", BAD_VALUES, ids=[k for _, k in BAD_VALUES])
def test_a_value_of_the_wrong_type_or_range_names_its_key(override, key):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=override)
    assert f"'{key}'" in str(err.value), str(err.value)


GOOD_VALUES = [
    {"extract": {"min_charset_confidence": 1}},                 # an int where the default is a float
    {"extract": {"timeout_s": 0}},                               # 0 disables
    {"extract": {"splits_per_file": 3}},                         # 'auto' or a count
    {"quality": {"thresholds": {"gopher_min_words": None}}},     # null disables a threshold
    {"quality": {"thresholds": {"gopher_min_stop_words_frac": 0.3}}},
    {"quality": {"per_language": {"de": {"gopher_min_words": 80, "c4_min_sentences": None}}}},
    {"pii": {"placeholders": {"email": None}}},                  # null turns a detector off
    {"language": {"keep": ["en", "de"], "model_path": "lid.176.bin"}},
    {"tokenize": {"tiktoken_eot_id": 100257, "train": {"sample_docs": None}}},
    {"dedup": {"keep": {"quality_column": None}}},
]


@pytest.mark.parametrize("override", GOOD_VALUES)
def test_values_the_defaults_allow_are_accepted(override):
    load_config(overrides=override)


def test_every_size_key_refuses_non_positive_and_strings():
    """Keys ending in _bytes (including caps added later) are positive integers."""
    defaults = load_config()
    size_keys = [(section, key) for section, body in defaults.items() if isinstance(body, dict)
                 for key, value in body.items() if key.endswith("_bytes")]
    assert ("extract", "max_payload_bytes") in size_keys
    for section, key in size_keys:
        for bad in (0, -1, "5MB"):
            with pytest.raises(ConfigError, match=f"{section}.{key}"):
                load_config(overrides={section: {key: bad}})


def test_the_pipelines_cli_refuses_a_bad_value_from_the_file_before_any_work(tmp_path, capsys):
    from pipelines.cli import main

    cfg = write(tmp_path, b"extract:\n  html_types: text/html\n")
    # the input does not exist: had the stage started work, the error would be about it
    rc = main(["extract", "--config", str(cfg), "--input", str(tmp_path / "none.warc.gz"),
               "--output", str(tmp_path / "out")])
    assert rc == 2
    one_line_error(capsys.readouterr().err, str(cfg), "extract.html_types", "list of strings")
    assert not (tmp_path / "out").exists()


# ---- item 10: the output argument is checked first ---------------------------------------------
STAGE_ARGS = {
    "extract": ["--input", "none.warc.gz"],
    "refine": ["--input", "none"],
    "dedup": ["--input", "none"],
    "tokenize": ["--input", "none", "--tokenizer", "none.json"],
    "all": ["--snapshot", "CC-MAIN-2024-10", "--tokenizer", "none.json"],
}


@pytest.mark.parametrize("stage", sorted(STAGE_ARGS))
def test_every_stage_refuses_an_output_that_is_a_file_before_work(stage, tmp_path, capsys, monkeypatch):
    from pipelines.cli import main

    monkeypatch.chdir(tmp_path)
    # were the check ever late again, no stage may reach the network: sources point at a closed port
    (tmp_path / "offline.yaml").write_text('sources: {https_base: "http://127.0.0.1:9/", s3_base: '
                                           '"s3://nowhere/", collinfo_url: "http://127.0.0.1:9/c.json", '
                                           'max_retries: 0}\n')
    existing = tmp_path / "result.parquet"
    existing.write_bytes(b"not a directory")
    for output, needle in ((existing, "existing file"), (existing / "sub", "not a directory")):
        assert main([stage, *STAGE_ARGS[stage], "--config", "offline.yaml", "--output", str(output)]) == 2
        one_line_error(capsys.readouterr().err, "--output", str(output), needle)
    assert existing.read_bytes() == b"not a directory"


@pytest.mark.parametrize("stage", ["extract", "tokenize"])
def test_an_unwritable_output_is_refused_before_work(stage, tmp_path, capsys, monkeypatch):
    from pipelines.cli import main

    monkeypatch.chdir(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    real_access = os.access
    # the tests may run as root, for whom permission bits do not apply: deny as the kernel would
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.path.abspath(p) == str(locked)
                        else real_access(p, mode, **kw))
    try:
        assert main([stage, *STAGE_ARGS[stage], "--output", str(locked / "out" / "deeper")]) == 2
        one_line_error(capsys.readouterr().err, "--output", "not writable", str(locked))
    finally:
        locked.chmod(0o700)


def test_remote_and_creatable_outputs_pass_the_check(tmp_path):
    check_output_dir("gs://bucket/out")
    check_output_dir("s3://bucket/out")
    check_output_dir(str(tmp_path / "new" / "deeper"))
    check_output_dir(str(tmp_path))  # an existing directory: earlier results are the stage's business
