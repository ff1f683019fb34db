"""Tests that read ../shared/data skip where it is missing, saying what and why.

A fresh clone has no ../shared; its tests must report each such skip with the missing
file and where the data comes from, and run the rest.
"""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MARKED = '''
import pytest

@pytest.mark.shared_data({present!r}, {missing!r})
def test_reads_missing_shared_data():
    raise AssertionError("ran without its data")

@pytest.mark.shared_data({present!r})
def test_reads_present_shared_data():
    pass
'''


def test_a_test_missing_shared_data_skips_naming_the_file(tmp_path):
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")  # the marker's registration
    present, missing = tmp_path / "present.csv.gz", tmp_path / "shared" / "data" / "imdb" / "train.csv.gz"
    present.write_bytes(b"")
    (tmp_path / "test_marked.py").write_text(MARKED.format(present=str(present), missing=str(missing)))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_marked.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout, result.stdout
    # -ra (the project's addopts) prints the reason: the missing file and where to get it.
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and f"needs {missing}:" in skipped[0] and str(present) not in skipped[0], result.stdout
    assert "../shared/data/README.md" in skipped[0] and "-m 'not shared_data'" in skipped[0]
