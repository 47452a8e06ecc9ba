"""Training windows and eval windows over token arrays."""
import math

import numpy as np
import pytest

from trainer.data import RandomWindows, TokenStream, eval_windows, unigram_entropy


def shards():
    # distinct values so a window tells where it came from
    return [np.arange(0, 1000, dtype=np.uint16), np.arange(1000, 4000, dtype=np.uint16),
            np.arange(5000, 5003, dtype=np.uint16)]  # the last is shorter than a window


def test_windows_are_slices_of_one_shard():
    data = RandomWindows(shards(), block_size=15, seed=3)
    x, y = data.batch(0, 500)
    assert x.shape == (500, 15) and y.shape == (500, 15)
    w = np.concatenate([x.numpy(), y.numpy()[:, -1:]], axis=1)
    # consecutive values: a window never spans two shards and is a contiguous slice
    assert np.all(np.diff(w, axis=1) == 1)
    torch_y = y.numpy()
    assert np.array_equal(torch_y[:, :-1], x.numpy()[:, 1:])  # targets are inputs shifted by one
    assert w.min() >= 0 and w.max() < 4000


def test_windows_reach_the_ends_of_every_shard():
    data = RandomWindows([np.arange(20, dtype=np.int32)], block_size=9, seed=0)
    starts = data.starts(np.arange(2000))
    assert set(starts.tolist()) == set(range(20 - 10 + 1))


def test_shards_are_sampled_in_proportion_to_their_windows():
    data = RandomWindows(shards(), block_size=15, seed=11)
    x, _ = data.batch(0, 20000)
    frac_second = float((x[:, 0] >= 1000).float().mean())
    expected = (3000 - 15) / ((1000 - 15) + (3000 - 15))
    assert abs(frac_second - expected) < 0.02


def test_batches_depend_only_on_seed_and_sample_index():
    a = RandomWindows(shards(), 15, seed=1)
    b = RandomWindows(shards(), 15, seed=1)
    c = RandomWindows(shards(), 15, seed=2)
    assert np.array_equal(a.batch(40, 8)[0], b.batch(40, 8)[0])
    assert not np.array_equal(a.batch(40, 8)[0], c.batch(40, 8)[0])
    assert not np.array_equal(a.batch(40, 8)[0], a.batch(48, 8)[0])
    # a batch is the same samples however it is cut
    whole = a.batch(40, 8)[0]
    halves = np.concatenate([a.batch(40, 4)[0], a.batch(44, 4)[0]])
    assert np.array_equal(whole, halves)


def test_ranks_split_one_global_batch():
    data = RandomWindows(shards(), 15, seed=5)
    batch, accum, step = 4, 4, 7
    single = np.concatenate([data.micro_batch(step, m, batch, accum)[0] for m in range(accum)])
    world = 2
    per_rank = accum // world
    ranks = [np.concatenate([data.micro_batch(step, r * per_rank + m, batch, accum)[0]
                             for m in range(per_rank)]) for r in range(world)]
    assert np.array_equal(np.concatenate(ranks), single)
    # consecutive steps do not reuse samples
    nxt = np.concatenate([data.micro_batch(step + 1, m, batch, accum)[0] for m in range(accum)])
    assert not np.array_equal(nxt, single)


def test_no_full_window_is_a_clear_error():
    with pytest.raises(ValueError, match="block_size"):
        RandomWindows([np.arange(10), np.arange(5)], block_size=10, seed=0)
    with pytest.raises(ValueError):
        TokenStream([np.arange(10)], window=1)


def test_eval_windows_predict_every_token_once():
    arrays = [np.arange(0, 25), np.arange(100, 110), np.arange(200, 201)]
    wins = eval_windows(arrays, block_size=8)
    assert all(len(w) <= 9 for w in wins)
    targets = np.concatenate([w[1:] for w in wins])
    expected = np.concatenate([a[1:] for a in arrays])
    assert np.array_equal(np.sort(targets), np.sort(expected))
    assert len(targets) == sum(len(a) - 1 for a in arrays)
    # each target's context is the tokens right before it in the same array
    for w in wins:
        assert np.all(np.diff(w) == 1)


def test_eval_windows_subset_spreads_over_all_arrays():
    arrays = [np.arange(i * 1000, i * 1000 + 200) for i in range(5)]
    wins = eval_windows(arrays, block_size=10, max_windows=10)
    assert len(wins) == 10
    assert {int(w[0]) // 1000 for w in wins} == {0, 1, 2, 3, 4}


def test_unigram_entropy():
    assert unigram_entropy([np.array([0, 1, 2, 3] * 5)], 8) == pytest.approx(math.log(4))
    assert unigram_entropy([np.array([0, 0, 0]), np.array([1])], 2) == \
        pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        unigram_entropy([np.array([0, 9])], 8)
