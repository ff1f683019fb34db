"""Image data sets read from disk (svp.data.disk, svp.training.disk_data), on a small synthetic
ImageNet-layout tree of real JPEGs (bench/imagenet_tree.py): preparation, the layouts refused,
reading with DataLoader workers, subsets, and bad input."""

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from svp.data import load_labels, load_prepared, load_validation, prepare_dataset
from svp.errors import DataError, StageInputError
from svp.stages import score_run, train_run
from svp.training import disk_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from imagenet_tree import make_tree, wnid  # noqa: E402

TREE = {"classes": 3, "train_per_class": 10, "val_per_class": 3, "min_side": 24, "max_side": 90}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    counts = make_tree(root, **TREE)
    assert counts["png"] == 2 and counts["gray"] + counts["cmyk"] > 0
    return root


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    prepare_dataset({"name": "imagenet", "path": str(tree), "image_size": 16}, out)
    return out


@pytest.fixture
def copy(tree, tmp_path):
    """A copy of the tree a test may damage."""
    root = tmp_path / "tree"
    shutil.copytree(tree, root)
    return root


def test_preparing_lists_the_files_and_copies_nothing(tree, prepared):
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["storage"] == "disk" and manifest["root"] == str(tree)
    assert manifest["n_train"] == 30 and manifest["n_test"] == 9 and manifest["classes"] == [wnid(c) for c in range(3)]
    assert manifest["formats"]["PNG"] == 2 and manifest["image_shape"] == [16, 16, 3] and manifest["resize"] == 18
    assert sum(f.stat().st_size for f in prepared.iterdir()) < 10_000  # lists, not pixels
    (x_train, y_train), (x_test, _), _ = load_prepared(prepared)
    assert x_train.shape == (30, 16, 16, 3) and x_train.paths[0] == f"{wnid(0)}/{wnid(0)}_0.JPEG"
    assert x_test.folder == tree / "val" and list(load_labels(prepared)) == list(y_train) == sorted(y_train)
    widths, heights = x_train.sizes.T
    assert widths.min() >= 16 and widths.max() <= 90 and len(set(zip(widths, heights))) > 20  # sizes and aspect ratios vary


def test_every_image_reads_as_rgb_at_the_input_size_gray_cmyk_and_png_named_jpeg_alike(prepared):
    (x_train, _), _, _ = load_prepared(prepared)
    modes = {}
    from PIL import Image

    evaluation, training = disk_data.DiskImages(x_train, train=False, flip=True), disk_data.DiskImages(x_train, train=True, flip=True)
    for index in range(len(x_train)):
        with Image.open(x_train.folder / x_train.paths[index]) as image:
            modes[f"{image.format} {image.mode}"] = index
        pixels, returned = evaluation[index]
        assert pixels.dtype == torch.uint8 and pixels.shape == (3, 16, 16) and returned == index
        assert training[index][0].shape == (3, 16, 16)
    assert {"PNG RGB", "JPEG RGB"} <= set(modes) and ({"JPEG L", "JPEG CMYK"} & set(modes))
    assert torch.equal(evaluation[0][0], evaluation[0][0])  # un-augmented: the same every time


def _data(prepared, monkeypatch, workers):
    monkeypatch.setenv("SVP_LOADER_WORKERS", str(workers))
    (x, y), _, manifest = load_prepared(prepared)
    return disk_data.DiskImageData.from_split(x, y, manifest, torch.device("cpu"))


def test_a_subset_reads_only_its_files_in_its_order(prepared, monkeypatch):
    from PIL import Image

    data = _data(prepared, monkeypatch, workers=0)  # in this process, so the files opened can be counted
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: opened.append(os.path.basename(path)) or real_open(path, *a, **k))
    subset = torch.tensor([29, 3, 17, 8, 11, 0, 22, 5, 14])  # 30 %
    seen = [index for index, inputs, labels in data.training_batches(subset, 4, {}, torch.Generator().manual_seed(0))]
    assert torch.equal(torch.cat(seen), subset) and len(opened) == 9
    assert sorted(opened) == sorted(os.path.basename(data.split.paths[i]) for i in subset.tolist())


def test_augmented_batches_are_drawn_from_the_runs_generator_across_workers(prepared, monkeypatch):
    data = _data(prepared, monkeypatch, workers=2)
    order = torch.arange(30)

    def epoch(seed, augment=None):
        batches = data.training_batches(order, 8, augment, torch.Generator().manual_seed(seed))
        return torch.cat([inputs for _, inputs, _ in batches])

    first, again, other = epoch(0), epoch(0, {"crop_padding": 0, "flip": False}), epoch(1)
    # Random-resized crops whatever the in-memory augmentation says (a data set that does not flip still crops).
    assert first.shape == (30, 3, 16, 16) and torch.equal(first, again) and not torch.equal(first, other)
    evaluated = torch.cat([inputs for inputs, _ in data.inference_batches(7)])
    assert evaluated.shape == (30, 3, 16, 16) and not torch.equal(evaluated, first)


def test_each_of_two_ranks_reads_its_share_of_every_global_batch_from_disk(prepared, monkeypatch):
    """What `svp train --processes 2` asks data read from disk for: rank r gets positions
    r, r + 2, ... of each global batch of the single process, in order, and an empty batch
    where the last global batch (1 example) leaves it none, so the ranks step together."""
    from svp.training.distributed import Ranks

    data = _data(prepared, monkeypatch, workers=1)
    order = torch.randperm(30, generator=torch.Generator().manual_seed(4))[:25]  # 3 batches of 8, one of 1

    def shares(ranks):
        batches = data.training_batches(order, 8, None, torch.Generator().manual_seed(0), ranks)
        return [(index, inputs, labels) for index, inputs, labels in batches]

    one = shares(Ranks())
    two = [shares(Ranks(rank=rank, world_size=2, local_rank=rank, local_world_size=2)) for rank in range(2)]
    assert len(one) == len(two[0]) == len(two[1]) == 4
    for k, (index, _, labels) in enumerate(one):
        for rank in range(2):
            own_index, own_inputs, own_labels = two[rank][k]
            assert torch.equal(own_index, index[rank::2]) and torch.equal(own_labels, labels[rank::2]), (k, rank)
            assert own_inputs.shape == (len(own_index), 3, 16, 16)
    assert [len(index) for index, _, _ in two[1]] == [4, 4, 4, 0]  # the last share is empty, not missing


def test_a_model_trains_and_scores_on_data_read_from_disk_through_the_stages(prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("SVP_LOADER_WORKERS", "1")
    subset = tmp_path / "subset.parquet"
    import pandas as pd

    pd.DataFrame({"index": np.arange(0, 30, 3), "label": load_labels(prepared)[::3]}).to_parquet(subset)
    training = {"batch_size": 8, "lr_schedule": [{"epochs": 2, "lr": 0.05}], "eval_every": 1}
    metrics = train_run(
        model_name="small_cnn", training=training, seed=0, data_dir=prepared, subset=subset, model_out=tmp_path / "model.pt",
        history_out=tmp_path / "history.csv", metrics_out=tmp_path / "metrics.json", threads=1,
    )
    assert metrics["n_train"] == 10 and np.isfinite(metrics["test_error"])
    assert score_run(checkpoint=tmp_path / "model.pt", data_dir=prepared, scores_out=tmp_path / "scores.parquet", threads=1) == 30
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(scores) == 30 and list(scores["label"]) == list(load_labels(prepared))
    score_run(checkpoint=tmp_path / "model.pt", data_dir=prepared, scores_out=tmp_path / "again.parquet", threads=1)
    again = pd.read_parquet(tmp_path / "again.parquet")
    assert np.array_equal(scores["entropy"], again["entropy"])  # centre crops: scoring is deterministic


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: [shutil.move(str(p), str(r / "val")) for p in (r / "val").glob("*/*.JPEG")], "holds 9 images directly (e.g. ILSVRC2012_val_"),
        (lambda r: shutil.rmtree(r / "val"), "/val is missing"),
        (lambda r: (r / "train" / "cats").mkdir(), "has folders not named by a WordNet id: cats"),
        (lambda r: (r / "train" / "n09999999.tar").write_bytes(b""), "per-class archives (e.g. n09999999.tar): extract each"),
    ],
)
def test_a_tree_not_laid_out_as_ilsvrc2012_is_refused_saying_how_to_lay_it_out(copy, tmp_path, damage, message):
    damage(copy)
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "imagenet", "path": str(copy)}, tmp_path / "out")
    assert message in str(error.value) and "torchvision.datasets.ImageNet(path, split='val')" in str(error.value)


def test_unreadable_images_stop_preparation_or_are_skipped_counted_and_logged(copy, tmp_path, capsys):
    corrupt = copy / "train" / wnid(1) / f"{wnid(1)}_4.JPEG"
    corrupt.write_bytes(os.urandom(500))
    (copy / "train" / wnid(2) / "empty.jpg").write_bytes(b"")
    options = {"name": "imagenet", "path": str(copy), "image_size": 16}
    with pytest.raises(DataError, match=r"2 of the 31 images in .*/train cannot be read: .*empty\.jpg: not an image Pillow can read.*skip_bad_images: true"):
        prepare_dataset(options, tmp_path / "out")
    manifest = prepare_dataset({**options, "skip_bad_images": True}, tmp_path / "out")
    assert manifest["n_train"] == 29 and len(manifest["skipped"]["train"]) == 2
    assert f"skipped {corrupt}: not an image Pillow can read" in capsys.readouterr().out
    load_prepared(tmp_path / "out")  # the skipped files are part of the listing: no change found


def test_a_truncated_jpeg_is_found_by_decoding_or_named_when_training_meets_it(copy, tmp_path, monkeypatch):
    monkeypatch.setenv("SVP_LOADER_WORKERS", "2")
    path = copy / "train" / wnid(0) / f"{wnid(0)}_3.JPEG"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    options = {"name": "imagenet", "path": str(copy), "image_size": 16}
    prepare_dataset(options, tmp_path / "headers")  # its header is whole
    with pytest.raises(DataError, match=r"1 of the 30 images .*_3\.JPEG: cannot be decoded \(image file is truncated"):
        prepare_dataset({**options, "check_images": "decode"}, tmp_path / "decoded")
    (x, y), _, manifest = load_prepared(tmp_path / "headers")
    data = disk_data.DiskImageData.from_split(x, y, manifest, torch.device("cpu"))
    with pytest.raises(DataError) as error:
        list(data.inference_batches(8))
    assert str(error.value).startswith(f"{path}: cannot be decoded (image file is truncated") and "\n" not in str(error.value)


def test_a_file_deleted_or_a_class_folder_added_after_preparation_is_named_before_reading(copy, tmp_path):
    prepare_dataset({"name": "imagenet", "path": str(copy), "image_size": 16}, tmp_path / "out")
    (copy / "train" / wnid(2) / f"{wnid(2)}_7.JPEG").unlink()
    with pytest.raises(DataError, match=rf"the images changed since the data set was prepared: 1 file\(s\) gone \({wnid(2)}/{wnid(2)}_7\.JPEG\).*--forcerun prepare_data"):
        load_prepared(tmp_path / "out")
    prepare_dataset({"name": "imagenet", "path": str(copy), "image_size": 16}, tmp_path / "out")
    shutil.copytree(copy / "train" / wnid(0), copy / "train" / "n09999999")
    with pytest.raises(DataError, match=r"class folder\(s\) added \(n09999999\)"):
        load_prepared(tmp_path / "out")


def test_an_empty_class_folder_is_refused(copy, tmp_path):
    for image in (copy / "val" / wnid(1)).iterdir():
        image.unlink()
    with pytest.raises(DataError, match=rf"/val/{wnid(1)}: an empty class folder .*add its images, or remove the folder"):
        prepare_dataset({"name": "imagenet", "path": str(copy)}, tmp_path / "out")


def test_class_names_that_sort_apart_from_their_paths_keep_the_prepared_listing(tmp_path):
    """Labels follow the sorted class names (n01 before n01-a, as ImageFolder's), while the listing's
    digest, computed a class at a time, is that of the sorted paths (n01-a/... before n01/...):
    the two orders differ here, and a job reading the prepared data finds the folder unchanged."""
    import hashlib

    from svp.data.disk import list_split

    def listing_digest(paths):  # the definition: sha256 of the sorted paths, each ended by a NUL
        return hashlib.sha256(b"".join(path.encode("utf-8") + b"\0" for path in sorted(paths))).hexdigest()


    make_tree(tmp_path / "tree", classes=2, train_per_class=2, val_per_class=1, min_side=16, max_side=24)
    (tmp_path / "tree" / "val").rename(tmp_path / "tree" / "test")  # an image_folder's layout
    for split in ("train", "test"):
        folders = sorted((tmp_path / "tree" / split).iterdir())
        folders[0].rename(folders[0].parent / "n01")
        folders[1].rename(folders[1].parent / "n01-a")
    classes, paths, labels, digest = list_split(tmp_path / "tree" / "train")
    assert classes == ["n01", "n01-a"] and list(labels) == [0, 0, 1, 1] and paths[0].startswith("n01/")
    assert digest == listing_digest(paths) and sorted(paths)[0].startswith("n01-a/")
    prepare_dataset({"name": "image_folder", "path": str(tmp_path / "tree"), "image_size": 16, "storage": "disk"}, tmp_path / "out")
    (x_train, y_train), _, _ = load_prepared(tmp_path / "out")
    assert list(x_train.paths) == list(paths) and list(y_train) == [0, 0, 1, 1]


def test_a_file_name_that_is_not_utf8_is_refused_naming_it(copy, tmp_path):
    os.rename(copy / "train" / wnid(1) / f"{wnid(1)}_3.JPEG", os.fsencode(copy / "train" / wnid(1)) + b"/caf\xe9.JPEG")
    with pytest.raises(DataError, match=rf"/train/{wnid(1)}/caf\ufffd.JPEG: a file or folder name that is not UTF-8 .*rename it"):
        prepare_dataset({"name": "imagenet", "path": str(copy)}, tmp_path / "out")


@pytest.mark.parametrize(
    "damage",
    [
        lambda a: {**a, "path_ends": a["path_ends"][:-1]},  # the last path's bytes unaccounted for
        lambda a: {**a, "path_ends": a["path_ends"][::-1].copy()},  # ends out of order
        lambda a: {**a, "path_ends": a["path_ends"].astype(np.int32)},
        lambda a: {**a, "path_bytes": np.concatenate([[0xC3], a["path_bytes"][1:]]).astype(np.uint8)},  # not UTF-8
        # A two-byte character split across two paths: the whole decodes, the second path does not.
        lambda a: {**a, "path_bytes": np.concatenate([a["path_bytes"][: a["path_ends"][0] - 1], [0xC3, 0xA9],
                                                      a["path_bytes"][a["path_ends"][0] + 1 :]]).astype(np.uint8)},
    ],
)
def test_a_damaged_file_list_is_refused_before_any_worker_reads_it(prepared, damage):
    from svp.data.disk import paths_of

    with np.load(prepared / "train.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    assert len(paths_of(arrays, Path("train.npz"), "hint")) == 30
    with pytest.raises(DataError, match=r"train.npz: not a disk data set's file list \(inconsistent path_bytes and path_ends\); hint"):
        paths_of(damage(arrays), Path("train.npz"), "hint")


def test_a_reader_process_that_dies_is_reported_not_a_traceback(prepared, monkeypatch):
    data = _data(prepared, monkeypatch, workers=1)
    monkeypatch.setattr(disk_data.DiskImages, "__getitem__", lambda self, i: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(StageInputError, match=r"a process reading the images died .*SVP_LOADER_WORKERS"):
        list(data.inference_batches(8))


def test_image_folder_picks_memory_or_disk_and_the_config_can_force_either(copy, tmp_path):
    (copy / "val").rename(copy / "test")
    options = {"name": "image_folder", "path": str(copy), "image_size": 16}
    assert "storage" not in prepare_dataset(options, tmp_path / "auto")  # 39 small images: memory
    assert prepare_dataset({**options, "storage": "disk"}, tmp_path / "disk")["storage"] == "disk"
    with pytest.raises(DataError, match="only for images read from disk"):
        prepare_dataset({**options, "storage": "memory", "skip_bad_images": True}, tmp_path / "memory")


# --------------------------------------------------------------------------- with a validation split


@pytest.fixture(scope="module")
def prepared_with_validation(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared_validation")
    prepare_dataset({"name": "imagenet", "path": str(tree), "image_size": 16, "validation": 0.2}, out)
    return out


def test_a_validation_split_of_disk_data_is_a_share_of_the_training_list(tree, prepared, prepared_with_validation):
    """dataset.validation on images read from disk: 2 of each class's 10 training images listed
    in validation.npz, out of train.npz, the files left where they are; the test split untouched."""
    manifest = json.loads((prepared_with_validation / "manifest.json").read_text())
    assert manifest["n_train"] == 24 and manifest["n_validation"] == 6 and manifest["n_test"] == 9
    assert manifest["validation"]["share"] == 0.2 and set(manifest["counts"]["validation"].values()) == {2}
    assert "validation.npz" in manifest["checksums"] and sum(f.stat().st_size for f in prepared_with_validation.iterdir()) < 10_000
    (x_train, y_train), (x_test, _), _ = load_prepared(prepared_with_validation)
    x_held, y_held = load_validation(prepared_with_validation)
    (x_all, y_all), _, _ = load_prepared(prepared)
    assert x_held.folder == x_train.folder == tree / "train" and list(x_test.paths) == list(load_prepared(prepared)[1][0].paths)
    assert not set(x_held.paths) & set(x_train.paths) and set(x_held.paths) | set(x_train.paths) == set(x_all.paths)
    # Labels and sizes travel with their paths.
    row = {path: (label, tuple(size)) for path, label, size in zip(x_all.paths, y_all, x_all.sizes)}
    for x, y in ((x_train, y_train), (x_held, y_held)):
        assert [row[path] for path in x.paths] == [(label, tuple(size)) for label, size in zip(y, x.sizes)]
    assert list(load_labels(prepared_with_validation)) == list(y_train)  # what a random selection draws from


def test_an_image_folders_statistics_come_from_its_training_images_only(copy, tmp_path):
    from svp.data.disk import _channel_statistics

    (copy / "val").rename(copy / "test")
    options = {"name": "image_folder", "path": str(copy), "image_size": 16, "storage": "disk"}
    manifest = prepare_dataset({**options, "validation": 0.3}, tmp_path / "out")
    (x_train, _), _, _ = load_prepared(tmp_path / "out")
    x_held, _ = load_validation(tmp_path / "out")
    assert len(x_train) == 21 and len(x_held) == 9
    assert (manifest["mean"], manifest["std"]) == _channel_statistics(copy / "train", x_train.paths, 16)
    everything = _channel_statistics(copy / "train", sorted([*x_train.paths, *x_held.paths]), 16)
    assert manifest["mean"] != everything[0]  # the held-out images would have moved it


def test_a_run_on_disk_data_reports_its_validation_error_and_never_trains_or_scores_on_it(prepared_with_validation, tmp_path, monkeypatch):
    from svp.stages import read_model_checkpoint
    from svp.trainers import torch_trainer
    from svp.trainers.base import ScoringJob

    monkeypatch.setenv("SVP_LOADER_WORKERS", "0")
    opened = []
    original = disk_data.DiskImages.__getitem__
    monkeypatch.setattr(disk_data.DiskImages, "__getitem__", lambda self, i: opened.append((self.split.paths[i], self.transform)) or original(self, i))
    training = {"batch_size": 8, "lr_schedule": [{"epochs": 2, "lr": 0.05}], "eval_every": 0}
    metrics = train_run(
        model_name="small_cnn", training=training, seed=0, data_dir=prepared_with_validation, model_out=tmp_path / "model.pt",
        history_out=tmp_path / "history.csv", metrics_out=tmp_path / "metrics.json", threads=1,
    )
    x_held, y_held = load_validation(prepared_with_validation)
    (x_train, _), _, manifest = load_prepared(prepared_with_validation)
    trained = {path for path, transform in opened if "RandomResizedCrop" in repr(transform)}
    evaluated = [path for path, transform in opened if "CenterCrop" in repr(transform)]
    assert trained == set(x_train.paths) and not trained & set(x_held.paths)
    assert metrics["n_train"] == 24 and 0.0 <= metrics["validation_error"] <= 100.0
    assert set(x_held.paths) <= set(evaluated)  # evaluated once, un-augmented, for its error
    job = ScoringJob(checkpoint=read_model_checkpoint(tmp_path / "model.pt"), checkpoint_path=tmp_path / "model.pt",
                     train=(x_held, y_held), manifest=manifest, data_dir=prepared_with_validation, batch_size=4, workdir=tmp_path)
    predictions = torch_trainer.predict(job)
    assert metrics["validation_error"] == pytest.approx(100.0 * np.mean(predictions.outputs.argmax(1) != y_held))
    scored = score_run(checkpoint=tmp_path / "model.pt", data_dir=prepared_with_validation, scores_out=tmp_path / "s.parquet", threads=1)
    assert scored == len(pd.read_parquet(tmp_path / "s.parquet")) == 24  # the training list only: never scored, so never selected


def test_a_change_to_the_training_folder_is_told_against_both_lists(prepared_with_validation, tree, tmp_path):
    """A held-out file deleted is named as gone (not silently ignored), and the validation list's
    files are not taken for added ones, whichever split is read."""
    copied = tmp_path / "tree"
    shutil.copytree(tree, copied)
    out = tmp_path / "out"
    prepare_dataset({"name": "imagenet", "path": str(copied), "image_size": 16, "validation": 0.2}, out)
    held = load_validation(out)[0].paths[0]
    (copied / "train" / held).unlink()
    for read in (load_prepared, load_validation):
        with pytest.raises(DataError) as error:
            read(out)
        assert f"1 file(s) gone ({held})" in str(error.value) and "added" not in str(error.value)


def test_a_validation_share_leaving_a_class_empty_is_refused_naming_the_key(tree, tmp_path):
    with pytest.raises(DataError, match=r"config key dataset.validation: 0.95 leaves class 'n0100000\d'"):
        prepare_dataset({"name": "imagenet", "path": str(tree), "image_size": 16, "validation": 0.95}, tmp_path / "out")


def test_steps_on_disk_data_take_the_full_runs_steps_and_read_only_the_last_partial_passs_files(prepared, tmp_path, monkeypatch):
    """training.length: steps on images read from disk: a subset of 18 of the 30 training images,
    batches of 8, trains for the full data's 4 x 2 = 8 steps: passes of 3, 3 and 2 batches, the
    last one opening the 16 files it trains on, not all 18; the rate stretched per step."""
    import pandas as pd

    from svp.training import loop

    monkeypatch.setenv("SVP_LOADER_WORKERS", "0")
    opened = []
    original = disk_data.DiskImages.__getitem__
    monkeypatch.setattr(disk_data.DiskImages, "__getitem__", _recorder(original, opened))
    rates = []
    real_sgd = loop.sgd

    def recording_sgd(model, settings):
        optimizer, step = real_sgd(model, settings)
        return optimizer, lambda: (rates.append(optimizer.param_groups[0]["lr"]), step())

    monkeypatch.setattr(loop, "sgd", recording_sgd)
    subset = tmp_path / "subset.parquet"
    labels = load_labels(prepared)
    pd.DataFrame({"index": np.arange(18), "label": labels[:18]}).to_parquet(subset)
    training = {"batch_size": 8, "lr_schedule": [{"epochs": 1, "lr": 0.1}, {"epochs": 1, "lr": 0.01}], "eval_every": 0, "length": "steps"}
    metrics = train_run(
        model_name="small_cnn", training=training, seed=0, data_dir=prepared, subset=subset, model_out=tmp_path / "model.pt",
        history_out=tmp_path / "history.csv", metrics_out=tmp_path / "metrics.json", threads=1,
    )
    history = pd.read_csv(tmp_path / "history.csv")
    assert metrics["steps"] == 8 and metrics["training_length"] == "steps" and list(history["steps"]) == [3, 6, 8]
    assert rates == [0.1] * 4 + [0.01] * 4  # the full run's first epoch ends at step 4, here within the second pass
    passes = [opened[:18], opened[18:36], opened[36:]]
    assert len(opened) == 52 and all(set(p) <= set(range(18)) for p in passes)
    assert len(set(passes[0])) == 18 and len(set(passes[2])) == 16


def _recorder(original, opened):
    """DiskImages.__getitem__ that records the training reads (random-resized crops) it serves."""

    def getitem(self, index):
        if any(type(step).__name__ == "RandomResizedCrop" for step in self.transform.transforms):
            opened.append(index)
        return original(self, index)

    return getitem


@pytest.mark.parametrize("key", ["root", "split_folders", "listings"])
def test_a_disk_manifest_edited_is_refused_naming_the_file_not_a_key_error(prepared_with_validation, tmp_path, key):
    out = tmp_path / "out"
    shutil.copytree(prepared_with_validation, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.pop(key)
    (out / "manifest.json").write_text(json.dumps(manifest))
    for read in (load_prepared, load_validation):
        with pytest.raises(DataError, match=rf"manifest.json: the top level: '{key}' is a required property. The file was edited or damaged"):
            read(out)


def test_a_missing_validation_list_is_named(prepared_with_validation, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(prepared_with_validation, out)
    (out / "validation.npz").unlink()
    with pytest.raises(DataError, match=r"validation.npz: missing; rerun the prepare step"):
        load_validation(out)
