"""bench/cost_model.py: the arithmetic, the FlexRS discount, config errors, and that the measured
figures it uses are the ones documented."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from bench import cost_model

REPO = Path(__file__).resolve().parent.parent


def tiny_config() -> dict:
    """Round numbers so every figure can be worked out by hand."""
    return {
        "snapshot": {"warc_files": 10, "pages_per_warc": 360, "warc_gb": 1.0},
        "prices": {"vcpu_hour": 1.0, "memory_gb_hour": 0.5, "shuffle_gb": 2.0, "pd_gb_hour": 0.0,
                   "flexrs_discount": 0.5, "input_transfer_gb": 3.0},
        "workers": {"vcpus": 2, "memory_gb": 8, "pd_gb": 10, "cpu_utilization": 0.5},
        "measured": {"reference_pages_per_cpu_s": 1.0,
                     "extract_pages_per_cpu_s": 1.0, "refine_pages_per_cpu_s": 2.0,
                     "tokenize_mb_per_s_per_core": 0.001, "bytes_per_token": 4.0,
                     "extracted_row_bytes_per_doc": 1e6, "refine_shuffle_bytes_per_doc": 2e6,
                     "refined_text_bytes_per_doc": 1000.0},
        "assumptions": {"html_share_of_pages": 1.0, "extract_keep_share": 0.5, "refine_keep_share": 0.5,
                        "refine_cpu_scale": 1.0, "extract_shuffle_passes": 1,
                        "tokenize_text_shuffle_passes": 1, "tokenize_token_shuffle_passes": 1},
    }


def test_figures_worked_out_by_hand():
    est = cost_model.estimate(tiny_config())
    # 3600 pages at 1 page/CPU-s = 1 CPU-hour; 50% busy -> 2 vCPU-hours, 4 GB/vCPU -> 8 GB-hours.
    ex = est["stages"]["extract"]
    assert ex["cpu_s"] == pytest.approx(3600)
    assert ex["vcpu_hours"] == pytest.approx(2.0) and ex["memory_gb_hours"] == pytest.approx(8.0)
    assert ex["pd_gb_hours"] == pytest.approx(10.0)  # 1 worker-hour x 10 GB
    assert ex["shuffle_gb"] == pytest.approx(1800 * 1e6 / 1e9)  # 1800 extracted docs x 1 MB, one pass
    assert ex["dollars"] == pytest.approx({"vcpu": 2.0, "memory": 4.0, "shuffle": 3.6, "disk": 0.0})
    rf = est["stages"]["refine"]
    assert rf["cpu_s"] == pytest.approx(900) and rf["shuffle_gb"] == pytest.approx(3.6)
    tk = est["stages"]["tokenize"]
    # 900 refined docs x 1000 bytes = 0.9 MB at 0.001 MB/s -> 900 CPU-s; 225,000 tokens x 2 bytes.
    assert est["tokens"] == pytest.approx(225_000)
    assert tk["cpu_s"] == pytest.approx(900)
    assert tk["shuffle_gb"] == pytest.approx((900_000 + 450_000) / 1e9)
    assert est["total"]["input_transfer_dollars"] == pytest.approx(30.0)
    assert est["total"]["total_dollars"] == pytest.approx(
        sum(s["total_dollars"] for s in est["stages"].values()) + 30.0)


def test_flexrs_discounts_vcpu_and_memory_only_and_scale_is_linear():
    cfg = tiny_config()
    base, flex = cost_model.estimate(cfg), cost_model.estimate(cfg, flexrs=True)
    for stage in cost_model.STAGES:
        b, f = base["stages"][stage]["dollars"], flex["stages"][stage]["dollars"]
        assert f["vcpu"] == pytest.approx(b["vcpu"] * 0.5) and f["memory"] == pytest.approx(b["memory"] * 0.5)
        assert f["shuffle"] == pytest.approx(b["shuffle"]) and f["disk"] == pytest.approx(b["disk"])
    double = cost_model.estimate(cfg, warcs=20)
    assert double["total"]["vcpu_hours"] == pytest.approx(2 * base["total"]["vcpu_hours"])
    assert double["total"]["total_dollars"] == pytest.approx(2 * base["total"]["total_dollars"])


def test_bad_configs_name_the_key():
    cfg = tiny_config()
    del cfg["measured"]["refine_pages_per_cpu_s"]
    with pytest.raises(cost_model.CostConfigError, match="measured.refine_pages_per_cpu_s"):
        cost_model.estimate(cfg)
    cfg = tiny_config()
    cfg["assumptions"]["refine_keep_share"] = 1.5
    with pytest.raises(cost_model.CostConfigError, match="refine_keep_share"):
        cost_model.estimate(cfg)
    cfg = tiny_config()
    cfg["measured"]["extract_pages_per_cpu_s"] = 0
    with pytest.raises(cost_model.CostConfigError, match="extract_pages_per_cpu_s"):
        cost_model.estimate(cfg)


def test_cli_prints_the_assumptions_and_rejects_bad_input(tmp_path, capsys):
    assert cost_model.main([]) == 0
    out = capsys.readouterr().out
    cfg = cost_model.load()
    for needle in ("vCPU-h", "shuffle", "FlexRS", str(cfg["measured"]["extract_pages_per_cpu_s"]),
                   str(cfg["prices"]["vcpu_hour"]), "90,000 WARC files"):
        assert needle in out
    bad = tmp_path / "cost.yaml"
    broken = copy.deepcopy(cfg)
    del broken["prices"]
    bad.write_text(yaml.safe_dump(broken))
    assert cost_model.main(["--config", str(bad)]) == 2
    assert "prices" in capsys.readouterr().err


def test_default_snapshot_is_the_full_snapshot():
    cfg = cost_model.load()
    est = cost_model.estimate(cfg)
    assert est["warc_files"] == 90_000
    assert 2.5e9 <= est["pages"] <= 3.5e9


def test_measured_figures_are_the_documented_ones():
    """configs/cost.yaml `measured` and the table in docs/dataflow.md must not drift apart."""
    doc = (REPO / "docs" / "dataflow.md").read_text()
    measured = cost_model.load()["measured"]
    for key in ("reference_pages_per_cpu_s", "extract_pages_per_cpu_s", "refine_pages_per_cpu_s",
                "tokenize_mb_per_s_per_core", "bytes_per_token", "refine_shuffle_bytes_per_doc"):
        row = re.search(rf"^\| `{key}` \|[^\n]*", doc, re.M)
        assert row, f"docs/dataflow.md has no row for {key}"
        assert re.search(rf"\b{re.escape(str(measured[key]))}\b", row.group(0)), (key, row.group(0))


def test_measured_figures_come_from_benchmarks_md():
    benchmarks = (REPO / "BENCHMARKS.md").read_text()
    measured = cost_model.load()["measured"]
    for key in ("reference_pages_per_cpu_s", "extract_pages_per_cpu_s", "refine_pages_per_cpu_s",
                "tokenize_mb_per_s_per_core"):
        assert re.search(rf"(?<![\d.]){re.escape(str(measured[key]))}(?![\d])", benchmarks), \
            f"{key} = {measured[key]} is not a figure of BENCHMARKS.md"


def test_extract_configurations_scale_extract_only():
    cfg = tiny_config()
    cfg["extract_configurations"] = {"default": {"speedup_vs_default": 1.0},
                                     "fast": {"speedup_vs_default": 4.0, "extraction_f1": 0.8}}
    base, fast = cost_model.estimate(cfg), cost_model.estimate(cfg, extract_config="fast")
    assert fast["stages"]["extract"]["cpu_s"] == pytest.approx(base["stages"]["extract"]["cpu_s"] / 4)
    for stage in ("refine", "tokenize"):
        assert fast["stages"][stage] == base["stages"][stage]
    assert fast["extract_pages_per_cpu_s"] == pytest.approx(4.0)
    with pytest.raises(cost_model.CostConfigError, match="no extract configuration 'slow'"):
        cost_model.estimate(cfg, extract_config="slow")
    table = cost_model.configurations_table(cfg)
    assert "fast" in table and "0.800" in table


def test_extract_configurations_are_strict():
    cfg = tiny_config()
    cfg["extract_configurations"] = {"fast": {"speedup_vs_default": 2.0}}
    with pytest.raises(cost_model.CostConfigError, match="'default' entry"):
        cost_model.estimate(cfg)
    cfg["extract_configurations"] = {"default": {"speedup_vs_default": 1.0}, "fast": {"speedup": 2.0}}
    with pytest.raises(cost_model.CostConfigError, match="unknown key.*speedup"):
        cost_model.estimate(cfg)
    cfg["extract_configurations"] = {"default": {"speedup_vs_default": 1.0}, "fast": {"speedup_vs_default": 0}}
    with pytest.raises(cost_model.CostConfigError, match="fast.speedup_vs_default"):
        cost_model.estimate(cfg)


def test_peers_file_sets_the_speedups(tmp_path, capsys):
    cfg = tiny_config()
    cfg["extract_configurations"] = {"default": {"speedup_vs_default": 1.0}, "fast": {"speedup_vs_default": 9.0}}
    peers = {"pages": 990, "runs": {"default": [{"cpu_s": 60.0}, {"cpu_s": 62.0}, {"cpu_s": 80.0}],
                                    "fast": [{"cpu_s": 20.0}, {"cpu_s": 31.0}, {"cpu_s": 21.0}],
                                    "datatrove": [{"cpu_s": 90.0}]},
             "f1": {"fast": {"f1": 0.85}}}
    applied = cost_model.apply_peers(cfg, peers)
    assert applied["extract_configurations"]["fast"]["speedup_vs_default"] == pytest.approx(62 / 21, abs=1e-3)
    assert applied["extract_configurations"]["fast"]["extraction_f1"] == 0.85
    assert cfg["extract_configurations"]["fast"]["speedup_vs_default"] == 9.0  # the input is not changed
    with pytest.raises(cost_model.CostConfigError, match="default"):
        cost_model.apply_peers(cfg, {"runs": {"fast": [{"cpu_s": 1.0}]}})
    at_margin = cost_model.apply_peers(cfg, {**peers, "marginal_cpu_s": {"default": 50.0, "fast": 10.0}})
    assert at_margin["extract_configurations"]["fast"]["speedup_vs_default"] == pytest.approx(5.0)
    path = tmp_path / "peers.json"
    path.write_text(__import__("json").dumps(peers))
    assert cost_model.main(["--peers", str(path), "--extract-config", "fast"]) == 0
    out = capsys.readouterr().out
    assert "Per extract configuration" in out and "Extract configuration: fast" in out
    path.write_text("{not json")
    assert cost_model.main(["--peers", str(path)]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_a_configuration_can_carry_its_own_refine_figures():
    """resiliparse keeps longer texts: its documents refine slower and shuffle more bytes."""
    cfg = tiny_config()
    cfg["extract_configurations"] = {
        "default": {"speedup_vs_default": 1.0},
        "fast": {"speedup_vs_default": 2.0, "refine_pages_per_cpu_s": 1.0, "refine_shuffle_bytes_per_doc": 3e6}}
    base, fast = cost_model.estimate(cfg), cost_model.estimate(cfg, extract_config="fast")
    assert base["stages"]["refine"]["cpu_s"] == pytest.approx(900)          # 1800 docs at 2 pages/CPU-s
    assert fast["stages"]["refine"]["cpu_s"] == pytest.approx(1800)         # at 1 page/CPU-s
    assert base["stages"]["refine"]["shuffle_gb"] == pytest.approx(1800 * 2e6 / 1e9)
    assert fast["stages"]["refine"]["shuffle_gb"] == pytest.approx(1800 * 3e6 / 1e9)
    assert fast["stages"]["tokenize"] == base["stages"]["tokenize"]
    assert cfg["measured"]["refine_pages_per_cpu_s"] == 2.0                 # the config is not changed
    assert "refine 1.0 pages/CPU-s" in cost_model.report(fast, cfg)          # the report shows what it used
    assert "refine 2.0 pages/CPU-s" in cost_model.report(base, cfg)
    cfg["extract_configurations"]["fast"]["refine_shuffle_bytes_per_doc"] = -1
    with pytest.raises(cost_model.CostConfigError, match="fast.refine_shuffle_bytes_per_doc"):
        cost_model.estimate(cfg)


def test_dataflow_md_shows_what_make_cost_estimate_prints(capsys):
    """docs/dataflow.md's "Output with the defaults" block is the report's stage table, FlexRS line
    and configurations table, as `make cost-estimate` prints them now."""
    doc = (REPO / "docs" / "dataflow.md").read_text()
    block = doc.split("Output with the defaults:\n\n```\n", 1)[1].split("```", 1)[0]
    assert cost_model.main([]) == 0
    printed = capsys.readouterr().out.splitlines()
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) >= 10
    for line in lines:
        assert line in printed, f"docs/dataflow.md shows a line make cost-estimate does not print: {line!r}"
