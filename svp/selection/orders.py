"""Choose which training examples the target model sees.

Every selection is an *order* over all examples; the subset for a fraction is its
first round(fraction x N) entries. Because all fractions cut the same order, smaller
subsets are nested in larger ones.
"""

from __future__ import annotations

import functools
import heapq
import math

import numpy as np

from svp.errors import ConfigError
from svp.schema import format_fraction
from svp.selection.coverage import COVERAGE, Coverage, coverage_order, parse_coverage
from svp.selection.ranking import positions_of

# Keep policies: which end of the ranking subsets take first.
HARDEST = "hardest"
EASIEST = "easiest"
MIDDLE = "middle"
KEEP_POLICIES = (HARDEST, EASIEST, MIDDLE, COVERAGE)
UNKNOWN_POLICY = (
    "give hardest, easiest, {middle: p} with 0 < p < 1, or {coverage: {prune_hardest: b, bins: k}} with "
    "0 <= b < 1 and k >= 1"
)


def keep_name(policy) -> str:
    """The name of a keep policy as the config gives it: 'hardest', 'easiest', {'middle': p} or
    {'coverage': {...}} become 'hardest', 'easiest', 'middle<p>' (e.g. 'middle0.1'),
    'coverage<b>bins<k>' (e.g. 'coverage0.1bins50'), as in selection names."""
    if isinstance(policy, dict) and list(policy) == [MIDDLE]:
        return f"{MIDDLE}{format_fraction(policy[MIDDLE])}"
    if isinstance(policy, dict) and list(policy) == [COVERAGE] and isinstance(policy[COVERAGE], dict):
        return Coverage.from_config(policy[COVERAGE]).name
    if policy in (HARDEST, EASIEST):
        return policy
    raise ConfigError(f"unknown keep policy {policy!r}; {UNKNOWN_POLICY}")


def parse_keep(name: str) -> tuple[str, float]:
    """(policy, share of the hardest dropped) of a keep policy's name, e.g. ('middle', 0.1)."""
    if name in (HARDEST, EASIEST):
        return name, 0.0
    if (coverage := parse_coverage(name)) is not None:
        return COVERAGE, coverage.prune_hardest
    if isinstance(name, str) and name.startswith(MIDDLE):
        try:
            dropped = float(name.removeprefix(MIDDLE))
        except ValueError:
            dropped = math.nan
        if 0.0 < dropped < 1.0:
            return MIDDLE, dropped
    raise ConfigError(
        f"unknown keep policy {name!r}; give hardest, easiest, middle<p> (drop the hardest share p, "
        "0 < p < 1, e.g. middle0.1) or coverage<b>bins<k>[seed<s>] (e.g. coverage0.1bins50)"
    )


def subset_size(fraction: float, n_examples: int) -> int:
    """round(fraction x N), halves rounded up (Python's round would round 0.5 to even)."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, min(n_examples, math.floor(fraction * n_examples + 0.5)))


def random_ranks(n_examples: int, seed: int) -> np.ndarray:
    """A uniformly random order, fixed by ``seed``: the baseline with no proxy."""
    order = np.random.default_rng(seed).permutation(n_examples)
    return positions_of(order)


def _class_windows(sizes: np.ndarray, j: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) subset size, counted from 1, at which the j-th example (from 0) of
    class c may join a subset so that every subset of k examples holds floor(k n_c / N) to
    ceil(k n_c / N) of class c: its share rounded down or up, i.e. within one example of
    it. Joining before ``first`` puts the class above its share rounded up, after
    ``last`` below its share rounded down."""
    total, n = int(sizes.sum()), sizes[c]
    return (j * total) // n + 1, ((j + 1) * total + n - 1) // n


def _jobs(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class, position within the class) of every example, class by class."""
    c = np.repeat(np.arange(len(sizes)), sizes)
    return c, np.arange(len(c)) - np.repeat(np.cumsum(sizes) - sizes, sizes)


@functools.lru_cache(maxsize=32)
def _sainte_lague_keeps_quotas(sizes: tuple[int, ...]) -> bool:
    """Whether interleaving by due time (j + 1/2) / n_c keeps every prefix within one
    example of each class's share, however equal due times are ordered (the ranks order
    them). True for near-balanced classes; long tails break it."""
    sizes_array = np.asarray(sizes, dtype=np.int64)
    c, j = _jobs(sizes_array)
    due = (j + 0.5) / sizes_array[c]
    order = np.lexsort((c, due))
    due, c, j = due[order], c[order], j[order]
    new_group = np.concatenate(([True], due[1:] != due[:-1]))
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], len(due))  # a group of equal due times fills slots starts+1..ends
    first, last = _class_windows(sizes_array, j, c)
    return bool(np.all(first <= starts[group] + 1) and np.all(ends[group] <= last))


@functools.lru_cache(maxsize=32)
def _quota_sequence(sizes: tuple[int, ...]) -> np.ndarray:
    """The class of each subset position, every example inside its ``_class_windows``.

    Built from the end: the last position goes to the example that may join latest
    (largest ``first``), then the one before, ...: earliest deadline first in reversed
    time, ties to the later due time (j + 1/2) / n_c, then the higher label. Such an
    order exists (house-monotone apportionment within quota: Balinski and Young, 1975)
    and earliest deadline first finds one whenever one exists (unit-length jobs with
    whole-number release times on one machine), so every prefix stays within one example
    of each class's share. Built from the end, each example joins as early as its window
    allows: small classes get their share rounded up, large ones (for which one example
    weighs little) rounded down.
    """
    sizes_array = np.asarray(sizes, dtype=np.int64)
    total = int(sizes_array.sum())

    def job(c: int, j: int) -> tuple[int, int, float, int]:
        first, last = _class_windows(sizes_array, np.int64(j), np.int64(c))
        return -int(last), -int(first), -(j + 0.5) / sizes[c], -c

    left = list(sizes)
    waiting = [job(c, left[c] - 1) for c in range(len(sizes)) if sizes[c]]  # each class's last example
    heapq.heapify(waiting)
    ready: list[tuple[int, float, int]] = []
    sequence = np.empty(total, dtype=np.int64)
    for slot in range(total, 0, -1):
        while waiting and -waiting[0][0] >= slot:
            _, latest_first, due, negative_c = heapq.heappop(waiting)
            heapq.heappush(ready, (latest_first, due, negative_c))
        latest_first, _, negative_c = heapq.heappop(ready)
        c = -negative_c
        if -latest_first > slot:  # cannot happen (see above); refuse rather than break the promise silently
            raise RuntimeError(f"class-balanced order missed a quota for class sizes {sizes}")
        sequence[slot - 1] = c
        left[c] -= 1
        if left[c]:
            heapq.heappush(waiting, job(c, left[c] - 1))
    sequence.flags.writeable = False
    return sequence


def keep_order(ranks: np.ndarray, keep: str = HARDEST) -> np.ndarray:
    """Ranks re-ordered by the keep policy ``keep`` (``keep_name``), 0 joining subsets first.

    ``hardest``: the ranks as they are (most uncertain first, SVP). ``easiest``: reversed.
    ``middle<p>``: the hardest p of all examples (round(p x N), halves up) move to the
    end, least hard of them first, so subsets take a band below them and fractions stay
    nested (Sorscher et al., 2022: with little data kept, easier examples win).
    """
    policy, dropped = parse_keep(keep)
    if policy == COVERAGE:
        raise ValueError("a coverage order needs the examples' scores too: use selection_order(..., scores=...)")
    ranks = np.asarray(ranks)
    if policy == HARDEST:
        return ranks
    n = len(ranks)
    if policy == EASIEST:
        return n - 1 - ranks
    moved = math.floor(dropped * n + 0.5)
    # Ranks 0..moved-1 go last in reverse (n-1 down to n-moved); the rest move up by `moved`.
    return np.where(ranks < moved, n - 1 - ranks, ranks - moved)


def selection_order(
    ranks: np.ndarray, labels: np.ndarray, class_balanced: bool, keep: str = HARDEST, scores: np.ndarray | None = None
) -> np.ndarray:
    """Example indices in the order they join the subset (the first kept by ``keep`` first).

    Plain top-k follows the ranks (after ``keep_order``). Class-balanced selection keeps
    every prefix of k examples within one example of each class's share of the data
    (floor(k n_c / N) to ceil(k n_c / N) of class c), each class contributing its own
    best-ranked examples. Classes interleave by due time: the j-th best example of a class
    of n_c examples is due at fraction (j + 1/2) / n_c, ties going to the better overall
    rank (Sainte-Lague's apportionment). Where that would break the bound (long-tailed
    class sizes), they interleave by ``_quota_sequence``, which depends on the class
    sizes only. Uncertainty alone skews small subsets toward hard classes, which can lose
    to random selection.

    A coverage policy (``svp.selection.coverage``) also reads ``scores`` (higher =
    harder, one per example). Class-balanced, each class is pruned, binned and drawn on
    its own (its hardest share dropped, bins over its own scores, a draw seeded by the
    policy's seed and the class), and the classes interleave as above.
    """
    if (coverage := parse_coverage(keep)) is not None:
        if scores is None:
            raise ValueError(f"keep policy {keep!r} needs the examples' scores")
        ranks = coverage_ranks(ranks, scores, labels if class_balanced else None, coverage)
        keep = HARDEST
    ranks = keep_order(ranks, keep)
    by_rank = np.argsort(ranks, kind="stable")
    if not class_balanced:
        return by_rank
    labels = np.asarray(labels)[by_rank]
    class_sizes = np.bincount(labels)
    class_starts = np.cumsum(class_sizes) - class_sizes
    by_class = np.argsort(labels, kind="stable")  # keeps rank order within each class
    present = np.flatnonzero(class_sizes)
    sizes = tuple(int(size) for size in class_sizes[present])
    if not _sainte_lague_keeps_quotas(sizes):
        sequence = present[_quota_sequence(sizes)]
        within = np.empty(len(sequence), dtype=np.int64)
        by_turn = np.argsort(sequence, kind="stable")
        within[by_turn] = np.arange(len(sequence)) - class_starts[sequence[by_turn]]
        return by_rank[by_class[class_starts[sequence] + within]]
    within_class = np.empty(len(labels), dtype=np.int64)
    within_class[by_class] = np.arange(len(labels)) - class_starts[labels[by_class]]
    due = (within_class + 0.5) / class_sizes[labels]
    return by_rank[np.lexsort((np.arange(len(labels)), due))]


def coverage_ranks(ranks: np.ndarray, scores: np.ndarray, labels: np.ndarray | None, coverage: Coverage) -> np.ndarray:
    """Positions (0 joins first) in ``coverage``'s order; with ``labels``, in each class's
    own coverage order, classes placed side by side by the share of the class already
    taken, (j + 1/2) / n_c, ties to the lower label."""
    ranks, scores = np.asarray(ranks), np.asarray(scores, dtype=np.float64)
    if labels is None:
        return positions_of(coverage_order(scores, ranks, coverage))
    labels = np.asarray(labels)
    due = np.empty(len(ranks), dtype=np.float64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        # Each class's own draw: a class's subset does not change when another class changes.
        rng = np.random.default_rng([coverage.seed, int(label)])
        within = coverage_order(scores[members], positions_of(np.argsort(ranks[members], kind="stable")), coverage, rng)
        due[members[within]] = (np.arange(len(members)) + 0.5) / len(members)
    return positions_of(np.lexsort((labels, due)))


def coverage_dropped(ranks: np.ndarray, labels: np.ndarray | None, coverage: Coverage) -> np.ndarray:
    """Whether each example is among the hardest share ``coverage`` drops (within its class, with ``labels``)."""
    ranks = np.asarray(ranks)
    if labels is None:
        return ranks < coverage.pruned(len(ranks))
    labels = np.asarray(labels)
    dropped = np.zeros(len(ranks), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        dropped[members[np.argsort(ranks[members], kind="stable")[: coverage.pruned(len(members))]]] = True
    return dropped


def smallest_subset(class_sizes, class_balanced: bool) -> int:
    """The fewest examples a subset needs to hold every class, whatever the ranks.

    Top-k needs one example per class. In ``selection_order``'s class-balanced order by
    due time the smallest class (n_min examples) gets its first example at due time
    1/2 / n_min, so the subset needs every example due no later: (n_c + n_min) // (2 n_min)
    per class; in the quota order, the position at which the last class first appears.
    """
    sizes = np.asarray(class_sizes, dtype=np.int64)
    sizes = sizes[sizes > 0]
    if not class_balanced:
        return len(sizes)
    key = tuple(int(size) for size in sizes)
    if _sainte_lague_keeps_quotas(key):
        return int(((sizes + sizes.min()) // (2 * sizes.min())).sum())
    sequence = _quota_sequence(key)
    return int(max(np.flatnonzero(sequence == c)[0] for c in range(len(sizes))) + 1)


def fraction_problem(fraction: float, class_sizes, class_balanced: bool) -> str | None:
    """Why a subset of ``fraction`` of a training set cannot hold every class, or None.

    ``class_sizes`` are the training examples per class. The select stage asks with the
    real labels; config validation asks earlier where the data set's size is known.
    """
    if not 0.0 < fraction <= 1.0:  # NaN included
        return f"fraction {fraction!r} is not a share of the training set, from 0 (excluded) to 1"
    examples = int(sum(class_sizes))
    kept = math.floor(fraction * examples + 0.5)  # subset_size, before it keeps at least one
    needed = smallest_subset(class_sizes, class_balanced)
    if kept >= needed:
        return None
    why = "so that class-balanced selection reaches every class" if class_balanced else "one per class"
    # The smallest f with floor(f x N + 1/2) >= needed (subset_size), rounded up.
    least = _round_up((needed - 0.5) / examples)
    return (
        f"fraction {float(fraction)!r} keeps {kept:,} of the {examples:,} training examples, but a "
        f"subset needs at least {needed:,} ({why}); use a fraction of at least {format_fraction(least)}"
    )


def _round_up(value: float, digits: int = 2) -> float:
    """``value`` rounded up to ``digits`` significant digits."""
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return float(f"{math.ceil(value / scale) * scale:.{digits}g}")
