"""The IMDB data set through its real download, md5 check, extraction and reading code,
against a local HTTP server serving a tiny archive in Maas et al.'s genuine layout."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from svp.data import text
from svp.config import ConfigError, known_training_set, validate_config
from svp.data import DataError, load_prepared, prepare_dataset

CLOSED_PORT_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens there
SHARED_IMDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb"
PER_CLASS = {"train": 4, "test": 3}
IMDB_CONFIG = Path(__file__).resolve().parents[1] / "config" / "imdb.yaml"


# The `server` fixture (a local HTTP server) is in tests/conftest.py.


def review(split: str, label: str, review_id: int) -> str:
    # Non-ASCII and the archive's <br /> tags, as in the real reviews.
    return f"{split} {label} review {review_id}: un café<br /><br />the end"


def genuine_members() -> dict[str, bytes]:
    """aclImdb's layout: labelled reviews, plus what svp must skip (unsup, bag-of-words files, README)."""
    ratings = {"neg": [1, 2, 3, 4], "pos": [7, 8, 9, 10]}
    members = {"aclImdb/README": b"Large Movie Review Dataset v1.0\n", "aclImdb/imdb.vocab": b"the\nand\n"}
    for split, count in PER_CLASS.items():
        members[f"aclImdb/{split}/labeledBow.feat"] = b"9 0:9 1:1\n"
        members[f"aclImdb/{split}/urls_pos.txt"] = b"http://www.imdb.com/title/tt0453418/usercomments\n"
        for label in ("neg", "pos"):
            # Ids 0..count-2 and 10: "10_x.txt" sorts before "2_x.txt" as text but after it as a number.
            for index, review_id in enumerate([*range(count - 1), 10]):
                name = f"aclImdb/{split}/{label}/{review_id}_{ratings[label][index % 4]}.txt"
                members[name] = review(split, label, review_id).encode("utf-8")
    members["aclImdb/train/unsup/0_0.txt"] = b"an unlabelled review"
    return members


def make_archive(path: Path, members: dict[str, bytes], reverse: bool = False) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name in sorted(members, reverse=reverse):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            tar.addfile(info, io.BytesIO(members[name]))


def serve_archive(served: Path, base_url: str, monkeypatch, members=None, reverse=False) -> Path:
    """Serve a tiny aclImdb_v1.tar.gz and point the data set's URL and md5 at it."""
    archive = served / text.IMDB_ARCHIVE.name
    make_archive(archive, genuine_members() if members is None else members, reverse)
    patch_archive(monkeypatch, base_url + archive.name, hashlib.md5(archive.read_bytes()).hexdigest())
    return archive


def patch_archive(monkeypatch, url: str, md5: str) -> None:
    monkeypatch.setattr(text, "IMDB_ARCHIVE", text.RawFile(text.IMDB_ARCHIVE.name, md5, (url,)))
    monkeypatch.setattr(text, "IMDB_REVIEWS_PER_CLASS", dict(PER_CLASS))


def expected_order(split: str) -> list[tuple[int, int]]:
    """(label, id) of a split in the documented order: sorted by (label, id), then random.Random(0).shuffle."""
    rows = [(label, review_id) for label in (0, 1) for review_id in [*range(PER_CLASS[split] - 1), 10]]
    random.Random(0).shuffle(rows)
    return rows


def test_download_check_extract_and_read(server, tmp_path, monkeypatch):
    served, base_url = server
    archive = serve_archive(served, base_url, monkeypatch)
    root = tmp_path / "root"
    manifest = prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out")
    (texts, y), (test_texts, test_y), _ = load_prepared(tmp_path / "out")

    assert manifest["modality"] == "text" and manifest["classes"] == ["negative", "positive"]
    assert manifest["counts"]["train"] == {"negative": 4, "positive": 4}
    for split, got_texts, got_y in (("train", texts, y), ("test", test_texts, test_y)):
        order = expected_order(split)
        assert got_y.tolist() == [label for label, _ in order]  # neg -> 0, pos -> 1
        assert got_texts.strings() == [review(split, ("neg", "pos")[label], i) for label, i in order]
    # Only the labelled reviews were extracted: unsup, the bag-of-words files and README skipped.
    assert sorted(p.name for p in (root / "aclImdb").iterdir()) == ["test", "train"]
    assert sorted(p.name for p in (root / "aclImdb" / "train").iterdir()) == ["neg", "pos"]
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no temporary left
    assert manifest["source_files"][str(root / archive.name)] == hashlib.md5(archive.read_bytes()).hexdigest()
    read_folders = [str(root / "aclImdb" / split) for split in PER_CLASS]
    assert set(manifest["source_files"]) == {str(root / archive.name), *read_folders}
    assert base_url in manifest["source"] and "random.Random(0)" in manifest["source"]

    # Extracted once: later runs need neither the archive nor the network, and read the same.
    (root / archive.name).unlink()
    patch_archive(monkeypatch, CLOSED_PORT_URL + archive.name, text.IMDB_ARCHIVE.md5)
    again = prepare_dataset({"name": "imdb", "root": str(root), "download": False}, tmp_path / "again")
    assert again["checksums"] == manifest["checksums"]


def test_order_does_not_depend_on_the_archive_order(server, tmp_path, monkeypatch):
    served, base_url = server
    serve_archive(served, base_url, monkeypatch)
    first = prepare_dataset({"name": "imdb", "root": str(tmp_path / "a")}, tmp_path / "out-a")
    serve_archive(served, base_url, monkeypatch, reverse=True)
    second = prepare_dataset({"name": "imdb", "root": str(tmp_path / "b")}, tmp_path / "out-b")
    assert first["checksums"] == second["checksums"]


def test_archive_in_root_is_used_without_download(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    archive = root / text.IMDB_ARCHIVE.name
    make_archive(archive, genuine_members())
    # An unreachable URL: any attempt to download would fail the test.
    patch_archive(monkeypatch, CLOSED_PORT_URL + archive.name, hashlib.md5(archive.read_bytes()).hexdigest())
    manifest = prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out")
    assert manifest["n_train"] == 8 and manifest["n_test"] == 6


def test_row_limits_take_the_first_reviews_of_the_shuffled_order(server, tmp_path, monkeypatch):
    served, base_url = server
    serve_archive(served, base_url, monkeypatch)
    options = {"name": "imdb", "root": str(tmp_path / "root"), "train_rows": 5, "test_rows": 2}
    manifest = prepare_dataset(options, tmp_path / "out")
    (texts, y), (test_texts, test_y), _ = load_prepared(tmp_path / "out")
    assert manifest["n_train"] == 5 and manifest["n_test"] == 2
    assert y.tolist() == [label for label, _ in expected_order("train")[:5]]
    assert test_texts.strings() == [review("test", ("neg", "pos")[c], i) for c, i in expected_order("test")[:2]]
    assert "first 5 train reviews, first 2 test reviews" in manifest["source"]


def test_corrupt_download_is_refused_and_not_kept(server, tmp_path, monkeypatch):
    served, base_url = server
    archive = serve_archive(served, base_url, monkeypatch)
    archive.write_bytes(archive.read_bytes()[:-50])  # a truncated transfer
    root = tmp_path / "root"
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out")
    message = str(error.value)
    assert f"downloaded from {base_url}aclImdb_v1.tar.gz has md5" in message
    assert f"expected {text.IMDB_ARCHIVE.md5}" in message and "text_csv" in message
    assert list(root.iterdir()) == []  # neither the archive nor a temporary file
    assert not (tmp_path / "out").exists()


def test_corrupt_archive_in_root_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    (root / text.IMDB_ARCHIVE.name).write_bytes(b"not the archive")
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "imdb", "root": str(root), "download": False}, tmp_path / "out")
    message = str(error.value)
    assert f"{root / 'aclImdb_v1.tar.gz'} has md5 " in message
    assert "expected 7c2ac02c03563afcf9b574c7e56c153a" in message
    assert "delete it and rerun" in message


@pytest.mark.parametrize(
    "bad_member",
    [
        "../escaped.txt",
        "aclImdb/train/pos/../../../../escaped.txt",
        "link",  # a symbolic link to a file outside the folder
    ],
)
def test_archive_with_a_member_escaping_the_folder_is_refused(server, tmp_path, monkeypatch, bad_member):
    served, base_url = server
    archive = served / text.IMDB_ARCHIVE.name
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in genuine_members().items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        info = tarfile.TarInfo(bad_member if bad_member != "link" else "aclImdb/unsup/link.txt")
        if bad_member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, str(tmp_path / "secret.txt")
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    patch_archive(monkeypatch, base_url + archive.name, hashlib.md5(archive.read_bytes()).hexdigest())
    root = tmp_path / "deep" / "root"
    with pytest.raises(DataError, match=r"would be written outside .* refuses to extract it"):
        prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert sorted(p.name for p in root.iterdir()) == ["aclImdb_v1.tar.gz"]  # no aclImdb/, no temporary


def test_archive_with_another_layout_is_refused(server, tmp_path, monkeypatch):
    served, base_url = server
    serve_archive(served, base_url, monkeypatch, members={"imdb/train/neg/0_1.txt": b"bad"})
    with pytest.raises(DataError, match=r"holds no review files in \['aclImdb/train/neg'"):
        prepare_dataset({"name": "imdb", "root": str(tmp_path / "root")}, tmp_path / "out")
    assert not (tmp_path / "root" / "aclImdb").exists()


def test_changed_folder_is_refused_with_the_file(server, tmp_path, monkeypatch):
    served, base_url = server
    serve_archive(served, base_url, monkeypatch)
    root = tmp_path / "root"
    prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out")
    pos = root / "aclImdb" / "train" / "pos"
    (pos / "0_7.txt").unlink()
    with pytest.raises(DataError, match=r"train/pos: 3 reviews, but Maas et al\.'s train split has 4 pos"):
        prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out2")
    (pos / "0_3.txt").write_text("a negative rating among the positive reviews")
    with pytest.raises(DataError, match=r"0_3\.txt: rated 3, but the pos reviews are rated 7 to 10"):
        prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out2")
    (pos / "0_3.txt").rename(pos / "notes.md")
    with pytest.raises(DataError, match=r"notes\.md: not a review file"):
        prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out2")
    (pos / "notes.md").unlink()
    (pos / "0_7.txt").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(DataError, match=r"0_7\.txt: not valid UTF-8"):
        prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out2")


def test_missing_archive_without_download_says_how_to_get_it(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "imdb", "root": str(root), "download": False}, tmp_path / "out")
    message = str(error.value)
    assert "aclImdb_v1.tar.gz" in message and "7c2ac02c03563afcf9b574c7e56c153a" in message
    assert text.IMDB_URL in message and str(root.resolve()) in message
    assert "name: text_csv" in message and "config/imdb.yaml" in message and "dataset.download: true" in message
    assert not root.exists()  # nothing was attempted


def test_unreachable_host_says_how_to_get_the_file(tmp_path, monkeypatch):
    patch_archive(monkeypatch, CLOSED_PORT_URL + "aclImdb_v1.tar.gz", text.IMDB_MD5)
    root = tmp_path / "root"
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out")
    message = str(error.value)
    assert f"could not download {CLOSED_PORT_URL}aclImdb_v1.tar.gz" in message
    assert f"put aclImdb_v1.tar.gz (md5 {text.IMDB_MD5}" in message and str(root.resolve()) in message
    assert "name: text_csv" in message
    assert list(root.iterdir()) == []  # no partial download left


def test_the_recorded_source_is_the_published_one():
    # Maas et al.'s page; the md5 torchtext's IMDB (MD5) and PaddlePaddle's Imdb check.
    assert text.IMDB_URL == "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    assert text.IMDB_MD5 == "7c2ac02c03563afcf9b574c7e56c153a"
    assert text.IMDB_ARCHIVE.name == "aclImdb_v1.tar.gz" and text.IMDB_ARCHIVE.md5 == text.IMDB_MD5
    assert text.IMDB_REVIEWS_PER_CLASS == {"train": 12_500, "test": 12_500}


def test_config_accepts_the_download_and_row_keys_only():
    config = yaml.safe_load(IMDB_CONFIG.read_text())
    config["dataset"] = {"name": "imdb", "root": "data", "download": False, "train_rows": 3000, "test_rows": 2000}
    assert validate_config(config)["dataset"]["name"] == "imdb"
    assert known_training_set({"name": "imdb", "train_rows": 3000}) == (3000, 2)
    config["dataset"] = {"name": "imdb", "label_column": "label"}
    with pytest.raises(ConfigError, match=r"'dataset.label_column': data set 'imdb' does not use it"):
        validate_config(config)


def test_the_commented_example_in_config_imdb_yaml_is_valid():
    lines = IMDB_CONFIG.read_text().splitlines()
    start = lines.index("# dataset:")
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        block.append(line)
    example = yaml.safe_load("\n".join(line[2:] for line in block))
    assert example["dataset"]["name"] == "imdb"
    config = yaml.safe_load(IMDB_CONFIG.read_text())
    assert config["dataset"]["name"] == "text_csv"  # the shipped default stays the CSV copy
    config.update(example)
    assert validate_config(config)["dataset"] == {**example["dataset"], "download": True}


@pytest.mark.skipif(
    not (SHARED_IMDB / "train.csv.gz").is_file(),
    reason="needs ../shared/data/imdb/train.csv.gz to compare the order with the CSV copy's",
)
def test_labels_in_the_same_order_as_the_shared_csv_copy(tmp_path, monkeypatch):
    """A full-size training folder (12,500 empty-ish reviews per class) gets the CSV copy's label sequence.

    That copy was sorted by (label, id) and shuffled with random.Random(0) per split; the
    same recipe here makes `train_rows: N` take reviews of the same labels in both.
    """
    for label, rating in (("neg", 1), ("pos", 10)):
        folder = tmp_path / "aclImdb" / "train" / label
        folder.mkdir(parents=True)
        for review_id in range(12_500):
            (folder / f"{review_id}_{rating}.txt").write_text(label)
    _, y, _ = text._read_imdb_split("train", tmp_path, None)
    with gzip.open(SHARED_IMDB / "train.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        csv.field_size_limit(text.MAX_TEXT_CHARACTERS)  # what svp reads CSVs with
        rows = csv.reader(handle)
        next(rows)
        csv_labels = np.array([int(row[0]) for row in rows], dtype=np.int64)
    assert np.array_equal(y, csv_labels)


def test_the_prepare_command_reports_a_missing_archive_without_a_traceback(tmp_path, capsys):
    """What the workflow's prepare rule runs: exit status 2, svp's message, no manifest."""
    from svp.cli import main

    dataset = {"name": "imdb", "root": str(tmp_path / "data"), "download": False}
    out = tmp_path / "prepared"
    status = main(["prepare", "--dataset", json.dumps(dataset), "--out-dir", str(out)])
    message = capsys.readouterr().err
    assert status == 2 and message.startswith("svp prepare: error: data set 'imdb'") and "Traceback" not in message
    assert "aclImdb_v1.tar.gz" in message and "name: text_csv" in message
    assert not (out / "manifest.json").exists()


def test_a_python_without_tarfiles_data_filter_is_told_what_to_do(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    archive = root / text.IMDB_ARCHIVE.name
    make_archive(archive, genuine_members())
    patch_archive(monkeypatch, CLOSED_PORT_URL + archive.name, hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.delattr(tarfile, "data_filter")  # as in Python 3.11.0 to 3.11.3
    with pytest.raises(DataError, match=r"needs tarfile's data filter.*use Python 3\.11\.4 or later"):
        prepare_dataset({"name": "imdb", "root": str(root)}, tmp_path / "out")
    assert sorted(p.name for p in root.iterdir()) == ["aclImdb_v1.tar.gz"]
