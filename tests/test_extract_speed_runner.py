"""One local worker runs in this process and reads each file once; more workers are unchanged."""
from __future__ import annotations

from apache_beam.options.pipeline_options import DirectOptions

from pipelines.extract import plan_splits
from pipelines.html_text import meta_consent
from pipelines.runner import make_options, make_runner


def _direct(options):
    direct = options.view_as(DirectOptions)
    return direct.direct_num_workers, direct.direct_running_mode


def test_one_worker_runs_in_this_process():
    assert _direct(make_options(["--direct_num_workers=1"])) == (1, "in_memory")
    assert _direct(make_options([], workers=1)) == (1, "in_memory")
    assert type(make_runner(make_options(["--direct_num_workers=1"]))).__name__ == "FnApiRunner"


def test_several_workers_keep_worker_processes():
    assert _direct(make_options(["--direct_num_workers=2"])) == (2, "multi_processing")
    assert _direct(make_options([], workers=3)) == (3, "multi_processing")
    # an explicit worker count passed by a stage wins over the flag, for the mode too
    assert _direct(make_options(["--direct_num_workers=1"], workers=2)) == (2, "multi_processing")


def test_a_named_running_mode_is_kept_for_one_worker():
    args = ["--direct_num_workers=1", "--direct_running_mode=multi_processing"]
    assert _direct(make_options(args)) == (1, "multi_processing")


def test_one_worker_reads_each_file_once():
    assert plan_splits(["a.warc.gz"], "auto", 1) == 1
    assert plan_splits(["a.warc.gz"], "auto", 2) == 4
    assert plan_splits(["a.warc.gz"], 3, 1) == 3


def test_stage_consent_reads_tags_anywhere_in_the_page():
    body = "<p>" + "text " * 1000 + "</p>"
    page = f'<html><head><meta name="robots" content="noai"></head><body>{body}<meta name="GPTBot" content="noindex"></body>'
    assert meta_consent(page) == {"meta_robots": "noai\nGPTBot: noindex", "tdm_reservation": None}
    assert meta_consent(f"<html><body>{body}</body></html>") == {"meta_robots": None, "tdm_reservation": None}
