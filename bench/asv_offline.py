"""Publish asv's HTML so that it opens without internet: the libraries it loads from CDNs, served from the page's
own folder.

asv 0.6.6's ``asv/www/index.html`` (the installed package; the same file as airspeed-velocity/asv tag v0.6.6)
loads jQuery 3.3.1, flot 0.8.3 (core, time, selection, categories), flot-orderBars 1.0.0, stupidtable 1.0.1,
blueimp-md5 2.19.0 and Bootstrap 3.1.1 (JS and CSS) from code.jquery.com, cdnjs and jsDelivr; offline, every
``onerror`` sends the reader to error.html ("One or more external (JavaScript) dependencies ... failed to load").
This script:

1. runs ``asv publish`` (unless ``--no-publish``) into the html folder of the asv config (or ``--html-dir``);
2. installs the same libraries from the npm registry with ``npm ci`` from bench/asv_www/package.json and its
   lock file (pinned versions and integrity hashes; stupid-table-plugin is 1.1.3 there, the only version on npm,
   with the same ``$.fn.stupidtable`` API), unless bench/asv_www/node_modules already holds them;
3. copies them to ``<html>/vendor/`` and rewrites index.html's ``<script>``/``<link>`` tags for those URLs to the
   local copies (dropping ``integrity``/``crossorigin``); a URL asv no longer loads is an error naming it.

The page reads its data with XMLHttpRequest, which browsers refuse over file://, so open it through a local web
server: ``python -m bench.asv_offline --serve`` (or ``asv preview``). Exit status 2 with one message on bad input.

    python -m bench.asv_offline                 # asv publish + vendor into .asv/html
    python -m bench.asv_offline --serve 8080    # ... and serve it on http://127.0.0.1:8080/
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

WWW = Path(__file__).resolve().parent / "asv_www"
NODE_MODULES = WWW / "node_modules"


@dataclass(frozen=True)
class Vendored:
    """One CDN URL of asv's index.html and the npm file that replaces it (``dest`` under ``<html>/vendor/``)."""

    url: str
    package_file: str
    dest: str


#: Read from asv 0.6.6's www/index.html (lines 12-22 of the installed file).
VENDORED = (
    Vendored("https://code.jquery.com/jquery-3.3.1.min.js", "jquery/dist/jquery.min.js", "jquery.min.js"),
    Vendored("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js", "flot/jquery.flot.js",
             "jquery.flot.js"),
    Vendored("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js", "flot/jquery.flot.time.js",
             "jquery.flot.time.js"),
    Vendored("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js",
             "flot/jquery.flot.selection.js", "jquery.flot.selection.js"),
    Vendored("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js",
             "flot/jquery.flot.categories.js", "jquery.flot.categories.js"),
    Vendored("https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js",
             "flot-orderbars/js/jquery.flot.orderBars.js", "jquery.flot.orderBars.js"),
    Vendored("https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js",
             "stupid-table-plugin/stupidtable.min.js", "stupidtable.min.js"),
    Vendored("https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js", "blueimp-md5/js/md5.min.js",
             "md5.min.js"),
    Vendored("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js",
             "bootstrap/dist/js/bootstrap.min.js", "bootstrap/js/bootstrap.min.js"),
    Vendored("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css",
             "bootstrap/dist/css/bootstrap.min.css", "bootstrap/css/bootstrap.min.css"),
)
#: Other files a vendored one refers to (Bootstrap's CSS loads ../fonts/glyphicons-*).
EXTRA_DIRS = (("bootstrap/dist/fonts", "bootstrap/fonts"),)


class OfflineError(Exception):
    """Bad input or a missing tool: one message, exit status 2."""


def ensure_node_modules(npm: str | None = None) -> Path:
    """bench/asv_www/node_modules with every vendored file, installed with ``npm ci`` if needed."""
    if all((NODE_MODULES / v.package_file).is_file() for v in VENDORED):
        return NODE_MODULES
    npm = npm or shutil.which("npm")
    if npm is None:
        raise OfflineError("npm is not installed; it installs the page's libraries from bench/asv_www/package.json "
                           "(apt-get install npm)")
    proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=WWW,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise OfflineError(f"npm ci in bench/asv_www failed: {proc.stderr.strip()[-800:]}")
    missing = [v.package_file for v in VENDORED if not (NODE_MODULES / v.package_file).is_file()]
    if missing:
        raise OfflineError(f"npm ci did not install {', '.join(missing)} (bench/asv_www/package.json)")
    return NODE_MODULES


def _tag_pattern(url: str) -> re.Pattern:
    return re.compile(r"<(script|link)\b[^>]*?(?:src|href)=\"" + re.escape(url) + r"\"[^>]*>", re.IGNORECASE)


def localize(html_dir: Path, node_modules: Path | None = None) -> list[str]:
    """Copy the libraries into ``html_dir/vendor`` and point index.html at them; returns the local paths."""
    html_dir = Path(html_dir)
    index = html_dir / "index.html"
    if not index.is_file():
        raise OfflineError(f"{index}: no such file (run asv publish first, or drop --no-publish)")
    node_modules = node_modules or ensure_node_modules()
    text = index.read_text(encoding="utf-8")
    out = []
    for v in VENDORED:
        pattern = _tag_pattern(v.url)
        match = pattern.search(text)
        if match is None:
            raise OfflineError(f"{index}: asv no longer loads {v.url}; update VENDORED in bench/asv_offline.py")
        dest = html_dir / "vendor" / v.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / v.package_file, dest)
        local = f"vendor/{v.dest}"
        tag = match.group(0)
        tag = tag.replace(v.url, local)
        tag = re.sub(r"\s(integrity|crossorigin|referrerpolicy)=\"[^\"]*\"", "", tag)
        text = pattern.sub(lambda _m, t=tag: t, text, count=1)
        out.append(local)
    for src, dst in EXTRA_DIRS:
        shutil.copytree(node_modules / src, html_dir / "vendor" / dst, dirs_exist_ok=True)
    left = re.findall(r"<(?:script|link)\b[^>]*?(?:src|href)=\"(https?://[^\"]+)\"", text)
    left = [u for u in left if not u.startswith("https://github.com/")]
    if left:
        raise OfflineError(f"{index}: still loads {', '.join(left)} from the network; add it to VENDORED")
    index.write_text(text, encoding="utf-8")
    return out


def html_dir_of(config: Path) -> Path:
    try:
        conf = json.loads(Path(config).read_text())
    except (OSError, ValueError) as exc:
        raise OfflineError(f"{config}: cannot read the asv config ({exc})") from None
    return (Path(config).parent / conf.get("html_dir", "html")).resolve()


def publish(config: Path, html_dir: Path) -> None:
    asv = shutil.which("asv", path=str(Path(sys.executable).parent)) or shutil.which("asv")
    if asv is None:
        raise OfflineError("asv is not installed (pip install -e '.[test]')")
    proc = subprocess.run([asv, "publish", "--config", str(config), "--html-dir", str(html_dir)],
                          cwd=Path(config).parent, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OfflineError(f"asv publish failed: {(proc.stdout + proc.stderr).strip()[-800:]}")


def serve(html_dir: Path, port: int) -> None:  # pragma: no cover - interactive
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html_dir))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving {html_dir} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
        server.serve_forever()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.asv_offline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "asv.conf.json")
    parser.add_argument("--html-dir", type=Path, help="default: html_dir of the asv config")
    parser.add_argument("--no-publish", action="store_true", help="only vendor an already published folder")
    parser.add_argument("--serve", type=int, metavar="PORT", help="then serve it on 127.0.0.1:PORT")
    args = parser.parse_args(argv)
    try:
        html_dir = (args.html_dir or html_dir_of(args.config)).resolve()
        if not args.no_publish:
            publish(args.config, html_dir)
        files = localize(html_dir)
    except OfflineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{html_dir}/index.html loads {len(files)} libraries from {html_dir}/vendor/ (no network)")
    if args.serve is not None:
        serve(html_dir, args.serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
