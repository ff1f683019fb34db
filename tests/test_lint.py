"""`make lint`: Snakemake's linter and snakefmt pass on the workflow, and the one lint the
Makefile filters out (no per-rule conda environment) hides no other finding."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The environment running these tests, in place of the Makefile's .venv; -o: never
# reinstall it (the stamp file counts as up to date).
VENV = Path(sys.executable).parent.parent
MAKE_LINT = ["make", f"VENV={VENV}", "-o", str(VENV / ".installed"), "lint"]


def test_make_lint_passes():
    result = subprocess.run(MAKE_LINT, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean but for the lint the Makefile ignores" in result.stdout


# What each breakage appends to a file of a copy of the workflow, and what make lint must show.
BREAKAGES = {
    "a rule without a log": (
        "workflow/rules/data.smk",
        '\n\nrule unlogged:\n    output:\n        "x.txt",\n    shell:\n        "touch {output}"\n',
        "No log directive defined",
    ),
    "a workflow that does not load": ("Snakefile", "\nundefined_name\n", "NameError"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_make_lint_fails_on_any_other_finding(tmp_path, breakage):
    for name in ("Makefile", "Snakefile"):
        shutil.copy(REPO / name, tmp_path / name)
    for folder in ("workflow", "config"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    file, text, shown = BREAKAGES[breakage]
    with (tmp_path / file).open("a") as broken:
        broken.write(text)
    result = subprocess.run(MAKE_LINT, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and shown in result.stdout, result.stdout + result.stderr
