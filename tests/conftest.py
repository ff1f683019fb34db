"""Fixtures and markers shared by several test files."""

import functools
import http.server
import threading
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_DATA_HELP = (
    "../shared/data is the project's offline copy of CIFAR-10 and IMDB, kept beside the repository "
    "(what each file holds and where it came from: ../shared/data/README.md); a fresh clone has none. "
    "Put a copy there to run these tests, or deselect them with -m 'not shared_data'"
)


def pytest_runtest_setup(item):
    """Skip a test marked ``shared_data(path, ...)`` when one of its files is missing, naming it.

    The marker names the files themselves, so the reason says exactly what is missing
    (a fresh clone lacks them all; a partial copy, some).
    """
    for marker in item.iter_markers("shared_data"):
        missing = [str(path) for path in marker.args if not Path(path).is_file()]
        if missing:
            pytest.skip(f"needs {', '.join(missing)}: {SHARED_DATA_HELP}")


def pytest_generate_tests(metafunc):
    """A test taking ``shipped_config`` runs once for each config/*.yaml; those whose data
    set reads files of ../shared/data are marked ``shared_data`` with those files."""
    if "shipped_config" in metafunc.fixturenames:
        configs = sorted((REPO / "config").glob("*.yaml"))
        marks = [[pytest.mark.shared_data(*files)] if (files := _shared_files(path)) else [] for path in configs]
        metafunc.parametrize("shipped_config", [pytest.param(p, marks=m, id=p.name) for p, m in zip(configs, marks)])


def _shared_files(config: Path) -> list[Path]:
    """The files of ../shared/data that a config's data set names (relative to the repository,
    where Snakemake runs)."""
    dataset = yaml.safe_load(config.read_text()).get("dataset", {})
    named = [*dataset.get("train", []), *dataset.get("test", [])]
    if isinstance(dataset.get("classes"), str):  # a file of class names; a mapping is inline
        named.append(dataset["classes"])
    files = [(REPO / name).resolve() for name in named]
    return [file for file in files if file.is_relative_to(SHARED_DATA.resolve())]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder, base URL) of an HTTP server on 127.0.0.1 serving the folder, stopped after the test.

    torchvision's downloader cannot read file:// URLs, so download code is tested against
    files served here; proxies are unset so the request stays on this machine.
    """
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
