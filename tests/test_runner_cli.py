"""Runner choice and pass-through of Beam options."""
from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, StandardOptions

from pipelines.cli import CliError, check_beam_args, main
from pipelines.runner import is_local, make_options, make_runner


def test_default_is_the_multi_process_local_runner():
    options = make_options([], workers=2)
    direct = options.view_as(DirectOptions)
    assert direct.direct_running_mode == "multi_processing" and direct.direct_num_workers == 2
    runner = make_runner(options)
    assert type(runner).__name__ == "FnApiRunner"  # never DirectRunner's Prism download path
    assert is_local(options)


def test_user_choices_for_the_local_runner_are_kept():
    options = make_options(["--direct_num_workers=3", "--direct_running_mode=in_memory"])
    direct = options.view_as(DirectOptions)
    assert (direct.direct_num_workers, direct.direct_running_mode) == (3, "in_memory")


def test_dataflow_options_pass_through_untouched():
    args = ["--runner", "DataflowRunner", "--project", "my-proj", "--region", "europe-west4",
            "--temp_location", "gs://b/tmp", "--max_num_workers", "50"]
    assert check_beam_args(args) == args
    options = make_options(args)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    gcp = options.view_as(GoogleCloudOptions)
    assert (gcp.project, gcp.region, gcp.temp_location) == ("my-proj", "europe-west4", "gs://b/tmp")
    assert make_runner(options) is None and not is_local(options)
    assert options.view_as(DirectOptions).direct_running_mode != "multi_processing"


def test_unknown_options_are_refused_by_name():
    with pytest.raises(CliError, match="--num_wokers"):
        check_beam_args(["--num_wokers=3"])


def test_help_lists_the_stages(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for stage in ("extract", "refine", "dedup", "tokenize"):
        assert stage in out
