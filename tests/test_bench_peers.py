"""bench/bench_peers.py's round-by-round ratio: each round's datatrove run over ours from the same round."""
from __future__ import annotations

import pytest

from bench import bench_peers


def test_ratios_pair_runs_of_the_same_round_not_medians():
    # The machine slows down in round 3: the ratio of medians (90 / 15 = 6.0) mixes rounds,
    # the round-by-round ratios (7.0, 7.0, 7.0) do not.
    ours = [{"cpu_s": 10.0}, {"cpu_s": 15.0}, {"cpu_s": 20.0}]
    peer = [{"cpu_s": 70.0}, {"cpu_s": 105.0}, {"cpu_s": 140.0}]
    assert bench_peers.paired_ratios(ours, peer) == "round by round: 7.00x, 7.00x, 7.00x; median 7.00x"
    peer = [{"cpu_s": 60.0}, {"cpu_s": 90.0}, {"cpu_s": 200.0}]
    assert bench_peers.paired_ratios(ours, peer).endswith("6.00x, 6.00x, 10.00x; median 6.00x")
    with pytest.raises(ValueError):   # statistics.median of nothing
        bench_peers.paired_ratios([], [])
