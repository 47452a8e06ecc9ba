"""bench/bench_peers.py's round-by-round ratio: each round's datatrove run over ours from the same round."""
from __future__ import annotations

import pytest

from bench import bench_peers


def test_ratios_pair_runs_of_the_same_round_not_medians():
    # Round 2 ran on a slower machine for ours, round 3 for the peer.  Round by round: 7, 5, 8,
    # median 7.00x; the ratio of the medians (100 / 15 = 6.67) and pairing sorted runs
    # (70/10, 100/15, 120/20: 7, 6.67, 6) would both give something else.
    ours = [{"cpu_s": 10.0}, {"cpu_s": 20.0}, {"cpu_s": 15.0}]
    peer = [{"cpu_s": 70.0}, {"cpu_s": 100.0}, {"cpu_s": 120.0}]
    assert bench_peers.paired_ratios(ours, peer) == "round by round: 7.00x, 5.00x, 8.00x; median 7.00x"


def test_rounds_must_pair_up():
    with pytest.raises(ValueError):   # a run missing on one side is an error, not a dropped round
        bench_peers.paired_ratios([{"cpu_s": 10.0}], [{"cpu_s": 70.0}, {"cpu_s": 80.0}])
