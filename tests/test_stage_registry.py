"""Stages are registered once (pipelines/stages.py): the CLI, `pipelines all`, the completion
manifest, the Flex Template launcher and the infra files follow the registry, and a test fails
when a stage module or an infra file drifts from it.  Refine is a composite PTransform."""
from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import apache_beam as beam
import pytest

from pipelines import cli, completion, refine, stages, template_main
from pipelines.config import load_config

REPO = Path(__file__).resolve().parent.parent
DATAFLOW = REPO / "infra" / "dataflow"


def metadata_param(name: str) -> dict:
    meta = json.loads((DATAFLOW / "metadata.json").read_text())
    return next(p for p in meta["parameters"] if p["name"] == name)


# ---------------------------------------------------------------------------------------- registry
def test_registry_names_are_unique_and_every_stage_module_has_the_stage_interface():
    names = [s.name for s in stages.REGISTRY]
    assert len(names) == len(set(names)) and names == list(stages.STAGES)
    for s in stages.REGISTRY:
        module = stages.import_stage(s.name)
        assert module.__name__ == s.module
        assert callable(module.add_arguments) and callable(module.run), s.name
        assert s.help
        assert not s.outputs or s.writes_output, f"{s.name}: outputs without an --output it owns"
    with pytest.raises(ValueError, match="unknown stage 'nope'; choose from extract, refine"):
        stages.stage("nope")


@pytest.mark.parametrize("name", [s.name for s in stages.REGISTRY if s.outputs])
def test_stage_modules_write_exactly_the_registered_output_patterns(name):
    module = stages.import_stage(name)
    assert tuple(module.STAGE_OUTPUTS) == stages.output_patterns(name)


def test_chain_is_the_registered_snapshot_stages_in_registry_order():
    assert stages.CHAIN == ("extract", "refine", "tokenize")
    assert stages.SNAPSHOT_DIRS == {"extract": "extracted", "refine": "refined", "tokenize": "shards"}
    order = [s.name for s in stages.REGISTRY]
    assert [order.index(n) for n in stages.CHAIN] == sorted(order.index(n) for n in stages.CHAIN)
    assert completion.STAGE_ORDER == stages.CHAIN and completion.STAGE_DIRS == stages.SNAPSHOT_DIRS
    assert completion.parse_stages(",".join(stages.CHAIN)) == list(stages.CHAIN)
    with pytest.raises(ValueError, match="unknown stage 'dedup'"):
        completion.parse_stages("extract,dedup")   # registered, but not a step of `all`


# ---------------------------------------------------------------------------------------- CLI
def subcommands(parser) -> dict:
    (action,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return action.choices


def test_cli_offers_every_registered_stage_with_its_help_and_lock_option():
    parser = cli.build_parser()
    subs = subcommands(parser)
    assert list(subs) == [s.name for s in stages.REGISTRY]
    for s in stages.REGISTRY:
        sp = subs[s.name]
        assert sp.description == s.help
        options = {o for a in sp._actions for o in a.option_strings}
        assert ("--break-lock" in options) == s.writes_output, s.name
        assert sp.get_default("_module").__name__ == s.module
    (stages_option,) = [a for a in subs["all"]._actions if "--stages" in a.option_strings]
    assert stages_option.default == ",".join(stages.CHAIN) and f"(default {stages_option.default})" in stages_option.help


TOY = '''
import json, os
def add_arguments(parser):
    parser.add_argument("--output", required=True)
def run(args, beam_args):
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "ran.json"), "w") as fh:
        json.dump({"beam_args": beam_args, "break_lock": args.break_lock}, fh)
    return {}
'''


def test_a_stage_added_to_the_registry_is_dispatched_by_the_cli(tmp_path, monkeypatch):
    (tmp_path / "toy_stage_mod.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    toy = stages.Stage("toy", "toy_stage_mod", "a toy stage", outputs=("ran.json",), writes_output=True)
    monkeypatch.setattr(stages, "REGISTRY", stages.REGISTRY + (toy,))
    monkeypatch.setattr(stages, "STAGES", {**stages.STAGES, "toy": toy})
    monkeypatch.setattr(cli, "REGISTRY", stages.REGISTRY)
    out = tmp_path / "out"
    assert cli.main(["toy", "--output", str(out), "--break-lock"]) == 0
    assert json.loads((out / "ran.json").read_text()) == {"beam_args": [], "break_lock": True}
    # A registered stage that writes an --output gets the output check before it runs.
    (tmp_path / "file").write_text("x")
    assert cli.main(["toy", "--output", str(tmp_path / "file" / "sub")]) == 2
    sys.modules.pop("toy_stage_mod", None)


# ---------------------------------------------------------------------------------------- infra
def test_template_parameters_come_from_the_registry_and_match_metadata_json():
    template = stages.stage(stages.TEMPLATE_STAGE)
    assert stages.TEMPLATE_STAGE == "all"
    assert template_main.TEMPLATE_PARAMETERS == dict(template.template_parameters)
    meta = json.loads((DATAFLOW / "metadata.json").read_text())
    assert [p["name"] for p in meta["parameters"]] == list(template.template_parameters)
    assert template_main.to_cli(["--snapshot=latest", "--output=gs://b/x"], environ={})[:1] == ["all"]


def test_metadata_stages_parameter_follows_the_chain():
    param = metadata_param("stages")
    assert param["regexes"] == [stages.chain_regex()]
    assert f"{','.join(stages.CHAIN)} (default)" in param["helpText"]
    output_help = metadata_param("output")["helpText"]
    assert "OUTPUT/<snapshot>/{" + ",".join(stages.SNAPSHOT_DIRS.values()) + "}" in output_help
    pattern = re.compile(stages.chain_regex())
    assert pattern.fullmatch(",".join(stages.CHAIN)) and not pattern.fullmatch("report")


def test_terraform_and_dataflow_script_default_to_the_whole_chain():
    chain = ",".join(stages.CHAIN)
    variables = (REPO / "infra" / "terraform" / "variables.tf").read_text()
    block = re.search(r'variable "stages" \{(.*?)\n\}', variables, flags=re.S).group(1)
    assert re.search(r'default\s*=\s*"([^"]*)"', block).group(1) == chain
    assert f"STAGES=${{STAGES:-{chain}}}" in (REPO / "scripts" / "dataflow.sh").read_text()


def test_dockerfile_import_check_is_the_registry(capsys):
    dockerfile = (DATAFLOW / "Dockerfile").read_text()
    assert re.search(r"^RUN python -m pipelines\.stages\b", dockerfile, flags=re.M)
    assert stages.main() == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{s.name}: {s.module}" for s in stages.REGISTRY]


# ---------------------------------------------------------------------------------------- refine
def applied(pipeline) -> dict:
    found = {}

    class Visitor(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            found[node.full_label] = node.transform

        def visit_transform(self, node):
            found[node.full_label] = node.transform

    pipeline.visit(Visitor())
    return found


def test_refine_is_one_composite_transform_reading_top_to_bottom(tmp_path):
    cfg = load_config()
    pipeline = beam.Pipeline()
    out = refine.build(pipeline, [str(tmp_path / "x.parquet")], str(tmp_path / "out"), cfg, {"stage": "refine"})
    assert set(out) == {"summary", "kept"}
    labels = applied(pipeline)
    assert isinstance(labels["Refine"], refine.Refine) and isinstance(labels["Refine"], beam.PTransform)
    top = {label for label in labels if label and "/" not in label}
    assert top == {"Inputs", "Refine"}   # everything else is inside the composite
    inside = [label for label in labels if label.startswith("Refine/")]
    for step in ("ReadParquet", "Signals", "Decide", "Dedup", "WriteSummary", "KeptPaths"):
        assert f"Refine/{step}" in inside, step
    # With dedup (the default) one output-shard group applies its decisions and writes kept and
    # removed rows; rejected rows have their own writer.
    assert "Refine/JoinAndWrite" in inside and any("WriteRejected" in label for label in inside)
    assert not any(label.endswith(("/SpreadRows", "/WriteKept", "/WriteRemoved")) for label in inside)
    assert "Refine/RobotsOptOut" not in labels   # only with robots.txt captures


def test_refine_composite_takes_robots_captures_inside_it(tmp_path):
    cfg = load_config()
    pipeline = beam.Pipeline()
    paths = pipeline | "Paths" >> beam.Create([str(tmp_path / "x.parquet")])
    paths | "Refine" >> refine.Refine(str(tmp_path / "out"), cfg, {"stage": "refine"},
                                      robots_paths=[str(tmp_path / "robots.warc.gz")])
    labels = applied(pipeline)
    assert "Refine/ReadRobots" in labels and "Refine/RobotsOptOut" in labels
