"""`specedge report --quick` end to end: the files, the tables, the sections, and the page in a real browser."""

from __future__ import annotations

import contextlib
import io

import pandas as pd
import pytest

from specedge.cli import main
from specedge.report.browser import check_page, find_chromium


@pytest.fixture(scope="module")
def built(report_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "report-out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["report", "--quick", "--out", str(out), "--store", str(report_store)])
    assert code == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def quick_report(built):
    return built[0]


def test_report_folder_has_html_tables_and_figures(quick_report):
    html = (quick_report / "report.html").read_text()
    tables = sorted(p.stem for p in (quick_report / "tables").glob("*.csv"))
    assert tables == sorted(p.stem for p in (quick_report / "tables").glob("*.parquet"))
    for name in tables:  # every table in both formats, same content
        csv = pd.read_csv(quick_report / "tables" / f"{name}.csv")
        parquet = pd.read_parquet(quick_report / "tables" / f"{name}.parquet")
        assert list(csv.columns) == list(parquet.columns)
        assert len(csv) == len(parquet)
    pngs = list((quick_report / "figures").glob("*.png"))
    assert len(pngs) >= 8
    assert html.count('src="data:image/png;base64,') == len(pngs)  # self-contained: every figure embedded
    for png in pngs:  # every figure has its data table
        assert (quick_report / "tables" / f"{png.stem}-data.csv").is_file()
    for section in ("comparison", "sweeps", "headline", "traces", "optimizer"):
        assert f'id="{section}"' in html


def test_comparison_tables_hold_every_policy_with_intervals_and_reductions(quick_report):
    from specedge.report.config import load_config

    cfg = load_config(quick=True)
    summary = pd.read_csv(quick_report / "tables" / "comparison-summary.csv")
    assert set(summary["policy"]) == set(cfg.comparison.policies)
    # @traces:1 takes the first dataset by id (no recorded one in the test store)
    assert set(summary["acceptance"]) == {"expected", "iid", "published-leviathan-t5xxl-base-ende"}
    for metric in ("makespan_s", "mean_latency_s", "p99_latency_s", "ttft_s"):
        assert (summary[f"{metric}_low"] <= summary[metric] + 1e-9).all()
        assert (summary[metric] <= summary[f"{metric}_high"] + 1e-9).all()
    sampled = summary[summary["acceptance"] != "expected"]
    assert (sampled["makespan_s_high"] > sampled["makespan_s_low"]).any()  # Monte Carlo intervals are not empty
    red = pd.read_csv(quick_report / "tables" / "comparison-reduction-vs-ad.csv")
    own = red[(red["policy"] == "ad") & (red["metric"] == "makespan_s")]
    assert (own["reduction"] == 0).all()
    from specedge.sweep import read_results

    cells = read_results(quick_report / "cells" / "comparison")
    assert len(cells) == cfg.comparison.size
    sources = pd.read_csv(quick_report / "tables" / "comparison-acceptance-sources.csv").set_index("acceptance")
    assert "published" in sources.loc["published-leviathan-t5xxl-base-ende", "provenance"]


def test_traces_section_says_where_each_trace_came_from(quick_report):
    catalog = pd.read_csv(quick_report / "tables" / "traces-catalog.csv").set_index("dataset")
    assert "derived from a published number" in catalog.loc["published-leviathan-t5xxl-small-ende", "provenance"]
    assert "ingested from vllm" in catalog.loc["test-aggregate", "provenance"]
    fits = pd.read_csv(quick_report / "tables" / "traces-compute-fits.csv")
    assert set(fits["predictor"]) == {"affine", "roofline"}


def test_report_prints_where_it_is(built):
    out, printed = built
    assert printed.strip() == f"Report: {(out / 'report.html').resolve()}"


def test_report_refuses_a_foreign_folder(report_store, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert main(["report", "--quick", "--out", str(tmp_path / "mine"), "--store", str(report_store)]) == 2
    assert "not a specedge report folder" in capsys.readouterr().err
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_report_page_loads_in_headless_chromium(quick_report):
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the browser check needs it")
    shot = quick_report / "screenshot.png"
    check = check_page(quick_report / "report.html", screenshot=shot)
    assert check.ok, check.problems()
    assert check.images >= 8
    assert check.title.startswith("specedge comparison report")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert check.page_height_px > 2000


def test_acceptance_models_table_for_every_acceptance_dataset(quick_report, report_store):
    # contract (issue 16): `specedge report --quick --out DIR` writes DIR/tables/acceptance-models.csv
    table = pd.read_csv(quick_report / "tables" / "acceptance-models.csv")
    from specedge.traces.store import open_store

    acc = {i.id for i in open_store(report_store).list() if i.kind in ("acceptance", "aggregate")}
    assert set(table["dataset"]) == acc
    assert set(table["model"]) == {"a-iid", "b-per-position"} and len(table) == 2 * len(acc)
    assert table[["l_opt_model", "l_opt_trace", "regret_pct"]].notna().all().all()
    assert (table["regret_pct"] >= 0).all()
    assert 'id="acceptance-models"' in (quick_report / "report.html").read_text()


def test_page_opens_with_the_summary_and_the_assumptions_and_keeps_walls_as_downloads(quick_report):
    import re

    html = (quick_report / "report.html").read_text()
    sections = re.findall(r'<section id="([^"]+)">', html)
    assert sections[0] == "summary" and sections[1] == "comparison"
    summary = pd.read_csv(quick_report / "tables" / "summary-policy-by-pair.csv")
    from specedge.report.config import load_config

    cfg = load_config(quick=True)
    assert set(summary["policy"]) == set(cfg.comparison.policies)
    assert {f"{p} makespan_s" for p in cfg.comparison.pairs} <= set(summary.columns)
    assumptions = pd.read_csv(quick_report / "tables" / "summary-assumptions.csv").set_index("parameter")
    assert assumptions.loc["bits_per_token", "unit"] and assumptions.loc["bits_per_token", "tag"].startswith("[")
    first = html.index('<section id="summary">')
    assert html.index("bits_per_token", first) < html.index('<section id="comparison">')  # inline, on top
    # no heading twice, no "-0.0" cell, the 100+-row comparison tables are downloads
    headings = re.findall(r"<h3>([^<]+)</h3>", html)
    assert len(headings) == len(set(headings)), [h for h in headings if headings.count(h) > 1]
    assert not re.search(r">-0(\.0+)?<", html)
    from specedge.report.document import INLINE_ROWS

    walls = 0
    for csv in (quick_report / "tables").glob("*.csv"):
        rows = len(pd.read_csv(csv))
        if rows > INLINE_ROWS and not csv.stem.endswith("-data") and csv.stem != "summary-assumptions":
            walls += 1
            assert f"{rows} rows: download" in html, csv.stem
    assert walls >= 1  # the traces' tables at least
    assert html.count('<tr') < 1500  # no table wall; the preview shows 10 rows of each download
