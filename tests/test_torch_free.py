"""Config validation, planning and the stages that need no model never import torch.

Importing torch takes seconds, most of a cheap job's time; each check runs in a fresh
interpreter, since this test session has imported torch long ago.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def heavy_modules(code: str) -> list[str]:
    """The heavy packages a fresh interpreter has imported after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'matplotlib', 'sklearn'})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_validating_and_planning_a_config_imports_no_torch(shipped_config):  # each config/*.yaml (conftest.py)
    code = (
        "from svp import plan\n"
        "from svp.config import load_config\n"
        f"c = load_config('config/{shipped_config.name}')\n"
        "plan.target_runs(c); plan.proxy_runs(c); plan.budget_runs(c)"
    )
    # Checking torchvision's model names loads torchvision (svp.models.torchvision_names); only such configs do.
    expected = ["torch", "torchvision"] if "torchvision/" in shipped_config.read_text() else []
    assert heavy_modules(code) == expected


@pytest.mark.parametrize(
    "module",
    ["svp.cli", "svp.models.specs", "svp.selection.subsets", "svp.report.summary", "svp.report.tables", "svp.report.verdict", "svp.report.cli", "svp.models", "svp.data", "svp.training.gpus", "svp.selection.diagnostics", "svp.active.pools", "svp.active.job_inputs", "svp.report.active"],
)
def test_stages_without_a_model_import_no_torch(module):
    assert "torch" not in heavy_modules(f"import {module}")


def test_svp_models_and_check_config_answer_without_torch():
    code = (
        "import contextlib, io\n"
        "from svp.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['models']) == 0 and main(['check-config', 'config/config.yaml']) == 0"
    )
    assert heavy_modules(code) == []


def test_every_model_factory_has_a_spec_known_without_torch():
    """svp.models.specs lists exactly the models svp.models can build, and those the torch trainer does not train."""
    code = "import json; from svp.models import specs; print(json.dumps(specs.list_models()))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    from svp.models.networks import MODELS, list_models, model_spec

    assert json.loads(result.stdout) == list_models()
    assert sorted(MODELS) == [name for name in list_models() if model_spec(name).trainer.name == "torch"]
