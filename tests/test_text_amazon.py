"""The Amazon review data sets through their real download, check and extraction code,
against a local HTTP server serving a tiny archive in Zhang et al.'s genuine layout."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from svp.data import text
from svp.data import DataError, load_prepared, prepare_dataset

CLOSED_PORT_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens there
FOLDER = "amazon_review_polarity_csv"
TRAIN_ROWS = [["2", "Great CD", 'My lovely Pat has one of the "GREAT" voices'], ["1", "", "Broke after a week."],
              ["2", "Five stars", "Works, as described."]]
TEST_ROWS = [["1", "Meh", "Not what I expected"], ["2", "Good", "fine"]]


# The `server` fixture (a local HTTP server) is in tests/conftest.py.


def _csv_bytes(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def make_archive(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def genuine_members() -> dict[str, bytes]:
    return {
        f"{FOLDER}/readme.txt": b"Amazon Review Polarity Dataset\n",
        f"{FOLDER}/train.csv": _csv_bytes(TRAIN_ROWS),
        f"{FOLDER}/test.csv": _csv_bytes(TEST_ROWS),
    }


def serve_fake(served: Path, base_url: str, monkeypatch, members=None, csv_md5=None) -> Path:
    """Serve a fake amazon_review_polarity_csv.tgz and point the data set's spec at it."""
    members = genuine_members() if members is None else members
    spec = text.AMAZON["amazon_polarity"]
    archive = served / spec.archive.name
    make_archive(archive, members)
    content = archive.read_bytes()
    md5s = csv_md5 or {s: hashlib.md5(members.get(f"{FOLDER}/{s}.csv", b"")).hexdigest() for s in ("train", "test")}
    patched = dataclasses.replace(
        spec,
        archive=dataclasses.replace(
            spec.archive, urls=(base_url + spec.archive.name,), size=len(content),
            md5=hashlib.md5(content[: spec.archive.md5_bytes]).hexdigest(),
        ),
        rows={"train": len(TRAIN_ROWS), "test": len(TEST_ROWS)},
        csv_md5=md5s,
    )
    monkeypatch.setitem(text.AMAZON, "amazon_polarity", patched)
    return archive


def test_download_check_extract_and_prepare(server, tmp_path, monkeypatch, capsys):
    served, base_url = server
    archive = serve_fake(served, base_url, monkeypatch)
    root = tmp_path / "root"
    manifest = prepare_dataset({"name": "amazon_polarity", "root": str(root)}, tmp_path / "out")
    (texts, y), (test_texts, test_y), _ = load_prepared(tmp_path / "out")
    assert manifest["modality"] == "text" and manifest["classes"] == ["negative", "positive"]
    assert y.tolist() == [1, 0, 1] and test_y.tolist() == [0, 1]  # classes 1..2 -> labels 0..1
    assert texts.strings() == [f"{title} {body}" for _, title, body in TRAIN_ROWS]  # title + " " + text
    assert test_texts[0] == "Meh Not what I expected"
    assert (root / FOLDER / "train.csv").is_file()
    assert manifest["source_files"][str(root / archive.name)] == hashlib.md5(archive.read_bytes()).hexdigest()
    assert base_url in manifest["source"]
    assert "warning" not in capsys.readouterr().err
    # Extracted once: later runs need neither the archive nor the network.
    (root / archive.name).unlink()
    monkeypatch.setitem(
        text.AMAZON, "amazon_polarity",
        dataclasses.replace(text.AMAZON["amazon_polarity"], archive=dataclasses.replace(
            text.AMAZON["amazon_polarity"].archive, urls=(CLOSED_PORT_URL + archive.name,))),
    )
    again = prepare_dataset({"name": "amazon_polarity", "root": str(root), "download": False}, tmp_path / "again")
    assert again["checksums"] == manifest["checksums"]


def test_row_limits_and_a_differing_csv_md5_is_a_warning(server, tmp_path, monkeypatch, capsys):
    served, base_url = server
    serve_fake(served, base_url, monkeypatch, csv_md5={"train": "0" * 32, "test": "1" * 32})
    options = {"name": "amazon_polarity", "root": str(tmp_path / "root"), "train_rows": 2, "test_rows": 1}
    manifest = prepare_dataset(options, tmp_path / "out")
    assert manifest["n_train"] == 2 and manifest["n_test"] == 1
    assert "torchtext records 00000000000000000000000000000000" in capsys.readouterr().err


def test_corrupt_download_is_reported_and_nothing_written(server, tmp_path, monkeypatch):
    served, base_url = server
    archive = serve_fake(served, base_url, monkeypatch)
    archive.write_bytes(archive.read_bytes()[:-50])  # a truncated transfer
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "amazon_polarity", "root": str(tmp_path / "root")}, tmp_path / "out")
    assert "amazon_review_polarity_csv.tgz has" in str(error.value) and "corrupt" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_archive_with_another_layout_is_refused(server, tmp_path, monkeypatch):
    served, base_url = server
    serve_fake(served, base_url, monkeypatch, members={"data/train.csv": _csv_bytes(TRAIN_ROWS)})
    with pytest.raises(DataError, match=r"did not contain.*amazon_review_polarity_csv/train\.csv"):
        prepare_dataset({"name": "amazon_polarity", "root": str(tmp_path / "root")}, tmp_path / "out")


def test_incomplete_split_is_refused(server, tmp_path, monkeypatch):
    served, base_url = server
    serve_fake(served, base_url, monkeypatch)
    spec = text.AMAZON["amazon_polarity"]
    monkeypatch.setitem(text.AMAZON, "amazon_polarity", dataclasses.replace(spec, rows={"train": 4, "test": 2}))
    with pytest.raises(DataError, match=r"train\.csv: 3 rows, but Zhang et al\.'s train split has 4"):
        prepare_dataset({"name": "amazon_polarity", "root": str(tmp_path / "root")}, tmp_path / "out")


def test_zhangs_original_archive_is_used_when_present(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    spec = text.AMAZON["amazon_polarity"]
    original = root / spec.original.name
    make_archive(original, genuine_members())
    monkeypatch.setitem(text.AMAZON, "amazon_polarity", dataclasses.replace(
        spec, original=dataclasses.replace(spec.original, md5=hashlib.md5(original.read_bytes()).hexdigest()),
        rows={"train": 3, "test": 2}))
    manifest = prepare_dataset({"name": "amazon_polarity", "root": str(root), "download": False}, tmp_path / "out")
    assert manifest["n_train"] == 3
    original.write_bytes(b"garbage")
    (root / FOLDER / "train.csv").unlink()
    with pytest.raises(DataError, match=r"amazon_review_polarity_csv\.tar\.gz has md5 .* corrupt"):
        prepare_dataset({"name": "amazon_polarity", "root": str(root), "download": False}, tmp_path / "out2")


@pytest.mark.parametrize("name", ["amazon_polarity", "amazon_full"])
def test_missing_archive_without_download_names_file_checksum_url_and_folder(tmp_path, name):
    root = tmp_path / "empty"
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": name, "root": str(root), "download": False}, tmp_path / "out")
    message = str(error.value)
    spec = text.AMAZON[name]
    assert spec.archive.name in message and spec.archive.md5 in message and f"{spec.archive.size:,} bytes" in message
    assert f"https://s3.amazonaws.com/fast-ai-nlp/{spec.archive.name}" in message
    assert spec.original.name in message and spec.original.md5 in message
    assert str(root.resolve()) in message and "dataset.download: true" in message
    assert not root.exists()  # nothing was attempted


def test_unreachable_host_names_url_file_and_folder(tmp_path, monkeypatch):
    spec = text.AMAZON["amazon_polarity"]
    monkeypatch.setitem(text.AMAZON, "amazon_polarity", dataclasses.replace(
        spec, archive=dataclasses.replace(spec.archive, urls=(CLOSED_PORT_URL + spec.archive.name,))))
    root = tmp_path / "root"
    with pytest.raises(DataError) as error:
        prepare_dataset({"name": "amazon_polarity", "root": str(root)}, tmp_path / "out")
    message = str(error.value)
    assert CLOSED_PORT_URL in message and str(root.resolve()) in message and "unreachable" in message
    assert not (root / spec.archive.name).exists()


def test_the_recorded_checksums_are_the_published_ones():
    polarity, full = text.AMAZON["amazon_polarity"], text.AMAZON["amazon_full"]
    # fastai's data/checks.txt (size, md5 of the first MiB) and torchtext's MD5 / _EXTRACTED_FILES_MD5.
    assert (polarity.archive.size, polarity.archive.md5) == (688_339_454, "676f7e5208ec343c8274b4bb085bc938")
    assert (full.archive.size, full.archive.md5) == (643_695_014, "4a1196cf0adaea22f4bc3f592cddde90")
    assert polarity.original.md5 == "fe39f8b653cada45afd5792e0f0e8f9b"
    assert full.original.md5 == "57d28bd5d930e772930baddf36641c7c"
    assert polarity.csv_md5 == {"train": "520937107c39a2d1d1f66cd410e9ed9e", "test": "f4c8bded2ecbde5f996b675db6228f16"}
    assert np.array_equal(sorted(full.rows.values()), [650_000, 3_000_000])
