"""svp as a user installs it: a wheel built from pyproject.toml, without the repository.

An editable install finds files beside the package in the checkout, so it hides a file
the wheel lacks; these tests build the wheel and run svp from it, outside the repository.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` would install, built from a copy of the package and pyproject.toml.

    A copy, so the build's scratch folders (build/, *.egg-info) stay out of the checkout;
    no build isolation, so it uses the environment's setuptools (a test dependency) and
    needs no package index.
    """
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(REPO / "svp", source / "svp", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(source)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("svp-*.whl")
    return built


def test_the_wheel_ships_the_config_schema(wheel):
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("svp/config.schema.yaml") == (REPO / "svp" / "config.schema.yaml").read_bytes()


def test_check_config_works_from_the_wheel_alone(wheel, tmp_path):
    """The wheel itself on the path (a zip: no file of it exists on disk), run from an
    empty folder: the schema can only come from the package, through importlib.resources."""
    program = (
        "import sys, svp, svp.cli; "
        "assert svp.__file__.startswith(sys.argv[1]), svp.__file__; "
        "sys.exit(svp.cli.main(['check-config', sys.argv[2]]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, str(wheel), str(REPO / "config" / "config.yaml")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(wheel)}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # Defaults only the schema supplies: the config file has no `report` section.
    assert "report" not in yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert yaml.safe_load(result.stdout)["report"] == {"budget_matched": False}
