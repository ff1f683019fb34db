"""Fixtures and markers shared by several test files."""

import functools
import http.server
import threading
from pathlib import Path

import pytest

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
