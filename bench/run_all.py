"""`make bench`: every benchmark of BENCHMARKS.md, one process each, in about 10-15 minutes on 2 cores.

Prints each benchmark's figures as it goes and keeps a copy of everything printed in
results/bench/<date>.md. Each figure is a ratio against a baseline measured in the
same run (see each script's docstring for what is compared).
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine  # noqa: E402

BENCH = Path(__file__).resolve().parent
# (script, arguments): sized so that the whole set stays under 15 minutes on 2 busy cores.
BENCHMARKS = [
    ("scoring.py", ["--repeats", "5"]),
    ("training_loop.py", ["--repeats", "5"]),
    ("input_pipeline.py", ["--batches", "100", "--repeats", "3"]),
    ("rank_combination.py", ["--repeats", "3"]),
    ("startup.py", ["--repeats", "3"]),
    ("default_run.py", []),
    # svp's disk pipeline against a bare ImageFolder loop, and a 30 % subset's cost: 4,000
    # synthetic JPEGs (about 2 minutes); BENCHMARKS.md has the 25,000-image run.
    ("disk_pipeline.py", ["results/bench/imagenet-tree", "--make", "4000", "--classes", "20", "--workers", "2"]),
    # What reader processes copy of ImageNet's 1.28 million paths in an epoch (about a minute).
    ("path_memory.py", ["--paths", "1281167", "--workers", "2"]),
]


def main() -> int:
    out = REPO / "results" / "bench" / f"{datetime.datetime.now():%Y-%m-%dT%H%M}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with out.open("w") as copy:

        def emit(text: str) -> None:
            print(text, end="", flush=True)
            copy.write(text)

        emit(f"# make bench\n\nmachine: {machine()}\n")
        for script, arguments in BENCHMARKS:
            began = time.perf_counter()
            command = [sys.executable, str(BENCH / script), *arguments]
            process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for line in process.stdout:
                emit(line)
            if process.wait() != 0:
                emit(f"\n{script} failed (exit status {process.returncode})\n")
                return 1
            emit(f"\n({script}: {time.perf_counter() - began:.0f} s)\n")
        emit(f"\nall benchmarks: {(time.perf_counter() - started) / 60:.1f} minutes; this output: {out.relative_to(REPO)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
