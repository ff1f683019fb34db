"""Tests of svp.data: every builder on real files, and torchvision's real download code
run against a local HTTP server that serves tiny archives in the genuine formats."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from svp import data
from svp.cli import main
from svp.data import DataError, load_prepared, prepare_dataset
from svp.data import store

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"
CLOSED_PORT_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens there


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_data_set():
    assert set(data.list_datasets()) == {
        "cifar10",
        "cifar100",
        "svhn",
        "mnist",
        "fashionmnist",
        "npz",
        "image_folder",
        "imagenet",
        "digits",
        "amazon_polarity",
        "amazon_full",
        "imdb",
        "text_csv",
    }


def test_svp_datasets_prints_every_registered_data_set(capsys):
    assert main(["datasets"]) == 0
    assert set(capsys.readouterr().out.splitlines()) == set(data.DATASETS)


def test_unknown_name_names_the_config_key_and_the_choices(tmp_path):
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "imagenet22k"}, tmp_path)
    assert "dataset.name" in str(error.value) and "cifar10" in str(error.value)
    with pytest.raises(DataError, match="dataset.name"):
        prepare_dataset({}, tmp_path)


def test_register_twice_is_refused():
    with pytest.raises(ValueError):
        data.register_dataset("digits")(lambda options: None)


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    return out, prepare_dataset({"name": "digits"}, out)


def test_digits_arrays(digits_dir):
    out, manifest = digits_dir
    (x_train, y_train), (x_test, y_test), loaded = load_prepared(out)
    assert loaded == manifest
    assert x_train.shape == (1347, 8, 8, 1) and x_test.shape == (450, 8, 8, 1)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64 and y_test.dtype == np.int64
    # round(v * 255 / 16) for v in 0..16: 0 and 255 occur, nothing else outside that grid.
    grid = {round(v * 255 / 16) for v in range(17)}
    assert set(np.unique(np.concatenate([x_train, x_test]))) <= grid
    assert x_train.min() == 0 and x_train.max() == 255
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test.npz", "train.npz"]


def test_digits_split_is_stratified(digits_dir):
    from sklearn.datasets import load_digits

    _, manifest = digits_dir
    totals = np.bincount(load_digits().target)
    for digit, total in enumerate(totals):
        test_count = manifest["counts"]["test"][str(digit)]
        assert abs(test_count - 0.25 * total) <= 1
        assert test_count + manifest["counts"]["train"][str(digit)] == total


def test_digits_manifest(digits_dir):
    out, manifest = digits_dir
    (x_train, _), _, _ = load_prepared(out)
    assert manifest["name"] == "digits" and manifest["modality"] == "image"
    assert manifest["classes"] == [str(d) for d in range(10)] and manifest["num_classes"] == 10
    assert manifest["image_shape"] == [8, 8, 1]
    assert sum(manifest["counts"]["train"].values()) == manifest["n_train"] == 1347
    assert sum(manifest["counts"]["test"].values()) == manifest["n_test"] == 450
    assert manifest["augment"] == {"crop_padding": 1, "flip": False}
    assert len(manifest["mean"]) == len(manifest["std"]) == 1
    assert manifest["mean"][0] == pytest.approx(x_train.mean() / 255)
    assert manifest["std"][0] == pytest.approx(x_train.std() / 255)
    assert manifest["checksums"] == {name: sha256_of(out / name) for name in ("train.npz", "test.npz")}
    [(raw_path, raw_sha)] = manifest["source_files"].items()
    assert raw_path.endswith("digits.csv.gz") and raw_sha == sha256_of(Path(raw_path))
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_digits_is_reproducible_to_the_byte(digits_dir, tmp_path):
    _, first = digits_dir
    second = prepare_dataset({"name": "digits"}, tmp_path)
    assert second["checksums"] == first["checksums"]
    assert second == first


def test_options_override_augment_and_split(tmp_path):
    manifest = prepare_dataset({"name": "digits", "test_fraction": 0.5, "crop_padding": 0, "flip": True}, tmp_path)
    assert manifest["augment"] == {"crop_padding": 0, "flip": True}
    assert manifest["n_test"] == 899 and manifest["n_train"] == 898


@pytest.mark.parametrize(
    "options, key",
    [
        ({"test_fraction": 1.5}, "dataset.test_fraction"),
        ({"flip": "yes"}, "dataset.flip"),
        ({"crop_padding": -1}, "dataset.crop_padding"),
    ],
)
def test_bad_option_names_its_key(tmp_path, options, key):
    with pytest.raises(DataError, match=key.replace(".", r"\.")):
        prepare_dataset({"name": "digits", **options}, tmp_path)


def test_load_prepared_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="manifest.json.*prepare"):
        load_prepared(tmp_path)
    prepare_dataset({"name": "digits"}, tmp_path)
    (tmp_path / "train.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="train.npz.*prepare"):
        load_prepared(tmp_path)
    prepare_dataset({"name": "digits"}, tmp_path)
    (tmp_path / "test.npz").unlink()
    with pytest.raises(DataError, match="test.npz.*missing.*prepare"):
        load_prepared(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(DataError, match="manifest.json.*prepare"):
        load_prepared(tmp_path)


def test_failed_write_leaves_no_file_behind(tmp_path):
    def fail_halfway(handle):
        handle.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        store._atomic_write(tmp_path / "train.npz", fail_halfway)
    assert list(tmp_path.iterdir()) == []


def test_written_npz_is_a_plain_uncompressed_npz(tmp_path):
    x = np.arange(2 * 3 * 3 * 1, dtype=np.uint8).reshape(2, 3, 3, 1)
    store._atomic_write(tmp_path / "a.npz", lambda handle: store._write_npz(handle, {"x": x, "y": np.arange(2)}))
    with np.load(tmp_path / "a.npz") as archive:
        np.testing.assert_array_equal(archive["x"], x)
        assert archive.zip.infolist()[0].compress_type == 0  # ZIP_STORED, like np.savez


# --------------------------------------------------------------------------- npz


def write_npz(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def npz_files(tmp_path):
    rng = np.random.default_rng(0)
    parts = [(rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8), rng.integers(0, 3, n)) for n in (7, 5, 6)]
    paths = [write_npz(tmp_path / f"part{i}.npz", x, y) for i, (x, y) in enumerate(parts)]
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\nbird\n")
    return paths, parts, classes


def test_npz_concatenates_in_order(npz_files, tmp_path):
    paths, parts, classes = npz_files
    options = {"name": "npz", "train": [str(paths[0]), str(paths[1])], "test": [str(paths[2])], "classes": str(classes)}
    manifest = prepare_dataset(options, tmp_path / "out")
    (x_train, y_train), (x_test, y_test), _ = load_prepared(tmp_path / "out")
    np.testing.assert_array_equal(x_train, np.concatenate([parts[0][0], parts[1][0]]))
    np.testing.assert_array_equal(y_train, np.concatenate([parts[0][1], parts[1][1]]))
    np.testing.assert_array_equal(x_test, parts[2][0])
    assert y_test.dtype == np.int64
    assert manifest["classes"] == ["cat", "dog", "bird"]
    assert manifest["counts"]["train"]["dog"] == int((y_train == 1).sum())
    assert manifest["augment"] == {"crop_padding": 2, "flip": False}  # 16 px: 16 // 8
    assert manifest["source_files"] == {str(p.resolve()): sha256_of(p) for p in [*paths, classes]}
    assert len(manifest["mean"]) == 3
    np.testing.assert_allclose(manifest["mean"], x_train.reshape(-1, 3).mean(0) / 255)


def test_npz_grey_without_channel_axis_and_default_class_names(tmp_path):
    x = np.zeros((4, 32, 32), dtype=np.uint8)
    path = write_npz(tmp_path / "grey.npz", x, np.array([0, 1, 2, 3], dtype=np.int32))
    manifest = prepare_dataset({"name": "npz", "train": [str(path)], "test": [str(path)], "flip": True}, tmp_path / "o")
    assert manifest["image_shape"] == [32, 32, 1]
    assert manifest["classes"] == ["0", "1", "2", "3"]
    assert manifest["augment"] == {"crop_padding": 4, "flip": True}
    assert manifest["std"] == [pytest.approx(1 / 255)]  # constant images: std floored at one grey level


def test_npz_missing_file_names_the_key_and_path(npz_files, tmp_path):
    paths, _, _ = npz_files
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(DataError) as error:
        prepare_dataset(
            {"name": "npz", "train": [str(paths[0]), str(missing)], "test": [str(paths[1])]}, tmp_path / "o"
        )
    assert "dataset.train" in str(error.value) and str(missing) in str(error.value)
    with pytest.raises(DataError, match="dataset.test"):
        prepare_dataset({"name": "npz", "train": [str(paths[0])]}, tmp_path / "o")


def test_npz_bad_contents_name_the_file(npz_files, tmp_path):
    paths, _, _ = npz_files
    floats = write_npz(tmp_path / "floats.npz", np.zeros((2, 4, 4, 3), np.float32), np.zeros(2, np.int64))
    with pytest.raises(DataError, match=r"floats\.npz.*float32"):
        prepare_dataset({"name": "npz", "train": [str(floats)], "test": [str(paths[0])]}, tmp_path / "o")
    no_labels = tmp_path / "no_labels.npz"
    np.savez(no_labels, x=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(DataError, match=r"no_labels\.npz.*'y'"):
        prepare_dataset({"name": "npz", "train": [str(paths[0])], "test": [str(no_labels)]}, tmp_path / "o")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match=r"garbage\.npz"):
        prepare_dataset({"name": "npz", "train": [str(garbage)], "test": [str(paths[0])]}, tmp_path / "o")


def test_npz_labels_beyond_the_class_list(npz_files, tmp_path):
    paths, _, _ = npz_files
    two = tmp_path / "two.txt"
    two.write_text("cat\ndog\n")
    with pytest.raises(DataError, match="dataset.classes"):
        prepare_dataset(
            {"name": "npz", "train": [str(paths[0])], "test": [str(paths[1])], "classes": str(two)}, tmp_path / "o"
        )


@pytest.mark.shared_data(SHARED_DATA / "cifar10" / "test.npz", SHARED_DATA / "cifar10" / "classes.txt")
def test_npz_real_cifar10_files(tmp_path):
    folder = SHARED_DATA / "cifar10"
    with np.load(folder / "test.npz") as archive:  # LZMA members: np.load reads them
        x, y = archive["x"], archive["y"]
    head = write_npz(tmp_path / "head.npz", x[:200], y[:200])
    options = {
        "name": "npz",
        "train": [str(head)],
        "test": [str(folder / "test.npz")],
        "classes": str(folder / "classes.txt"),
    }
    manifest = prepare_dataset(options, tmp_path / "out")
    assert manifest["n_test"] == 10_000 and manifest["image_shape"] == [32, 32, 3]
    assert set(manifest["counts"]["test"].values()) == {1000}
    assert manifest["classes"][:2] == ["airplane", "automobile"]
    assert manifest["augment"] == {"crop_padding": 4, "flip": False}
    # The checksum the shared data README publishes for this file.
    expected = "d4267cdf36d41ba62292616b0192e7979fdd70232e614a9899c7f155cf928019"
    assert manifest["source_files"][str((folder / "test.npz").resolve())] == expected


# --------------------------------------------------------------------------- image_folder


def write_images(root: Path, split: str, sizes: dict[str, list[tuple[int, int]]], seed: int = 0) -> dict:
    """PNG files root/split/<class>/<i>.png; returns {path: RGB array}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written = {}
    for name, class_sizes in sizes.items():
        (root / split / name).mkdir(parents=True, exist_ok=True)
        for index, (width, height) in enumerate(class_sizes):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            path = root / split / name / f"{index}.png"
            Image.fromarray(pixels).save(path)
            written[path] = pixels
    return written


def test_image_folder_reads_pngs_losslessly(tmp_path):
    train = write_images(tmp_path, "train", {"dog": [(10, 10)] * 3, "cat": [(10, 10)] * 2})
    write_images(tmp_path, "test", {"dog": [(10, 10)], "cat": [(10, 10)]}, seed=1)
    manifest = prepare_dataset({"name": "image_folder", "path": str(tmp_path)}, tmp_path / "out")
    (x_train, y_train), (x_test, _), _ = load_prepared(tmp_path / "out")
    assert manifest["classes"] == ["cat", "dog"]  # sorted sub-folder names, as ImageFolder does
    assert x_train.shape == (5, 10, 10, 3) and x_test.shape == (2, 10, 10, 3)
    np.testing.assert_array_equal(y_train, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(x_train[0], train[tmp_path / "train" / "cat" / "0.png"])
    assert manifest["augment"] == {"crop_padding": 1, "flip": False}
    assert set(manifest["source_files"]) == {str(tmp_path / "train"), str(tmp_path / "test")}


def test_image_folder_resize_and_grey(tmp_path):
    write_images(tmp_path, "train", {"a": [(10, 12), (20, 20)], "b": [(7, 9)]})
    write_images(tmp_path, "test", {"a": [(16, 16)], "b": [(30, 5)]})
    with pytest.raises(DataError, match="dataset.image_size"):
        prepare_dataset({"name": "image_folder", "path": str(tmp_path)}, tmp_path / "out")
    options = {"name": "image_folder", "path": str(tmp_path), "image_size": 12, "channels": 1}
    manifest = prepare_dataset(options, tmp_path / "out")
    assert manifest["image_shape"] == [12, 12, 1] and manifest["n_train"] == 3 and manifest["n_test"] == 2


def test_image_folder_class_lists_must_match(tmp_path):
    write_images(tmp_path, "train", {"a": [(8, 8)], "b": [(8, 8)]})
    write_images(tmp_path, "test", {"a": [(8, 8)], "c": [(8, 8)]})
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "image_folder", "path": str(tmp_path)}, tmp_path / "out")
    assert str(tmp_path / "train") in str(error.value) and str(tmp_path / "test") in str(error.value)


def test_image_folder_missing_folder(tmp_path):
    with pytest.raises(DataError, match="dataset.path"):
        prepare_dataset({"name": "image_folder", "path": str(tmp_path / "none")}, tmp_path / "out")


# --------------------------------------------------------------------------- torchvision data sets
#
# Tiny files in each data set's genuine raw format are served over HTTP on 127.0.0.1
# (torchvision's downloader cannot read file:// URLs: it asks the response for a
# length), and the torchvision classes are pointed at them by patching the class
# attributes they download from: URLs and md5 sums.


# The `server` fixture (a local HTTP server) is in tests/conftest.py.


def _pickle(path: Path, content: dict) -> str:
    # The real batches are Python 2 pickles whose str keys torchvision reads back, with
    # encoding="latin1", as str: Python 3 str keys give torchvision the same objects.
    path.write_bytes(pickle.dumps(content, protocol=2))
    return md5_of(path)


def make_cifar(served: Path, cls, rng, per_batch: int = 20) -> dict:
    """Serve a genuine-format CIFAR archive for ``cls``; patch nothing, return what to patch and expect."""
    is_100 = cls.__name__ == "CIFAR100"
    n_classes, label_key = (100, "fine_labels") if is_100 else (10, "labels")
    build = served.parent / "build"
    batches = build / cls.base_folder
    batches.mkdir(parents=True)
    expected = {"train": [], "test": []}
    members = {}
    names = [name for name, _ in cls.train_list + cls.test_list]
    trained = []
    for name in names:
        images = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        # Test labels come from the training labels: a tested class without a training example is refused.
        labels = rng.choice(trained, per_batch) if name in dict(cls.test_list) else rng.integers(0, n_classes, per_batch)
        labels = labels.tolist()
        trained += labels
        members[name] = _pickle(batches / name, {"data": images, label_key: labels, "batch_label": name})
        split = "test" if name in dict(cls.test_list) else "train"
        expected[split].append((images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels))
    class_names = [f"class{i}" for i in range(n_classes)]
    meta = {cls.meta["key"]: class_names, "num_cases_per_batch": per_batch}
    meta_md5 = _pickle(batches / cls.meta["filename"], meta)
    archive = served / cls.filename
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(batches, arcname=cls.base_folder)
    patches = {
        "tgz_md5": md5_of(archive),
        "train_list": [[name, members[name]] for name, _ in cls.train_list],
        "test_list": [[name, members[name]] for name, _ in cls.test_list],
        "meta": {**cls.meta, "md5": meta_md5},
    }
    arrays = {
        split: (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]))
        for split, parts in expected.items()
    }
    return {"patches": patches, "url_attr": "url", "arrays": arrays, "classes": class_names, "files": [archive]}


def make_svhn(served: Path, cls, rng, n: int = 30) -> dict:
    import scipy.io

    split_list = dict(cls.split_list)
    arrays = {}
    labels = rng.integers(1, 11, (n, 1)).astype(np.uint8)  # 10 stands for the digit 0
    for split in ("train", "test"):
        images = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # SVHN .mat layout: H, W, C, N
        labels = rng.permutation(labels)  # test labels: the training labels, shuffled (every class trained)
        _, filename, _ = cls.split_list[split]
        scipy.io.savemat(served / filename, {"X": images, "y": labels})
        split_list[split] = [None, filename, md5_of(served / filename)]  # URL filled in by the caller
        arrays[split] = (images.transpose(3, 0, 1, 2), np.where(labels[:, 0] == 10, 0, labels[:, 0]))
    return {
        "patches": {"split_list": split_list},
        "url_attr": "split_list",
        "arrays": arrays,
        "classes": [str(d) for d in range(10)],
        "files": [served / cls.split_list[s][1] for s in ("train", "test")],
    }


def _idx_gz(path: Path, array: np.ndarray) -> str:
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0))
    return md5_of(path)


def make_mnist(served: Path, cls, rng, n: int = 12) -> dict:
    arrays, resources = {}, []
    labels = rng.integers(0, 10, n).astype(np.uint8)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.permutation(labels)  # test labels: the training labels, shuffled (every class trained)
        resources.append((f"{prefix}-images-idx3-ubyte.gz", _idx_gz(served / f"{prefix}-images-idx3-ubyte.gz", images)))
        resources.append((f"{prefix}-labels-idx1-ubyte.gz", _idx_gz(served / f"{prefix}-labels-idx1-ubyte.gz", labels)))
        arrays[split] = (images[..., None], labels)
    classes = [str(d) for d in range(10)] if cls.__name__ == "MNIST" else list(cls.classes)
    return {
        "patches": {"resources": resources},
        "url_attr": "mirrors",
        "arrays": arrays,
        "classes": classes,
        "files": [served / name for name, _ in resources],
    }


TORCHVISION_CASES = {
    "cifar10": ("CIFAR10", make_cifar, {"crop_padding": 4, "flip": True}),
    "cifar100": ("CIFAR100", make_cifar, {"crop_padding": 4, "flip": True}),
    "svhn": ("SVHN", make_svhn, {"crop_padding": 4, "flip": False}),
    "mnist": ("MNIST", make_mnist, {"crop_padding": 2, "flip": False}),
    "fashionmnist": ("FashionMNIST", make_mnist, {"crop_padding": 2, "flip": True}),
}


def serve_fake(name: str, served: Path, base_url: str, monkeypatch) -> dict:
    """Write the fake raw files, point the torchvision class at ``base_url``; return the fake."""
    import torchvision.datasets

    class_name, make, _ = TORCHVISION_CASES[name]
    cls = getattr(torchvision.datasets, class_name)
    fake = make(served, cls, np.random.default_rng(0))
    for attribute, value in fake["patches"].items():
        monkeypatch.setattr(cls, attribute, value)
    point_at(cls, fake["url_attr"], base_url, monkeypatch)
    fake["class"] = cls
    return fake


def point_at(cls, url_attr: str, base_url: str, monkeypatch) -> None:
    if url_attr == "url":
        monkeypatch.setattr(cls, "url", base_url + cls.filename)
    elif url_attr == "mirrors":
        monkeypatch.setattr(cls, "mirrors", [base_url])
    else:  # SVHN: [url, filename, md5] per split
        split_list = {split: [base_url + entry[1], entry[1], entry[2]] for split, entry in cls.split_list.items()}
        monkeypatch.setattr(cls, "split_list", split_list)


@pytest.mark.parametrize("name", list(TORCHVISION_CASES))
def test_torchvision_download_verify_extract(name, server, tmp_path, monkeypatch):
    served, base_url = server
    fake = serve_fake(name, served, base_url, monkeypatch)
    root = tmp_path / "root"
    manifest = prepare_dataset({"name": name, "root": str(root), "download": True}, tmp_path / "out")
    (x_train, y_train), (x_test, y_test), _ = load_prepared(tmp_path / "out")
    for (x, y), split in (((x_train, y_train), "train"), ((x_test, y_test), "test")):
        np.testing.assert_array_equal(x, fake["arrays"][split][0])
        np.testing.assert_array_equal(y, fake["arrays"][split][1])
    assert manifest["classes"] == fake["classes"]
    assert manifest["augment"] == TORCHVISION_CASES[name][2]
    assert base_url in manifest["source"]
    # Every served file was downloaded, and its md5 recorded.
    recorded = {Path(path).name: md5 for path, md5 in manifest["source_files"].items()}
    for served_file in fake["files"]:
        assert recorded[served_file.name] == md5_of(served_file)


def test_cifar_uses_local_files_without_network(server, tmp_path, monkeypatch):
    served, base_url = server
    fake = serve_fake("cifar10", served, base_url, monkeypatch)
    cls = fake["class"]
    root = tmp_path / "root"
    root.mkdir()
    (root / cls.filename).write_bytes((served / cls.filename).read_bytes())
    monkeypatch.setattr(cls, "url", CLOSED_PORT_URL + cls.filename)  # any network use would fail
    # An archive placed by hand is extracted by torchvision even with download off...
    first = prepare_dataset({"name": "cifar10", "root": str(root), "download": False}, tmp_path / "a")
    assert (root / cls.base_folder / "data_batch_1").is_file()
    # ... and once extracted, the archive is not needed any more.
    (root / cls.filename).unlink()
    second = prepare_dataset({"name": "cifar10", "root": str(root), "download": True}, tmp_path / "b")
    assert second["checksums"] == first["checksums"]


def test_cifar_corrupt_download_is_reported(server, tmp_path, monkeypatch):
    served, base_url = server
    fake = serve_fake("cifar10", served, base_url, monkeypatch)
    archive = served / fake["class"].filename
    archive.write_bytes(archive.read_bytes()[:-100])  # a truncated transfer
    root = tmp_path / "root"
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "cifar10", "root": str(root), "download": True}, tmp_path / "out")
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and "md5" in message and "corrupt" in message
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_cifar_corrupt_local_archive_without_download(server, tmp_path, monkeypatch):
    served, base_url = server
    fake = serve_fake("cifar10", served, base_url, monkeypatch)
    root = tmp_path / "root"
    root.mkdir()
    (root / fake["class"].filename).write_bytes(b"not an archive")
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz has md5 .* corrupt"):
        prepare_dataset({"name": "cifar10", "root": str(root), "download": False}, tmp_path / "out")


def test_missing_files_without_download_name_file_folder_and_url(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "cifar10", "root": str(root), "download": False}, tmp_path / "out")
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and str(root.resolve()) in message
    assert "c58f30108f718f92721af3b95e74349a" in message  # the real archive's md5
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "dataset.download: true" in message
    assert not root.exists()  # nothing was attempted


def test_mnist_missing_files_name_its_sub_folder(tmp_path):
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "mnist", "root": str(tmp_path), "download": False}, tmp_path / "out")
    assert str(tmp_path / "MNIST" / "raw") in str(error.value)
    assert "train-images-idx3-ubyte.gz" in str(error.value)


def test_unreachable_host_names_file_and_folder(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", CLOSED_PORT_URL + "cifar-10-python.tar.gz")
    root = tmp_path / "root"
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "cifar10", "root": str(root), "download": True}, tmp_path / "out")
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and str(root.resolve()) in message
    assert CLOSED_PORT_URL in message and "unreachable" in message
