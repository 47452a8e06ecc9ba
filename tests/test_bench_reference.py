"""bench/reference.py: the machine-speed reference that puts the cost model's CPU figures on one scale."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from bench import cost_model, reference

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "sample.warc.gz"


def test_factor_is_the_reference_over_the_median_loop():
    runs = [{"pages_per_cpu_s": r} for r in (20.0, 35.0, 25.0)]
    assert reference.machine_factor(runs, 50.0) == pytest.approx(2.0)      # median 25
    assert reference.machine_factor(runs[:1], 20.0) == pytest.approx(1.0)
    line = reference.describe(runs, 50.0)
    assert "median 25.0" in line and "factor 2.000" in line
    with pytest.raises(ValueError, match="no reference runs"):
        reference.machine_factor([], 50.0)


def test_each_round_converts_with_its_own_loop():
    loops = [{"pages_per_cpu_s": 20.0}, {"pages_per_cpu_s": 40.0}, {"pages_per_cpu_s": 10.0}]
    # round 2 had no measurable margin (None): left out, the others keep their own loop
    assert reference.per_round([100.0, None, 30.0], loops, 80.0) == pytest.approx([400.0, 240.0])
    with pytest.raises(ValueError, match="3 rounds but 2 reference loops"):
        reference.per_round([1.0, 2.0, 3.0], loops[:2], 80.0)


def test_lower_quartile_is_the_inclusive_quantile():
    """The seventh round's table (BENCHMARKS.md): 20 default rounds and 21 fast ones."""
    default = [607, 639, 668, 712, 779, 885, 911, 911, 1036, 1307, 1313, 1358, 1396, 1424, 1494, 1530, 1603,
               2055, 2428, 25369]
    fast = [534, 616, 692, 721, 721, 725, 737, 777, 794, 906, 945, 970, 1076, 1271, 1285, 1342, 1563, 1886,
            2384, 8014, 8918]
    assert reference.lower_quartile(default) == pytest.approx(858.5)
    assert reference.lower_quartile(fast) == pytest.approx(725)
    assert reference.lower_quartile([5.0]) == 5.0
    assert reference.lower_quartile([1.0, 2.0, 3.0, 4.0, 5.0]) == 2.0
    with pytest.raises(ValueError):
        reference.lower_quartile([])


def test_the_reference_is_the_cost_models():
    assert reference.reference_pages_per_cpu_s() == cost_model.load()["measured"]["reference_pages_per_cpu_s"]


def test_reference_must_be_positive(tmp_path):
    cfg = yaml.safe_load((ROOT / "configs" / "cost.yaml").read_text())
    cfg["measured"]["reference_pages_per_cpu_s"] = 0
    with pytest.raises(cost_model.CostConfigError, match="reference_pages_per_cpu_s must be positive"):
        cost_model.validate(cfg)
    del cfg["measured"]["reference_pages_per_cpu_s"]
    with pytest.raises(cost_model.CostConfigError, match="reference_pages_per_cpu_s must be a number"):
        cost_model.validate(cfg)


def test_reference_run_extracts_every_html_page_of_a_warc():
    """The loop runs in a fresh process over the real sample WARC: trafilatura on each HTML 200."""
    from pipelines.warc import RawRecord, iter_records, local_opener

    html = sum(1 for r in iter_records(local_opener(str(SAMPLE)), str(SAMPLE))
               if isinstance(r, RawRecord) and r.rec_type == "response" and r.http_status == 200)
    assert html > 0
    run = reference.reference_run(SAMPLE)
    assert run["pages"] == html
    assert 0 < run["kept"] <= html
    assert run["cpu_s"] > 0 and run["pages_per_cpu_s"] == pytest.approx(run["pages"] / run["cpu_s"])


def test_worker_loop_moves_every_cpu_figure_to_that_vcpu():
    """A vCPU half as fast as the reference machine doubles every CPU-second, so vCPU, memory and
    disk dollars double and shuffle dollars stay."""
    cfg = cost_model.load()
    before = copy.deepcopy(cfg)
    slow = cost_model.at_worker_speed(cfg, cfg["measured"]["reference_pages_per_cpu_s"] / 2)
    assert cfg == before                                               # the input is not changed
    assert slow["measured"]["reference_pages_per_cpu_s"] == pytest.approx(35.45)
    for name in cost_model.extract_configurations(cfg):
        base = cost_model.estimate(cfg, extract_config=name)
        half = cost_model.estimate(slow, extract_config=name)
        for stage in cost_model.STAGES:
            b, h = base["stages"][stage], half["stages"][stage]
            assert h["cpu_s"] == pytest.approx(2 * b["cpu_s"])
            for part in ("vcpu", "memory", "disk"):
                assert h["dollars"][part] == pytest.approx(2 * b["dollars"][part])
            assert h["dollars"]["shuffle"] == pytest.approx(b["dollars"]["shuffle"])
    same = cost_model.at_worker_speed(cfg, cfg["measured"]["reference_pages_per_cpu_s"])
    assert cost_model.estimate(same)["total"] == cost_model.estimate(cfg)["total"]


def test_worker_loop_errors_are_one_line(capsys):
    for bad in ("0", "-3", "nan", "inf"):
        assert cost_model.main(["--worker-loop", bad]) == 2
        err = capsys.readouterr().err
        assert "--worker-loop must be a positive number" in err and err.count("\n") == 1
    assert cost_model.main(["--worker-loop", "35.45"]) == 0
    assert "loop runs at 35.45 pages/CPU-s" in capsys.readouterr().out


def test_reference_main_needs_a_warc(tmp_path, capsys):
    assert reference.main(["--warc", str(tmp_path / "missing.warc.gz")]) == 2
    assert "not found" in capsys.readouterr().err
    assert reference.main(["--warc", str(SAMPLE), "--repeats", "0"]) == 2
    assert "--repeats must be at least 1" in capsys.readouterr().err
