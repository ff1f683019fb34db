"""Coverage-centric sampling (CCS, Zheng et al., ICLR 2023) as an order over examples.

CCS keeps a subset that covers the whole range of difficulty instead of its hard end:
drop the hardest share beta of the examples, split the range of the remaining scores
into k equal-width bins, spread the budget over the bins (the smallest bin first, each
taking min(its size, what is left / bins left)), and draw at random within each bin.

svp cuts every subset from one order over all examples, so that fractions are nested.
CCS's draw is an order too: each bin's examples are shuffled once (seeded), a bin's
allotment never shrinks as the budget grows (``allocate``), so the subset for budget m
is the first m of the order in which the bins' allotments grow. The hardest share comes
last, least hard first; the config and the select stage refuse a fraction that would
reach it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from svp.errors import ConfigError

COVERAGE = "coverage"
# coverage<prune_hardest>bins<k>[seed<s>], e.g. coverage0.1bins50: how the policy appears
# in selection names and on `svp select --keep`.
NAME_PATTERN = re.compile(r"coverage(0\.\d+)bins([1-9]\d*)(?:seed([1-9]\d*))?")
# The regular expression the workflow's wildcards use for the same names.
NAME_REGEX = r"coverage0\.\d+bins[1-9]\d*(?:seed[1-9]\d*)?"
# Zheng et al.'s default number of bins (their `stratas`).
DEFAULT_BINS = 50


@dataclass(frozen=True)
class Coverage:
    """A coverage keep policy: drop the hardest share ``prune_hardest``, draw from ``bins`` bins with ``seed``."""

    prune_hardest: float
    bins: int
    seed: int = 0

    def __post_init__(self):
        if not (isinstance(self.prune_hardest, (int, float)) and 0.0 <= self.prune_hardest < 1.0):
            raise ConfigError(f"coverage prune_hardest must be a share from 0 to 1 (excluded), got {self.prune_hardest!r}")
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 1:
            raise ConfigError(f"coverage bins must be a whole number >= 1, got {self.bins!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"coverage seed must be a whole number >= 0, got {self.seed!r}")

    @property
    def name(self) -> str:
        from svp.schema import format_fraction

        # A seed of 0 (the default) is left out of the name, as the default keep policy is.
        seed = f"seed{self.seed}" if self.seed else ""
        return f"{COVERAGE}{format_fraction(self.prune_hardest)}bins{self.bins}{seed}"

    @classmethod
    def from_config(cls, settings: dict) -> "Coverage":
        """From ``selection.keep``'s ``{coverage: {prune_hardest, bins, seed}}`` (validated by the schema)."""
        return cls(float(settings["prune_hardest"]), int(settings.get("bins", DEFAULT_BINS)), int(settings.get("seed", 0)))

    def pruned(self, n_examples: int) -> int:
        """How many of ``n_examples`` are dropped as the hardest: round(beta x N), halves up."""
        return math.floor(self.prune_hardest * n_examples + 0.5)


def parse_coverage(name) -> Coverage | None:
    """The coverage policy a keep policy's name gives, or None if it names another policy."""
    match = NAME_PATTERN.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        return None
    prune_hardest = float(match.group(1))
    if not prune_hardest < 1.0:
        return None
    return Coverage(prune_hardest, int(match.group(2)), int(match.group(3) or 0))


def allocate(budget: int, sizes) -> np.ndarray:
    """How many examples each bin gives to a subset of ``budget``: bins in increasing size
    (ties in the order given), each taking min(its size, what is left // non-empty bins left).

    Zheng et al.'s allocation: a bin smaller than its share gives all it has, and the rest
    goes to the larger bins. The last non-empty bin takes all that is left, so the
    allotments sum to ``budget`` whenever it is at most the bins' total.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if not 0 <= budget <= sizes.sum():
        raise ValueError(f"a budget of {budget} from bins holding {sizes.sum()} examples")
    taken = np.zeros(len(sizes), dtype=np.int64)
    left = int(budget)
    by_size = np.argsort(sizes, kind="stable")
    nonempty = int(np.count_nonzero(sizes))
    for position, b in enumerate(by_size[len(sizes) - nonempty:]):
        taken[b] = min(int(sizes[b]), left // (nonempty - position))
        left -= taken[b]
    return taken


def equal_width_bins(scores: np.ndarray, bins: int) -> np.ndarray:
    """The bin (0 = lowest scores) of each score among ``bins`` equal-width bins over
    [min, max]; the maximum falls in the last bin. All scores equal: all in bin 0."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = scores.min(), scores.max()
    if not high > low:
        return np.zeros(len(scores), dtype=np.int64)
    # Scaling by (high - low) first keeps the widths equal when the range is tiny.
    position = (scores - low) / (high - low) * bins
    return np.minimum(np.floor(position).astype(np.int64), bins - 1)


def _join_positions(sizes: np.ndarray) -> list[np.ndarray]:
    """For each bin, the subset size (from 1) at which its 1st, 2nd, ... drawn example joins.

    Each bin's allotment as a function of the budget m never decreases (``allocate``: the
    left-over budget each bin sees grows with m), and the allotments sum to m, so exactly
    one bin gains one example at each m: its j-th example joins at the first m whose
    allotment reaches j. Computed for all m at once, one bin at a time.
    """
    total = int(sizes.sum())
    budgets = np.arange(total + 1, dtype=np.int64)
    left = budgets.copy()
    joins: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(sizes)
    by_size = np.argsort(sizes, kind="stable")
    nonempty = int(np.count_nonzero(sizes))
    for position, b in enumerate(by_size[len(sizes) - nonempty:]):
        taken = np.minimum(sizes[b], left // (nonempty - position))
        left -= taken
        joins[b] = np.searchsorted(taken, np.arange(1, sizes[b] + 1), side="left")
    if np.any(left):  # cannot happen (see allocate); refuse rather than drop examples silently
        raise RuntimeError(f"coverage allocation left examples unassigned for bin sizes {sizes.tolist()}")
    return joins


def coverage_order(scores: np.ndarray, ranks: np.ndarray, policy: Coverage, rng: np.random.Generator | None = None) -> np.ndarray:
    """Example indices in the order they join the subset under ``policy``.

    ``ranks`` (0 = hardest) choose the dropped hardest share, round(beta x N) halves up;
    ``scores`` (higher = harder) place the others in ``policy.bins`` equal-width bins over
    their own range. For every m up to the kept examples, the first m of the order are
    CCS's subset of budget m: ``allocate``'s count from each bin, a seeded random draw
    within it. The dropped examples follow, least hard first.
    """
    scores = np.asarray(scores, dtype=np.float64)
    ranks = np.asarray(ranks)
    n = len(ranks)
    if scores.shape != (n,):
        raise ValueError(f"{scores.shape[0] if scores.ndim else 0} scores for {n} ranked examples")
    if not np.isfinite(scores).all():
        raise ValueError("coverage sampling needs finite scores")
    rng = np.random.default_rng(policy.seed) if rng is None else rng
    pruned = policy.pruned(n)
    dropped = np.argsort(ranks, kind="stable")[:pruned][::-1]  # least hard of the dropped first
    kept = np.flatnonzero(ranks >= pruned) if pruned else np.arange(n)
    if len(kept) + len(dropped) != n:
        raise ValueError("ranks must be a permutation of 0..N-1")
    bin_of = equal_width_bins(scores[kept], policy.bins)
    sizes = np.bincount(bin_of, minlength=policy.bins)
    order = np.empty(len(kept), dtype=np.int64)
    for b, joins in enumerate(_join_positions(sizes)):
        members = kept[bin_of == b]
        order[joins - 1] = members[rng.permutation(len(members))]
    return np.concatenate([order, dropped]).astype(np.int64)


def bin_counts(scores: np.ndarray, ranks: np.ndarray, policy: Coverage, subset) -> dict:
    """Each bin's size among the kept examples and how many of them ``subset`` holds: for the subset's metadata."""
    scores, ranks = np.asarray(scores, dtype=np.float64), np.asarray(ranks)
    kept = ranks >= policy.pruned(len(ranks))
    bin_of = np.full(len(ranks), -1, dtype=np.int64)
    bin_of[kept] = equal_width_bins(scores[kept], policy.bins)
    chosen = bin_of[np.asarray(subset, dtype=np.int64)]
    return {
        "bin_sizes": np.bincount(bin_of[kept], minlength=policy.bins).tolist(),
        "bin_taken": np.bincount(chosen[chosen >= 0], minlength=policy.bins).tolist(),
        "dropped_taken": int(np.count_nonzero(chosen < 0)),
    }
