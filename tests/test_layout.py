"""The package layout: subpackages that say what they hold, and no import cycles between modules."""

import ast
import re
from pathlib import Path

import pytest

SVP = Path(__file__).resolve().parents[1] / "svp"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SVP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(SVP.rglob("*.py"))}


def _imported(node: ast.AST) -> set[str]:
    """The modules one node of a module's syntax tree imports: ``import``, ``from ... import``
    (its names too, which may be modules) and ``importlib.import_module`` of a name written out."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # `from svp.data import text` imports the module svp.data.text
        return {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    if (
        isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in ("import_module", "__import__")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return {node.args[0].value}
    return set()


def _imports(name: str, at_load_only: bool = False) -> set[str]:
    """The svp modules a module imports: anywhere in it (inside functions too, the imports that
    run later), or only those run when it is loaded (its top-level statements)."""
    tree = ast.parse(MODULES[name].read_text())
    nodes = tree.body if at_load_only else ast.walk(tree)
    found = set().union(*(_imported(node) for node in nodes))
    return {module for module in found if module in MODULES and module != name}


def _imports_at_load(name: str) -> set[str]:
    return _imports(name, at_load_only=True)


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    path, on_path, done = [], set(), set()

    def visit(module):
        path.append(module)
        on_path.add(module)
        for nxt in sorted(graph[module]):
            if nxt in on_path:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in done and (cycle := visit(nxt)):
                return cycle
        on_path.discard(path.pop())
        done.add(module)
        return None

    return visit(start)


def test_no_module_imports_itself_back():
    """Counting the imports inside functions and ``importlib`` calls by name: a lazy import
    hides a cycle from the interpreter, not from a reader of the layers."""
    graph = {name: _imports(name) for name in MODULES}
    for name in MODULES:
        cycle = _cycle_from(name, graph)
        assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_import_reader_sees_lazy_imports_and_importlib_calls():
    source = (
        "import importlib\n"
        "def later():\n"
        "    from svp.selection import orders\n"
        "    importlib.import_module('svp.training.loop')\n"
    )
    found = set().union(*(_imported(node) for node in ast.walk(ast.parse(source))))
    assert {"svp.selection.orders", "svp.training.loop"} <= found
    assert set().union(*(_imported(node) for node in ast.parse(source).body)) == {"importlib"}


# Config validation is the top layer, imported by the command line alone (and by the
# Snakefile, which is no module here).
TOP = {"svp.config", "svp.cli", "svp.__main__"}


def test_the_bottom_module_imports_nothing_of_svp():
    assert _imports("svp.schema") == set()


def test_no_lower_layer_imports_config():
    importers = sorted(name for name in MODULES if "svp.config" in _imports(name) and name not in TOP)
    assert not importers, f"{importers} import svp.config; take what they need from svp.schema"


def test_models_know_no_data_format_and_no_training_loop():
    """A model is a spec or a network: the text alphabet comes from svp.schema, and of the
    trainers only the protocol (which trainer trains it) is named."""
    for name in (module for module in MODULES if module.startswith("svp.models")):
        reached = {
            module for module in _imports(name)
            if module.startswith(("svp.data", "svp.training", "svp.trainers")) and module != "svp.trainers.base"
        }  # fmt: skip
        assert not reached, f"{name} imports {sorted(reached)}"


def test_every_importlib_call_names_its_module():
    """An ``import_module(variable)`` hides an edge from the reader above: name the module."""
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module":
                assert node.args and isinstance(node.args[0], ast.Constant), f"{name}: import_module of a name not written out"


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle_from("a", graph) == ["a", "b", "c", "a"]
    assert _cycle_from("d", graph) is None


@pytest.mark.parametrize("package", sorted(name for name, path in MODULES.items() if path.name == "__init__.py"))
def test_each_package_says_what_it_holds(package):
    docstring = ast.get_docstring(ast.parse(MODULES[package].read_text()))
    assert docstring and len(docstring.splitlines()) >= 3, f"{package}: its __init__ needs a docstring naming its modules"
    if package != "svp":
        for module in (name for name in MODULES if name.rpartition(".")[0] == package):
            assert module.rpartition(".")[2] in docstring, f"{package}'s docstring does not mention {module}"


def test_data_and_text_no_longer_import_each_other():
    assert "svp.data.store" not in _imports_at_load("svp.data.text")
    assert not {"svp.data", "svp.data.images", "svp.data.text"} & _imports_at_load("svp.data.registry")


def test_the_readme_layout_names_every_package_and_module():
    """README's Layout block matches the folders: each package and each of its modules is named."""
    readme = (SVP.parent / "README.md").read_text()
    start = readme.index("Layout (each package's")
    block = readme[readme.index("```", start) : readme.index("```", readme.index("```", start) + 3)]
    for name, path in MODULES.items():
        if name == "svp" or path.name == "__main__.py":
            continue
        package, _, module = name.rpartition(".")
        if path.name == "__init__.py":
            assert f"{module}/" in block, f"README's Layout does not name the package {name}"
        elif package == "svp":
            assert f"{module}.py" in block, f"README's Layout does not name {path.name}"
        else:
            assert re.search(rf"\b{module}\b", block), f"README's Layout does not name {name}"


ROOT = SVP.parent
CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.MULTILINE)


def tracked_text_files() -> list[Path]:
    import subprocess

    listing = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    suffixes = {".py", ".md", ".yaml", ".yml", ".smk", ".rst", ".toml", ".sh", ".txt", ""}
    return [ROOT / name for name in listing.stdout.splitlines() if Path(name).suffix in suffixes and (ROOT / name).is_file()]


def test_no_merge_conflict_marker_is_left_in_a_tracked_file():
    # A README once kept a bare "=======" from a merge, and the config row it stood for was lost.
    left = [
        f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in tracked_text_files()
        if (text := path.read_text(errors="replace"))
        for match in CONFLICT_MARKER.finditer(text)
    ]
    assert not left, f"merge conflict markers left in: {', '.join(left)}"


def test_the_conflict_marker_check_finds_a_bare_separator():
    assert CONFLICT_MARKER.search("| a |\n=======\n| b |\n")
    assert not CONFLICT_MARKER.search("Title\n=========\n")
