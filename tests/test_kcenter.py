"""k-center greedy: the same picks as a brute-force float64 reference, nesting, the
2-approximation bound against a brute-forced optimum, determinism, and bad inputs."""

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

from svp.errors import ConfigError, StageInputError
from svp.selection.kcenter import _lower_to_centres, k_center_greedy


def reference_k_center(points, budget, initial=(), seed=0):
    """Greedy k-center from the full distance matrix in float64, with no shortcuts.

    The first centre without ``initial`` and the tie rule (lowest index) are the ones
    k_center_greedy documents.
    """
    points = np.asarray(points, dtype=np.float64)
    distances = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    chosen = list(initial)
    picks = []
    for _ in range(budget):
        if chosen:
            nearest = distances[:, chosen].min(axis=1)
            nearest[chosen] = -np.inf
            pick = int(np.argmax(nearest))  # numpy: first of equal maxima
        else:
            pick = int(np.random.default_rng(seed).integers(len(points)))
        chosen.append(pick)
        picks.append(pick)
    return np.array(picks, dtype=np.int64)


def covering_radius(points, centres):
    points = np.asarray(points, dtype=np.float64)
    distances = np.sqrt(((points[:, None, :] - points[None, list(centres), :]) ** 2).sum(axis=2))
    return distances.min(axis=1).max()


@pytest.mark.parametrize("seed", range(6))
def test_same_picks_as_the_brute_force_reference_on_random_sets(seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(20, 300)), int(rng.integers(1, 40))
    # An offset far from 0, as ReLU embeddings have: the case where ||a||^2 + ||b||^2 - 2ab
    # cancels most, which centring must handle.
    points = (rng.normal(size=(n, d)) + 5.0 * rng.normal(size=d)).astype(np.float32)
    budget = int(rng.integers(1, n))
    assert np.array_equal(k_center_greedy(points, budget, seed=seed), reference_k_center(points, budget, seed=seed))


@pytest.mark.parametrize("offset", [100.0, 1000.0])
def test_same_picks_far_from_the_origin(offset):
    # Unit spread 100 or 1000 away from 0: without centring, float32 ||a||^2 + ||b||^2 - 2ab
    # loses the distances to rounding and the picks differ from the reference.
    rng = np.random.default_rng(int(offset))
    points = (rng.normal(size=(200, 16)) + offset).astype(np.float32)
    assert np.array_equal(k_center_greedy(points, 100), reference_k_center(points, 100))


def test_squared_distances_never_go_below_zero():
    """Rounding takes ||a||^2 + ||b||^2 - 2ab below 0 for near-equal points; it is clamped.

    Uncentred points far from 0 (what k_center_greedy never passes) make the rounding
    large enough to see; a negative distance would rank below a true 0.
    """
    x = torch.from_numpy((np.random.default_rng(0).normal(size=(1000, 16)) + 100.0).astype(np.float32))
    nearest = torch.full((1000,), float("inf"))
    _lower_to_centres(x, (x * x).sum(dim=1), nearest, torch.arange(0, 1000, 7), rows=1000, batch_size=1 << 22)
    assert nearest.min().item() == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_same_picks_as_the_reference_from_initial_centres_and_in_small_blocks(seed):
    rng = np.random.default_rng(100 + seed)
    n, d = 150, 8
    points = rng.normal(size=(n, d))
    initial = rng.choice(n, size=int(rng.integers(1, 40)), replace=False)
    budget = n - len(initial)  # every remaining point, to the last
    expected = reference_k_center(points, budget, initial=list(initial))
    # batch_size 7: blocks of 7 rows, one initial centre at a time, a ragged last block.
    for batch_size in (7, 1000, 1 << 22):
        got = k_center_greedy(points, budget, initial=initial, batch_size=batch_size)
        assert np.array_equal(got, expected), batch_size
    assert not set(got) & set(initial.tolist())


def test_ties_go_to_the_lowest_index():
    # Small integers, symmetric about 0 (mean exactly 0): float32 distances are exact,
    # so ties are real ties. Duplicates and a square grid give many of them.
    half = np.array([[0, 1], [1, 0], [1, 1], [2, 2], [2, 2], [0, 3], [3, 0], [1, 2]])
    points = np.concatenate([half, -half, [[0, 0], [0, 0]]]).astype(np.float32)
    for seed in range(len(points)):
        budget = len(points)  # to the end, through the duplicates at distance 0
        expected = reference_k_center(points, budget, seed=seed)
        assert np.array_equal(k_center_greedy(points, budget, seed=seed), expected), seed
    grid = np.stack(np.meshgrid(np.arange(-3, 4), np.arange(-3, 4)), axis=-1).reshape(-1, 2)
    got = k_center_greedy(grid, 20, initial=[24])  # index 24 is the centre (0, 0)
    assert np.array_equal(got, reference_k_center(grid, 20, initial=[24]))
    assert got[0] == 0  # the four corners tie; (-3, -3) has the lowest index


def test_orders_are_nested_across_budgets():
    points = np.random.default_rng(3).normal(size=(400, 16))
    full = k_center_greedy(points, 300, seed=5)
    for k in (1, 10, 120, 299):
        assert np.array_equal(k_center_greedy(points, k, seed=5), full[:k])
    assert len(set(full.tolist())) == 300


@pytest.mark.parametrize("seed", range(25))
def test_covering_radius_within_twice_the_optimum(seed):
    rng = np.random.default_rng(1000 + seed)
    points = rng.normal(size=(9, 2)) * rng.uniform(0.1, 10.0, size=2)
    k = int(rng.integers(2, 5))
    optimum = min(covering_radius(points, centres) for centres in itertools.combinations(range(len(points)), k))
    greedy = covering_radius(points, k_center_greedy(points, k, seed=seed))
    assert optimum <= greedy <= 2 * optimum + 1e-9


def test_the_bound_fails_for_a_wrong_rule():
    """The bound test can fail: picking the nearest point instead of the farthest breaks it."""
    points = np.array([[0.0], [0.1], [0.2], [10.0], [20.0]])
    nearest_first = [0, 1]  # what a min instead of a max would pick from point 0
    optimum = min(covering_radius(points, c) for c in itertools.combinations(range(5), 2))
    assert covering_radius(points, nearest_first) > 2 * optimum
    assert covering_radius(points, k_center_greedy(points, 2, initial=None, seed=0)) <= 2 * optimum


def test_deterministic_for_a_seed_and_the_seed_picks_the_start():
    points = np.random.default_rng(4).normal(size=(500, 32)).astype(np.float32)
    first = k_center_greedy(points, 50, seed=11)
    assert np.array_equal(first, k_center_greedy(points, 50, seed=11))
    assert first[0] == np.random.default_rng(11).integers(500)
    starts = {int(k_center_greedy(points, 1, seed=s)[0]) for s in range(10)}
    assert len(starts) > 1
    # With initial centres the seed plays no part.
    assert np.array_equal(k_center_greedy(points, 20, initial=[3], seed=1), k_center_greedy(points, 20, initial=[3], seed=2))


def test_budget_zero_and_the_whole_pool():
    points = np.random.default_rng(5).normal(size=(30, 3))
    assert k_center_greedy(points, 0).shape == (0,)
    everything = k_center_greedy(points, 30)
    assert sorted(everything.tolist()) == list(range(30))
    assert everything.dtype == np.int64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_gpu_gives_the_cpu_picks():
    points = (np.random.default_rng(6).normal(size=(800, 16)) + 3.0).astype(np.float32)
    expected = reference_k_center(points, 400)
    assert np.array_equal(k_center_greedy(points, 400, device="cpu"), expected)
    assert np.array_equal(k_center_greedy(points, 400, device="cuda"), expected)
    assert np.array_equal(k_center_greedy(points, 400, device="cuda", batch_size=100), expected)


@pytest.mark.parametrize(
    ("embeddings", "budget", "initial", "error", "message"),
    [
        (np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, np.inf]]), 1, None, StageInputError, "NaN or infinite values in 2 of 3 rows"),
        (np.array([[0.0], [np.inf]]), 1, None, StageInputError, "first: row 1"),
        (np.empty((0, 4)), 1, None, StageInputError, "empty pool"),
        (np.zeros(5), 1, None, StageInputError, "shape (points, dimensions)"),
        (np.empty((3, 0)), 1, None, StageInputError, "0 dimensions"),
        (np.array([["a"], ["b"]]), 1, None, StageInputError, "real-valued"),
        (np.zeros((4, 2)), 5, None, ConfigError, "in 0..4"),
        (np.zeros((4, 2)), -1, None, ConfigError, "in 0..4"),
        (np.zeros((4, 2)), 3, [0, 1], ConfigError, "in 0..2 (the points not yet chosen)"),
        (np.zeros((4, 2)), 2.5, None, ConfigError, "whole number"),
        (np.zeros((4, 2)), 1, [4], StageInputError, "indices in 0..3"),
        (np.zeros((4, 2)), 1, [1, 1], StageInputError, "repeat indices"),
        (np.zeros((4, 2)), 1, [0.5], StageInputError, "1-d list of point indices"),
    ],
)
def test_bad_inputs_name_the_problem(embeddings, budget, initial, error, message):
    with pytest.raises(error) as raised:
        k_center_greedy(embeddings, budget, initial=initial)
    assert message in str(raised.value)


def test_bad_batch_size():
    with pytest.raises(ConfigError, match="batch_size"):
        k_center_greedy(np.zeros((4, 2)), 1, batch_size=0)


def test_importing_the_module_imports_no_torch():
    """Stages that only read subsets may import svp.selection; torch costs seconds to import."""
    probe = "import sys, svp.selection.kcenter; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"
