"""Benchmark: the score stage against a bare ``model(x)`` loop over the same tensors.

For each model, on N CIFAR-10 training images prepared as the workflow prepares them:

* baseline: ``model(x)`` under ``torch.no_grad()`` over the normalised float batches
  that svp feeds the model (computed beforehand, so the loop does nothing else);
* ``svp.training.predict_logits``: what the score stage runs on the data in memory
  (gathering each batch from the uint8 pixels, normalising it, the model, the logits);
* ``svp.stages.score_run``: the whole stage of ``svp score`` after its imports (reading
  and checksumming the prepared data, loading the checkpoint, the logits, the three
  uncertainty scores, writing the parquet file);
* the bare loop normalising each batch of uint8 pixels before ``model(x)``: what
  ``predict_logits`` does beyond the baseline, for a cheap model a fifth of its time;
* what two changes to the stage gained, each against the baseline: the bare loop with
  the model and batches in the standard (N, C, H, W) layout, as svp ran them before it
  kept images channels-last; and the bare loop in a fresh process with glibc's default
  memory handling, where svp now keeps freed memory (``svp.trainers.torch_trainer.keep_freed_memory``;
  the other rows run after it, in this process).

The model has random weights (scoring costs the same whatever they are).
Run: .venv/bin/python bench/scoring.py [--models tiny_cnn:10000 preact_resnet20:2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cifar_pixels, header, interleaved, ratio_line  # noqa: E402

from svp import data, stages  # noqa: E402
from svp.trainers import torch_trainer  # noqa: E402
from svp.models.networks import create_model  # noqa: E402
from svp.training.loop import predict_logits  # noqa: E402


def prepare(folder: Path, n: int) -> str:
    """A prepared data folder of ``n`` training images (and 100 test images)."""
    x, y, source = cifar_pixels(n + 100)
    np.savez(folder / "train.npz", x=x[:n], y=y[:n])
    np.savez(folder / "test.npz", x=x[n:], y=y[n:])
    data.prepare_dataset({"name": "npz", "train": [str(folder / "train.npz")], "test": [str(folder / "test.npz")]}, folder / "data")
    return source


def checkpoint(folder: Path, model_name: str) -> Path:
    """A checkpoint as ``svp train`` writes it, with seed-0 random weights."""
    torch.manual_seed(0)
    model = create_model(model_name, 10, 3)
    path = folder / f"{model_name}.pt"
    torch.save({"model_name": model_name, "num_classes": 10, "in_channels": 3, "state_dict": model.state_dict(), "training": {}}, path)
    return path


def bare_in_child(folder: Path, model_name: str, batch_size: int, keep_freed: bool) -> float:
    """The bare loop in a fresh process: its own seconds replace the parent's timing."""
    command = [sys.executable, __file__, "--child", str(folder), model_name, str(batch_size), str(int(keep_freed))]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


def child(folder: Path, model_name: str, batch_size: int, keep_freed: bool) -> None:
    torch.set_num_threads(1)
    if keep_freed:
        torch_trainer.keep_freed_memory()
    (x, y), _, manifest = data.load_prepared(folder / "data")
    inputs = torch_trainer.model_inputs(x, y, manifest, torch.device("cpu"))
    model = torch_trainer.torch_model(torch.load(folder / f"{model_name}.pt", weights_only=True), folder / f"{model_name}.pt").eval()
    batches = [inputs.batch(slice(s, s + batch_size))[0] for s in range(0, len(inputs), batch_size)]
    with torch.no_grad():
        model(batches[0])
        started = time.perf_counter()
        for batch in batches:
            model(batch)
    print(time.perf_counter() - started)


def bench_model(folder: Path, model_name: str, batch_size: int, repeats: int, source: str) -> None:
    path = checkpoint(folder, model_name)
    (x, y), _, manifest = data.load_prepared(folder / "data")
    inputs = torch_trainer.model_inputs(x, y, manifest, torch.device("cpu"))
    model = torch_trainer.torch_model(torch.load(path, weights_only=True), path)  # as the score stage builds it
    model.eval()
    starts = range(0, len(inputs), batch_size)
    batches = [inputs.batch(torch.arange(s, min(s + batch_size, len(inputs))))[0] for s in starts]
    standard_model = torch_trainer.torch_model(torch.load(path, weights_only=True), path).eval()
    standard_batches = [b.contiguous() for b in batches]

    @torch.no_grad()
    def bare(net=model, tensors=batches):
        for tensor in tensors:
            net(tensor)

    def stage():
        with contextlib.redirect_stdout(io.StringIO()):  # its "scored N examples" line
            stages.score_run(checkpoint=path, data_dir=folder / "data", scores_out=folder / "scores.parquet", batch_size=batch_size)

    @torch.no_grad()
    def bare_normalising():
        for start in starts:
            model(inputs.normalise(inputs.pixels(slice(start, start + batch_size))))

    # One untimed pass of each: oneDNN builds its kernels for each shape on first use.
    bare(), bare(standard_model, standard_batches), predict_logits(model, inputs, batch_size)
    seconds = interleaved(
        {
            "bare": bare,
            "predict_logits": lambda: predict_logits(model, inputs, batch_size),
            "score_run": stage,
            "bare_standard_layout": lambda: bare(standard_model, standard_batches),
            "bare_normalising": bare_normalising,
        },
        repeats,
    )
    children = {keep: [] for keep in (True, False)}
    for _ in range(max(3, repeats // 2)):  # a fresh process each: fewer repeats
        for keep in children:
            children[keep].append(bare_in_child(folder, model_name, batch_size, keep))
    n = len(inputs)
    rate = n / np.median(seconds["bare"])
    print(f"\n{model_name}, {n:,} images ({source}), batch {batch_size}, {torch.get_num_threads()} thread(s); "
          f"baseline: bare model(x) loop, {rate:,.0f} images/s")  # fmt: skip
    print(ratio_line("svp.training.predict_logits", seconds["predict_logits"], seconds["bare"], goal=1.10))
    print(ratio_line("svp.stages.score_run (whole stage after imports)", seconds["score_run"], seconds["bare"], goal=1.10))
    print(ratio_line("bare loop that normalises each batch of pixels first (the work the baseline is given done)", seconds["bare_normalising"], seconds["bare"]))
    print(ratio_line("bare loop in the standard NCHW layout (svp before channels-last)", seconds["bare_standard_layout"], seconds["bare"]))
    print(
        ratio_line("bare loop in a fresh process, glibc's default memory handling", children[False], children[True])
        + " (baseline here: the same in a fresh process after keep_freed_memory)"
    )


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        folder, model_name, batch_size, keep = sys.argv[2:]
        return child(Path(folder), model_name, int(batch_size), keep == "1")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny_cnn:10000", "preact_resnet20:2000"], help="name:examples")
    parser.add_argument("--batch-size", type=int, default=1024, help="the scoring batch (config scoring.batch_size)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a CPU-only workflow job has 1)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch_trainer.keep_freed_memory()  # as the score stage does, for every row measured here
    header("Scoring", "bench/scoring.py " + " ".join(sys.argv[1:]))
    print(f"median of {args.repeats} interleaved repeats (min-max)")
    for spec in args.models:
        model_name, examples = spec.split(":")
        with tempfile.TemporaryDirectory(prefix="svp-bench-scoring-") as tmp:
            source = prepare(Path(tmp), int(examples))
            bench_model(Path(tmp), model_name, args.batch_size, args.repeats, source)


if __name__ == "__main__":
    main()
