"""The package layout: subpackages that say what they hold, and no import cycles between modules."""

import ast
from pathlib import Path

import pytest

SVP = Path(__file__).resolve().parents[1] / "svp"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SVP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(SVP.rglob("*.py"))}


def _imports_at_load(name: str) -> set[str]:
    """The svp modules a module imports when it is loaded (imports inside functions are lazy)."""
    found = set()
    for node in ast.parse(MODULES[name].read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from svp.data import text` imports the module svp.data.text
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {module for module in found if module in MODULES and module != name}


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
    graph = {name: _imports_at_load(name) for name in MODULES}
    for name in MODULES:
        cycle = _cycle_from(name, graph)
        assert cycle is None, "import cycle: " + " -> ".join(cycle)


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
