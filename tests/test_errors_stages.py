"""The README's bad-input table, for stage inputs and faults: each gets one line naming the problem.

A real proxy run (digits, small_cnn, `eval_every: 0`) is trained, scored, ranked and
selected by the `svp` command; each bad input is one of its files, damaged as a user,
an editor or a full disk would damage it, and given to the `svp` command that reads it.
None may print a traceback or leave an output behind.
"""

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from svp.cli import main
from svp.command_errors import run_command
from svp.parquet import read_parquet_metadata, write_parquet
from svp.stages import RESUME_FILE

TRAINING = {"batch_size": 64, "lr_schedule": [{"epochs": 2, "lr": 0.05}], "eval_every": 0}
PROXY_INFO = {"role": "proxy", "proxy": "cnn", "seed": 0}
TARGET_INFO = {"role": "target", "target": "net", "selection": "cnn-entropy", "proxy": "cnn", "metric": "entropy",
               "fraction": 0.5, "seed": 0}


def _train_arguments(data, run: Path, training=TRAINING, info=PROXY_INFO, subset=None, model="small_cnn"):
    return [
        "train", "--model", model, "--training", json.dumps(training), "--seed", "0", "--data", str(data),
        *(["--subset", str(subset)] if subset else []), "--model-out", str(run / "model.pt"),
        "--history-out", str(run / "history.csv"), "--metrics-out", str(run / "metrics.json"),
        "--info", json.dumps(info), "--threads", "1",
    ]


def _run(arguments) -> None:
    assert main([str(a) for a in arguments]) == 0


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A digits proxy run with its scores, ranks and a subset; a target trained on it: all real files."""
    root = tmp_path_factory.mktemp("experiment")
    data = root / "data"
    _run(["prepare", "--dataset", json.dumps({"name": "digits"}), "--out-dir", data])
    _run(_train_arguments(data, root / "proxy"))
    _run(["score", "--checkpoint", root / "proxy/model.pt", "--data", data, "--out", root / "scores.parquet",
          "--info", json.dumps(PROXY_INFO), "--threads", "1"])
    _run(["rank", root / "scores.parquet", "--metric", "entropy", "--out", root / "ranks.parquet"])
    _run(["select", "--ranks", root / "ranks.parquet", "--data", data, "--fraction", "0.5",
          "--out", root / "subsets/cnn-entropy/0.5.parquet"])
    _run(_train_arguments(data, root / "target", info=TARGET_INFO, subset=root / "subsets/cnn-entropy/0.5.parquet"))
    return root


def _altered(source: Path, out: Path, change) -> Path:
    """``source`` (a parquet file svp wrote) with ``change`` applied to its table, its svp metadata kept."""
    frame = change(pd.read_parquet(source))
    write_parquet(frame, out, read_parquet_metadata(source))
    return out


def _set(column, row, value, dtype=None):
    def change(frame):
        if dtype:
            frame[column] = frame[column].astype(dtype)
        frame.loc[row, column] = frame.loc[1, column] if value == "repeat" else value
        return frame

    return change


def _image_data(root: Path, name: str, keep_classes: int | None = None, channels: int = 1, zoom: float = 1) -> Path:
    """digits as an `npz` data set prepared by svp: only the first ``keep_classes``, or colour,
    or each side ``zoom`` times as long (4: 32x32 images; 0.25: every fourth pixel, 2x2)."""
    files = []
    for split in ("train", "test"):
        with np.load(root / f"data/{split}.npz") as arrays:
            x, y = arrays["x"], arrays["y"]
        keep = y < (keep_classes or 10)
        x = np.repeat(x[keep], channels, axis=-1)
        x = x.repeat(zoom, axis=1).repeat(zoom, axis=2) if zoom >= 1 else x[:, :: round(1 / zoom), :: round(1 / zoom)]
        np.savez(root / f"{name}_{split}.npz", x=x, y=y[keep])
        files.append(str(root / f"{name}_{split}.npz"))
    folder = root / name
    if not (folder / "manifest.json").exists():
        _run(["prepare", "--dataset", json.dumps({"name": "npz", "train": [files[0]], "test": [files[1]]}), "--out-dir", folder])
    return folder


def _truncated_model(root: Path, tmp_path: Path) -> Path:
    data = (root / "proxy/model.pt").read_bytes()
    (tmp_path / "model.pt").write_bytes(data[: len(data) // 2])
    return tmp_path / "model.pt"


def _train_on(make_subset):
    def arguments(root, tmp_path):
        subset = make_subset(root / "subsets/cnn-entropy/0.5.parquet", tmp_path / "subset.parquet")
        return _train_arguments(root / "data", tmp_path / "out", info=TARGET_INFO, subset=subset)

    return arguments


def _select_from(make_ranks, with_data=True):
    def arguments(root, tmp_path):
        ranks = make_ranks(root / "ranks.parquet", tmp_path / "ranks.parquet")
        return ["select", "--ranks", ranks, *(["--data", root / "data"] if with_data else []), "--fraction", "0.5",
                "--out", tmp_path / "out/subset.parquet"]

    return arguments


def _score(checkpoint, data="data"):
    def arguments(root, tmp_path):
        model = checkpoint(root, tmp_path) if callable(checkpoint) else root / checkpoint
        folder = data(root) if callable(data) else root / data
        return ["score", "--checkpoint", model, "--data", folder, "--out", tmp_path / "out/scores.parquet"]

    return arguments


def _train_with(training=TRAINING, model_out=None):
    def arguments(root, tmp_path):
        run = tmp_path / "out"
        command = _train_arguments(root / "data", run, training=training)
        if model_out:
            (tmp_path / "a_file").write_text("in the way")
            command[command.index("--model-out") + 1] = str(tmp_path / model_out)
        return command

    return arguments


CASES = {
    "negative subset index": (
        _train_on(lambda s, o: _altered(s, o, _set("index", 3, -1))),
        ["subset.parquet, row 3: index -1 is outside 0..1346, the training set's examples", "rerun `svp select`"],
    ),
    "subset index out of range": (
        _train_on(lambda s, o: _altered(s, o, _set("index", 0, 5000))),
        ["subset.parquet, row 0: index 5000 is outside 0..1346"],
    ),
    "duplicate subset index": (
        _train_on(lambda s, o: _altered(s, o, _set("index", 4, "repeat"))),
        ["subset.parquet, row 4: index", "is listed again (first at row 1); a subset lists each example once"],
    ),
    "non-integer subset index": (
        _train_on(lambda s, o: _altered(s, o, _set("index", 2, 2.5, dtype=float))),
        ["subset.parquet, row 2: index 2.5 is not a whole number"],
    ),
    "NaN subset index": (
        _train_on(lambda s, o: _altered(s, o, _set("index", 2, np.nan, dtype=float))),
        ["subset.parquet, row 2: index is missing (null or NaN)"],
    ),
    "empty subset": (
        _train_on(lambda s, o: _altered(s, o, lambda frame: frame.head(0))),
        ["subset.parquet: the subset holds no examples; a subset needs at least one"],
    ),
    "ranks cut short": (
        _select_from(lambda s, o: _altered(s, o, lambda frame: frame.head(1000))),
        ["ranks.parquet: 1,000 rows, but the training set has 1,347 examples (cut short, or made from other data?)",
         "rerun `svp rank`"],
    ),
    "ranks cut short, no data given": (
        _select_from(lambda s, o: _altered(s, o, lambda frame: frame.head(1000)), with_data=False),
        ["ranks.parquet: column 'rank' must hold 0..999, each once (cut short or edited?)"],
    ),
    "ranks with NaN scores": (
        _select_from(lambda s, o: _altered(s, o, _set("score_mean", 5, np.nan))),
        ["ranks.parquet, row 5: score_mean is nan (1 of 1,347 rows not finite)"],
    ),
    "ranks with a repeated index": (
        _select_from(lambda s, o: _altered(s, o, _set("index", 7, "repeat"))),
        ["ranks.parquet, row 7: index 1 appears again (first at row 1); a ranks file holds each training example once"],
    ),
    "scores with NaN": (
        lambda root, tmp_path: ["rank", _altered(root / "scores.parquet", tmp_path / "scores.parquet", _set("entropy", 7, np.nan)),
                                "--metric", "entropy", "--out", tmp_path / "out/ranks.parquet"],
        ["scores.parquet, row 7: entropy is nan (1 of 1,347 rows not finite)", "did its training diverge"],
    ),
    "truncated model.pt": (
        _score(_truncated_model),
        ["model.pt: not a readable model checkpoint, truncated or corrupt (RuntimeError:",
         "rerun the stage that made it (`svp train`: the train_proxy or train_target rule)"],
    ),
    "model for other classes": (
        _score("proxy/model.pt", lambda root: _image_data(root, "three_classes", keep_classes=3)),
        ["proxy/model.pt: the model was trained for 10 classes, but", "three_classes holds 3 classes"],
    ),
    "model for other channels": (
        _score("proxy/model.pt", lambda root: _image_data(root, "colour", channels=3)),
        ["proxy/model.pt: the model reads inputs with 1 channels, but the data in", "colour has 3"],
    ),
    "model for other image sizes": (
        _score("proxy/model.pt", lambda root: _image_data(root, "large", zoom=4)),
        ["proxy/model.pt: the model was trained on 8x8 images, but", "large holds 32x32 images; score with the data "
         "it was trained on, or retrain it on this data"],
    ),
    "images smaller than the model takes": (
        lambda root, tmp_path: _train_arguments(_image_data(root, "tiny", zoom=0.25), tmp_path / "out", model="fast_cnn16"),
        ["tiny: model 'fast_cnn16' takes images of at least 7x7 pixels (its strides and pools shrink smaller ones to "
         "nothing), but the data's images are 2x2; choose a model that takes them (", "small_cnn"],
    ),
    "empty lr_schedule": (
        _train_with(dict(TRAINING, lr_schedule=[])),
        ["training setting 'lr_schedule': [] is not a list of at least one piece"],
    ),
    "batch size 0": (_train_with(dict(TRAINING, batch_size=0)), ["training setting 'batch_size': 0 is not a whole number >= 1"]),
    "NaN learning rate": (
        _train_with(dict(TRAINING, lr_schedule=[{"epochs": 2, "lr": float("nan")}])),
        ["training setting 'lr_schedule[0].lr': nan is not a finite number > 0"],
    ),
    "output path under a file": (
        _train_with(model_out="a_file/run/model.pt"),
        ["cannot write", "a_file/run/model.pt:", "a_file is a file, not a folder"],
    ),
    "summarize given proxy metrics": (
        lambda root, tmp_path: ["summarize", "--targets", root / "proxy/metrics.json", "--out", tmp_path / "out/summary.csv"],
        ["proxy/metrics.json: a proxy run's metrics, but here it takes a target run's metrics.json"],
    ),
    "summarize given a score file as metrics": (
        lambda root, tmp_path: ["summarize", "--targets", root / "scores.parquet", "--out", tmp_path / "out/summary.csv"],
        ["scores.parquet: not a readable metrics.json"],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_stage_input_gets_one_line_naming_the_file(case, experiment, tmp_path, capsys):
    make_arguments, expected = CASES[case]
    arguments = [str(a) for a in make_arguments(experiment, tmp_path)]
    capsys.readouterr()
    assert main(arguments) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"svp {arguments[0]}: error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"
    assert "Traceback" not in out + err
    if arguments[0] == "train":  # refused before any data was read or epoch run
        assert "training " not in out and "epoch 1/" not in out + err
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def test_a_seed_fasttext_cannot_take_is_refused_before_training(tmp_path, capsys):
    """`svp train --seed` takes torch's 64-bit seeds; fastText reads its seed as a 32-bit C int."""
    for split in ("train", "test"):
        (tmp_path / f"{split}.csv").write_text("label,text\n0,bad awful\n1,good great\n")
    dataset = {"name": "text_csv", "train": [str(tmp_path / "train.csv")], "test": [str(tmp_path / "test.csv")]}
    _run(["prepare", "--dataset", json.dumps(dataset), "--out-dir", tmp_path / "data"])
    arguments = _train_arguments(tmp_path / "data", tmp_path / "out", training={}, model="fasttext")
    arguments[arguments.index("--seed") + 1] = str(2**31)
    capsys.readouterr()
    assert main(arguments) == 2
    out, err = capsys.readouterr()
    assert err == (
        "svp train: error: seed 2147483648 is above 2147483647, the largest seed fastText takes (model 'fasttext'); "
        "choose a seed from 0 to 2147483647\n"
    )
    assert "training " not in out and not (tmp_path / "out").exists()
    arguments[arguments.index("--seed") + 1] = str(2**31 - 1)  # the largest it takes trains
    assert main(arguments) == 0


def test_an_unwritable_output_folder_is_refused_before_training(experiment, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root may write in any folder")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    arguments = _train_arguments(experiment / "data", locked)
    assert main(arguments) == 2
    out, err = capsys.readouterr()
    assert "no permission to write in" in err and str(locked) in err and "training " not in out


def test_learning_curves_and_report_cope_with_eval_every_0(experiment, tmp_path, capsys):
    """Runs trained with eval_every 0 record the final epoch's test error; every report
    command that reads runs goes to the end on them, and on histories with no test column
    at all (as svp wrote them before), saying what is missing."""
    runs = [experiment / "proxy/metrics.json", experiment / "target/metrics.json"]
    for run in runs:
        history = pd.read_csv(run.with_name("history.csv"))
        assert history["test_error"].isna().tolist() == [True, False]  # the final epoch only
        assert history["test_error"].iloc[-1] == pytest.approx(json.loads(run.read_text())["test_error"])
    curves = ["report", "learning-curves", "--runs", *runs, "--out", tmp_path / "curves.png"]
    _run(curves)
    assert "note:" not in capsys.readouterr().out

    for run in runs:  # as histories were before: no test column at all
        old = tmp_path / "old" / run.parent.name
        old.mkdir(parents=True)
        shutil.copy(run, old / "metrics.json")
        pd.read_csv(run.with_name("history.csv")).drop(columns=["test_loss", "test_accuracy", "test_error"]).to_csv(
            old / "history.csv", index=False
        )
    old_runs = [tmp_path / "old/proxy/metrics.json", tmp_path / "old/target/metrics.json"]
    _run(["report", "learning-curves", "--runs", *old_runs, "--out", tmp_path / "old_curves.png"])
    notes = capsys.readouterr().out
    assert "note: proxy cnn: no per-epoch test error recorded for seed 0; drawn: the final error only" in notes
    assert "note: target net: no per-epoch test error recorded for cnn-entropy 0.5" in notes
    assert (tmp_path / "old_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    target, proxy, scores = experiment / "target/metrics.json", experiment / "proxy/metrics.json", experiment / "scores.parquet"
    _run(["summarize", "--targets", target, "--proxies", proxy, "--scores", scores, "--out", tmp_path / "summary.csv"])
    _run(["report", "runs", "--targets", target, "--proxies", proxy, "--scores", scores, "--out", tmp_path / "runs.csv"])
    _run(["report", "summary-figures", "--summary", tmp_path / "summary.csv", "--error-out", tmp_path / "e.png",
          "--time-out", tmp_path / "t.png"])
    _run(["report", "error-vs-time", "--runs", tmp_path / "runs.csv", "--out", tmp_path / "et.png"])
    assert pd.read_csv(tmp_path / "runs.csv")["test_error"].tolist() == [pytest.approx(json.loads(target.read_text())["test_error"])]


def _on_a_full_tmpfs(folder: Path, size: str, command: list) -> subprocess.CompletedProcess:
    """``command`` run with a real tmpfs of ``size`` mounted on ``folder`` (in a user namespace);
    its stdout ends with the line "left: <what the folder holds after it>"."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare command")
    folder.mkdir()
    quoted = " ".join(f"'{argument}'" for argument in command)
    script = f"mount -t tmpfs -o size={size} none {folder} || exit 99; {quoted}; status=$?; echo left: $(ls -A {folder}); exit $status"
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True)
    if result.returncode == 99 or "unshare:" in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    return result


def _full_disk_line(command: str, path: Path) -> str:
    return (
        f"svp {command}: error: no space left on device while writing {path}; nothing partial was left "
        "(the temporary file was removed): free some space, or choose another output folder, and rerun"
    )


def test_a_full_disk_is_one_line_and_leaves_nothing(experiment, tmp_path):
    """`svp rank` writing onto a real, full file system: a 4 KiB tmpfs."""
    full = tmp_path / "full"
    rank = [sys.executable, "-m", "svp", "rank", experiment / "scores.parquet", "--metric", "entropy", "--out", full / "ranks.parquet"]
    result = _on_a_full_tmpfs(full, "4k", rank)
    assert result.returncode == 2, result.stderr
    assert result.stderr == _full_disk_line("rank", full / "ranks.parquet") + "\n"
    assert result.stdout.strip() == "left:"


def test_a_disk_that_fills_while_scoring_is_one_line_and_leaves_nothing(experiment, tmp_path):
    """`svp score` writing its row groups onto a real file system that fills: an 8 KiB tmpfs
    (the digits' scores take about 40 KiB)."""
    full = tmp_path / "full"
    score = [sys.executable, "-m", "svp", "score", "--checkpoint", experiment / "proxy/model.pt", "--data", experiment / "data",
             "--out", full / "scores.parquet", "--threads", "1"]  # fmt: skip
    result = _on_a_full_tmpfs(full, "8k", score)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == _full_disk_line("score", full / "scores.parquet")
    assert result.stdout.strip().splitlines()[-1] == "left:"


@pytest.mark.parametrize(("size", "writing"), [("40k", RESUME_FILE), ("600k", "model.pt")])
def test_a_full_disk_while_training_is_one_line_not_a_bug(experiment, tmp_path, size, writing):
    """`svp train` onto a full tmpfs: torch's zip writer hides the OSError behind a RuntimeError
    ("unexpected pos") as it closes the archive. With 40 KiB the first resume.pt fills it; with
    600 KiB resume.pt fits and model.pt does not."""
    full = tmp_path / "full"
    training = dict(TRAINING, lr_schedule=[{"epochs": 1, "lr": 0.05}])
    result = _on_a_full_tmpfs(full, size, [sys.executable, "-m", "svp", *_train_arguments(experiment / "data", full, training)])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == _full_disk_line("train", full / writing)
    # A finished epoch's state may stay (a rerun resumes from it); no temporary file, no model.
    assert result.stdout.strip().splitlines()[-1] == ("left: resume.pt" if writing == "model.pt" else "left:")


def test_ctrl_c_in_training_says_the_rerun_resumes_and_it_does(experiment, tmp_path):
    training = dict(TRAINING, lr_schedule=[{"epochs": 40, "lr": 0.05}])
    command = [sys.executable, "-m", "svp", *_train_arguments(experiment / "data", tmp_path, training=training)]
    # Ctrl-C's default action in the child, whatever an earlier test in this process left
    # (a process started with SIGINT ignored keeps ignoring it, as a user's nohup'd run does).
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (tmp_path / RESUME_FILE).exists():
        assert process.poll() is None, "training finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    last = err.strip().splitlines()[-1]
    assert last == (
        "svp train: interrupted; nothing partial was written; rerun the same command to resume after the last "
        f"finished epoch, saved in {tmp_path / RESUME_FILE}"
    )
    assert "Traceback" not in err and not (tmp_path / "model.pt").exists() and not (tmp_path / "metrics.json").exists()
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming from {tmp_path / RESUME_FILE} after epoch" in rerun.stderr + rerun.stdout
    assert len(pd.read_csv(tmp_path / "history.csv")) == 40


def _divide_by_zero() -> None:
    print(1 / 0)


def test_a_bug_is_one_line_with_the_traceback_kept_in_the_log(capsys):
    assert run_command("svp demo", _divide_by_zero) == 1
    err = capsys.readouterr().err
    traceback, line = err.rstrip("\n").rsplit("\n", 1)
    assert traceback.startswith("Traceback") and "ZeroDivisionError" in traceback
    assert line == (
        "svp demo: error: unexpected ZeroDivisionError: division by zero. This is a bug in svp, not a problem with "
        "your input; the full traceback is above, in this log: please report it with the traceback"
    )


def test_a_bug_on_a_terminal_shows_one_line_and_writes_the_traceback_to_a_file(tmp_path):
    """stderr on a real pseudo-terminal: no traceback on it, only the file it went to."""
    code = "import sys; from svp.command_errors import run_command; sys.exit(run_command('svp demo', lambda: 1 / 0))"
    controller, terminal = pty.openpty()
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-c", code], stderr=terminal, env=environment)
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 30)
        try:
            chunk = os.read(controller, 4096) if ready else b""
        except OSError:  # the terminal closed: the process has ended
            chunk = b""
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(timeout=30) == 1
    text = shown.decode()
    assert "Traceback" not in text and text.count("\n") == 1, text
    (kept,) = tmp_path.glob("svp-demo-*.traceback.txt")
    assert f"the full traceback is in {kept}: please report it" in text
    assert kept.read_text().startswith("Traceback") and "ZeroDivisionError" in kept.read_text()
