"""What every benchmark here shares: the machine, interleaved timing, and CIFAR-10 pixels.

Every figure is a ratio against a baseline measured in the same run: the machine may be
shared, so both sides are timed in turn (ABAB..., the order swapped each repeat) and the
median of the repeats is reported.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CIFAR = REPO.parent / "shared" / "data" / "cifar10"


def cpu_model() -> str:
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in listing.splitlines() if ":" in line)
    return fields.get("Model name", "unknown CPU").strip()


def machine() -> str:
    """One line: CPU model, cores, memory, date, load, Python, torch (only if already imported)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    parts = [
        f"{cpu_model()}, {os.cpu_count()} cores, {memory:.0f} GiB",
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg()),
        f"Python {platform.python_version()}",
    ]
    if "torch" in sys.modules:
        parts.append(f"torch {sys.modules['torch'].__version__}")
    return "; ".join(parts)


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        ticks[int(stat.parent.name)] = (name, int(fields[11]) + int(fields[12]))  # utime + stime
    return ticks


def busy_processes(threshold: float = 20.0, interval: float = 1.0) -> list[str]:
    """Other processes that used over ``threshold`` % of a CPU in the last ``interval`` seconds."""
    if not Path("/proc/self/stat").exists():
        return []
    before = _cpu_ticks()
    time.sleep(interval)
    after = _cpu_ticks()
    per_second = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (name, ticks) in after.items():
        used = 100.0 * (ticks - before.get(pid, (name, ticks))[1]) / per_second / interval
        if used > threshold and pid != os.getpid():
            busy.append(f"{name} ({used:.0f}%)")
    return busy


def interleaved(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each candidate, ``repeats`` times, in turn (order reversed every other repeat)."""
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            started = time.perf_counter()
            candidates[name]()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """'median (min-max)' in seconds."""
    return f"{median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


def ratio_line(name: str, values: list[float], baseline: list[float], goal: float | None = None) -> str:
    ratio = median(values) / median(baseline)
    verdict = "" if goal is None else (f"  goal <= {goal:.2f}x: {'met' if ratio <= goal else 'NOT met'}")
    return f"  {name}: {spread(values)}, {ratio:.3f}x the baseline{verdict}"


def cifar_pixels(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` CIFAR-10 training images (uint8 N,32,32,3) and labels, and where they came from.

    The JPEG-decoded CIFAR-10 copy in ../shared/data/cifar10 when there is one; random
    pixels of the same shape otherwise (the speed is the same).
    """
    parts = sorted(CIFAR.glob("train-*.npz"))
    if parts:
        xs, ys = [], []
        for part in parts:
            with np.load(part) as archive:
                xs.append(archive["x"])
                ys.append(archive["y"])
            if sum(len(y) for y in ys) >= n:
                break
        x, y = np.concatenate(xs)[:n], np.concatenate(ys)[:n].astype(np.int64)
        if len(y) == n:
            return np.ascontiguousarray(x), y, f"CIFAR-10 ({CIFAR})"
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n), "random 32x32x3 pixels"


def header(title: str, command: str) -> None:
    print(f"\n## {title}\n")
    print(f"command: {command}")
    print(f"machine: {machine()}")
    busy = busy_processes()
    print(f"other busy processes at the start: {', '.join(busy) if busy else 'none'}", flush=True)
