"""bench/asv_offline.py: asv's page with its libraries served locally, opened in headless Chromium offline."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import asv_offline  # noqa: E402


def _asv():
    asv = shutil.which("asv", path=str(Path(sys.executable).parent)) or shutil.which("asv")
    if asv is None:
        pytest.skip("asv is not installed (it is in the test extra)")
    return asv


def _node_modules():
    try:
        return asv_offline.ensure_node_modules()
    except asv_offline.OfflineError as exc:
        pytest.skip(f"the page's libraries cannot be installed here: {exc}")


def _asv_index() -> Path:
    import asv

    return Path(asv.__file__).parent / "www" / "index.html"


def test_every_cdn_url_of_asvs_page_is_vendored(tmp_path):
    """The URLs in VENDORED are exactly the external scripts and styles of the installed asv's index.html."""
    text = _asv_index().read_text()
    external = set(re.findall(r"<(?:script|link)\b[^>]*?(?:src|href)=\"(https?://[^\"]+)\"", text))
    assert external == {v.url for v in asv_offline.VENDORED}


def test_localize_rewrites_the_page_and_copies_the_files(tmp_path):
    modules = _node_modules()
    shutil.copytree(_asv_index().parent, tmp_path / "html")
    local = asv_offline.localize(tmp_path / "html", modules)
    text = (tmp_path / "html" / "index.html").read_text()
    assert "cdn" not in text and "code.jquery.com" not in text and "integrity=" not in text
    for path in local:
        assert (tmp_path / "html" / path).stat().st_size > 1000, path
        assert f'"{path}"' in text
    assert (tmp_path / "html" / "vendor/bootstrap/fonts/glyphicons-halflings-regular.woff").is_file()


def test_a_page_asv_no_longer_matches_is_an_error(tmp_path):
    modules = _node_modules()
    (tmp_path / "index.html").write_text("<html><script src=\"https://code.jquery.com/jquery-9.js\"></script></html>")
    with pytest.raises(asv_offline.OfflineError, match="no longer loads https://code.jquery.com/jquery-3.3.1"):
        asv_offline.localize(tmp_path, modules)
    assert asv_offline.main(["--no-publish", "--html-dir", str(tmp_path / "missing")]) == 2


def test_published_page_opens_offline_in_chromium(tmp_path):
    """asv run (one cheap benchmark, results in tmp) -> asv publish -> vendor -> serve on 127.0.0.1 -> Chromium:
    no failed load, no console error, and not asv's error page."""
    from specedge.report.browser import check_page, find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium (CI installs Debian's chromium package)")
    asv = _asv()
    _node_modules()
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    conf.update({"repo": str(ROOT), "benchmark_dir": str(ROOT / "bench"), "results_dir": str(tmp_path / "results"),
                 "html_dir": str(tmp_path / "html"), "env_dir": str(tmp_path / "env")})
    config = tmp_path / "asv.conf.json"
    config.write_text(json.dumps(conf))
    env = {**__import__("os").environ, "HOME": str(tmp_path)}
    subprocess.run([asv, "machine", "--yes", "--machine", "ci", "--config", str(config)], cwd=tmp_path, env=env,
                   check=True, capture_output=True, timeout=120)
    run = subprocess.run([asv, "run", "--config", str(config), "--python=same", "--quick", "--machine", "ci",
                          "--set-commit-hash", _head(), "--bench", r"sweep\.GridCells"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert asv_offline.main(["--config", str(config)]) == 0
    handler = functools.partial(_QuietHandler, directory=str(tmp_path / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        check = check_page(url, screenshot=tmp_path / "asv.png", timeout_s=90)
    finally:
        server.shutdown()
        server.server_close()
    # asv's grid asks for the summary graph of every benchmark it knows; only GridCells has results here, so the
    # others answer 404 - asv's behaviour with partial results, not a missing library
    no_results = [e for e in check.console_errors if "404" in e and "/graphs/summary/" in e]
    assert not check.failed_loads and not check.exceptions and not check.broken_images, check.problems()
    assert set(check.console_errors) == set(no_results), check.problems()
    assert "airspeed velocity" in check.title
    served = {path.split("?")[0]: code for path, code in _QuietHandler.requested}
    assert served.get("/index.json") == 200  # the page read the published results
    assert all(served.get(f"/vendor/{v.dest}") == 200 for v in asv_offline.VENDORED), served
    assert not [p for p in served if p.startswith("/error")]  # asv's "dependencies failed to load" page


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested: list[tuple[str, int]] = []

    def log_request(self, code="-", size="-"):
        _QuietHandler.requested.append((self.path, int(getattr(code, "value", code))))

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass
