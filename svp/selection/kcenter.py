"""k-center greedy core-set selection (Sener and Savarese, 2018) on embeddings.

Each step adds the point farthest from every centre chosen so far. The order of choice
is the selection order: the first k picks are the greedy k-centre set, so subsets cut
from it at growing fractions are nested. Their covering radius (the largest distance
from any point to its nearest centre) is at most twice the best possible for k centres.

Memory is linear in the pool: each point keeps only its squared distance to its nearest
centre (one float per point), updated from the newest centre's distances, which are
computed in blocks of rows. The float32 copy of the embeddings it works on may be a
memory-mapped file (``scratch``), so a million-image pool need not fit in memory. The SVP
authors' code instead fills a (selected + budget) x pool distance matrix
(bench/kcenter.py compares the two).

torch is imported when the function runs, not when this module is imported, so that the
stages that only read subsets stay torch-free (tests/test_torch_free.py).
"""

from __future__ import annotations

import operator

import numpy as np

from svp.errors import ConfigError, StageInputError

# Distances computed at once (rows x centres), and values centred at once: a block large
# enough for BLAS (a 50,000-point pool is one block). The temporaries are a few arrays of
# that many values, about 140 MiB at most in all (bench/kcenter.py, 64 dimensions, 1,000
# initial centres); a smaller batch_size makes them smaller, at some cost in speed.
DEFAULT_BATCH_SIZE = 1 << 22


def k_center_greedy(
    embeddings,
    budget: int,
    *,
    initial=None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device=None,
    scratch=None,
) -> np.ndarray:
    """Indices of ``budget`` new centres, in the order k-center greedy chooses them.

    ``embeddings``: array (points, dimensions), finite. ``initial``: indices already
    chosen (for instance a random start, as in the SVP authors' code); they are not
    returned, so the whole order is ``np.concatenate([initial, result])``. Without
    ``initial`` the first centre is a uniformly random point drawn with ``seed``
    (``np.random.default_rng(seed).integers(points)``), and it is the first index
    returned. A random start rather than the point farthest from the mean: that point is
    the most extreme outlier, and greedy k-center reaches the outliers anyway; a seeded
    start lets proxy seeds give distinct orders.

    Distances are float32 squared Euclidean distances on the embeddings less their mean:
    centring changes no distance but shrinks the norms, which keeps the cancellation in
    ||a||^2 + ||b||^2 - 2ab small; what cancellation is left may still make two
    distances that differ by less than about 1e-6 of the squared norms tie or swap.
    So "ties go to the lowest index" holds only for distances equal as computed (in
    float32, after centring). Distances equal in the data (duplicated points, points
    symmetric about a centre) are mostly broken by rounding, one way or the other, not
    by index. Every pick is still a maximum of the computed distances, which are within
    rounding of the true ones.

    ``batch_size``: how many point-centre distances are computed at once.
    ``device``: a torch device; the GPU when there is one, else the CPU.
    ``scratch``: a folder for the centred float32 copy on the CPU when it would exceed
    ``svp.scratch.IN_MEMORY_BYTES`` (a memory-mapped temporary file; ``svp.scratch``). Each
    pick then reads it whole from the page cache, or from the disk where it does not fit.
    """
    from svp.scratch import scratch_array
    import torch

    points, mean = _checked_embeddings(embeddings)
    n_points = len(points)
    chosen = _checked_initial(initial, n_points)
    budget = _checked_budget(budget, n_points - len(chosen))
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"k-center batch_size must be a positive integer, got {batch_size!r}")
    if budget == 0:
        return np.empty(0, dtype=np.int64)
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))

    rows = min(n_points, int(batch_size))  # pool rows per block of distances to one centre
    # Centred in float64 on the host, batch_size values at a time, so that a float32 pool
    # never has a whole float64 copy; only float32 reaches the device.
    copy_rows = max(1, min(n_points, int(batch_size) // points.shape[1]))
    if device.type == "cpu":
        x = torch.from_numpy(scratch_array((n_points, points.shape[1]), np.float32, scratch))
    else:
        x = torch.empty((n_points, points.shape[1]), dtype=torch.float32, device=device)
    squared_norms = torch.empty(n_points, dtype=torch.float32, device=device)
    for start in range(0, n_points, copy_rows):
        centred = np.asarray(points[start : start + copy_rows], dtype=np.float64) - mean
        block = torch.from_numpy(centred.astype(np.float32)).to(device)
        x[start : start + copy_rows] = block
        squared_norms[start : start + copy_rows] = (block * block).sum(dim=1)

    # Chosen points hold -1: a fresh distance is clamped to >= 0, so minimum() keeps them
    # at -1 and argmax never picks them again (not even when all the rest are at 0).
    nearest = torch.full((n_points,), float("inf"), dtype=torch.float32, device=device)
    if len(chosen):
        _lower_to_centres(x, squared_norms, nearest, torch.from_numpy(chosen).to(device), rows, int(batch_size))
        nearest[torch.from_numpy(chosen).to(device)] = -1.0
        pick = torch.argmax(nearest)  # torch returns the first of equal maxima: lowest index
    else:
        pick = torch.tensor(int(np.random.default_rng(seed).integers(n_points)), device=device)

    # The picks stay on the device until the end: reading each one back would wait for
    # the GPU at every step.
    order = torch.empty(budget, dtype=torch.int64, device=device)
    for step in range(budget):
        order[step] = pick
        if step == budget - 1:
            break
        centre = pick.reshape(1)
        _lower_to_centres(x, squared_norms, nearest, centre, rows, int(batch_size))
        nearest.index_fill_(0, centre, -1.0)
        pick = torch.argmax(nearest)
    return order.cpu().numpy()


def _lower_to_centres(x, squared_norms, nearest, centres, rows: int, batch_size: int) -> None:
    """nearest = min(nearest, squared distance to each of ``centres``), block by block."""
    import torch

    if len(centres) == 1:
        # The greedy step: a matrix-vector product per block, with no (rows, 1) temporaries.
        c = x.index_select(0, centres)[0]
        c_norm = squared_norms.index_select(0, centres)
        for start in range(0, len(x), rows):
            stop = min(start + rows, len(x))
            d2 = torch.addmv(squared_norms[start:stop], x[start:stop], c, alpha=-2.0).add_(c_norm)
            d2.clamp_(min=0.0)  # rounding can take it just below 0 for near-equal points
            torch.minimum(nearest[start:stop], d2, out=nearest[start:stop])
        return
    per_chunk = max(1, batch_size // rows)
    for first in range(0, len(centres), per_chunk):
        chunk = centres[first : first + per_chunk]
        c = x.index_select(0, chunk)  # (centres, d)
        c_norms = squared_norms.index_select(0, chunk)
        for start in range(0, len(x), rows):
            stop = min(start + rows, len(x))
            # ||a||^2 + ||b||^2 - 2ab: one matrix product instead of a (rows, centres, d)
            # difference tensor; rounding can take it just below 0 for near-equal points.
            d2 = torch.addmm(squared_norms[start:stop, None] + c_norms[None, :], x[start:stop], c.T, alpha=-2.0)
            d2.clamp_(min=0.0)
            torch.minimum(nearest[start:stop], d2.amin(dim=1), out=nearest[start:stop])


def _checked_embeddings(embeddings) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings as a 2-d real array, and their float64 mean; errors name the problem."""
    points = np.asarray(embeddings)
    if points.ndim != 2:
        raise StageInputError(f"k-center needs embeddings of shape (points, dimensions), got shape {points.shape}")
    if points.shape[0] == 0:
        raise StageInputError("k-center got an empty pool: the embeddings have no rows")
    if points.shape[1] == 0:
        raise StageInputError(f"k-center got embeddings with 0 dimensions (shape {points.shape})")
    if not (np.issubdtype(points.dtype, np.floating) or np.issubdtype(points.dtype, np.integer)):
        raise StageInputError(f"k-center needs real-valued embeddings, got dtype {points.dtype}")
    # Row by row block, so that checking costs no (points, d) boolean copy at once.
    rows = max(1, DEFAULT_BATCH_SIZE // points.shape[1])
    for start in range(0, len(points), rows):
        finite = np.isfinite(points[start : start + rows]).all(axis=1)
        if not finite.all():
            bad = start + int(np.flatnonzero(~finite)[0])
            count = sum(int((~np.isfinite(points[s : s + rows]).all(axis=1)).sum()) for s in range(start, len(points), rows))
            raise StageInputError(
                f"k-center embeddings hold NaN or infinite values in {count:,} of {len(points):,} rows "
                f"(first: row {bad}); was the proxy's training diverging?"
            )
    return points, points.mean(axis=0, dtype=np.float64)


def _checked_initial(initial, n_points: int) -> np.ndarray:
    if initial is None:
        return np.empty(0, dtype=np.int64)
    chosen = np.asarray(initial)
    if chosen.size == 0:
        return np.empty(0, dtype=np.int64)
    if chosen.ndim != 1 or not np.issubdtype(chosen.dtype, np.integer):
        raise StageInputError(f"k-center initial centres must be a 1-d list of point indices, got {chosen.dtype} of shape {chosen.shape}")
    if chosen.min() < 0 or chosen.max() >= n_points:
        raise StageInputError(f"k-center initial centres must be indices in 0..{n_points - 1}, got {chosen.min()}..{chosen.max()}")
    if len(np.unique(chosen)) != len(chosen):
        raise StageInputError(f"k-center initial centres repeat indices ({len(chosen) - len(np.unique(chosen))} duplicates)")
    return chosen.astype(np.int64)


def _checked_budget(budget, available: int) -> int:
    try:
        if isinstance(budget, bool):
            raise TypeError
        budget = operator.index(budget)
    except TypeError:
        raise ConfigError(f"k-center budget must be a whole number of points, got {budget!r}") from None
    if not 0 <= budget <= available:
        raise ConfigError(f"k-center budget must be in 0..{available} (the points not yet chosen), got {budget}")
    return budget
