"""The report's opening section: what the comparison found (policy × pair) and what the scenario assumes.

A reader sees first a small table, one row per policy and two columns per model pair: the mean makespan (s) on
the reference acceptance source and its change against the paper's optimizer (%, paired by seed), then the
scenario's parameters with their units and [P] (the paper's) / [A] (our assumption) tags. The reference source
is ``expected`` (i.i.d. α in expectation, the paper's own planning assumption) when the grid has it, else the
grid's first source.

change vs paper-dp = mean over seeds of (makespan(policy, seed) / makespan(paper-dp, seed) − 1) · 100  [A]
"""

from __future__ import annotations

import pandas as pd

from specedge.report import palette

#: The optimizer every other policy is compared with in the summary (the paper's).
REFERENCE_POLICY = "paper-dp"


def reference_source(sources) -> str:
    """``expected`` if the grid has it, else its first acceptance source."""
    sources = list(dict.fromkeys(sources))
    return "expected" if "expected" in sources else sources[0]


def policy_by_pair(cells: pd.DataFrame, source: str, metric: str = "makespan_s", pairs=None) -> pd.DataFrame:
    """One row per policy (report order), per pair (``pairs`` order, else as they come) the mean ``metric`` and
    the paired change vs paper-dp (%)."""
    ok = cells[(cells["status"] == "ok") & (cells["acceptance"] == source)]
    present = list(dict.fromkeys(ok["pair"]))
    pairs = [p for p in pairs if p in present] if pairs is not None else present
    out = pd.DataFrame({"policy": palette.order(ok["policy"])})
    for pair in pairs:
        part = ok[ok["pair"] == pair]
        mean = part.groupby("policy")[metric].mean()
        out[f"{pair} {metric}"] = out["policy"].map(mean)
        ref = part[part["policy"] == REFERENCE_POLICY].set_index(["preset", "seed"])[metric]
        if ref.empty:
            continue
        paired = part.join(ref.rename("_ref"), on=["preset", "seed"])
        change = ((paired[metric] / paired["_ref"] - 1.0) * 100.0).groupby(paired["policy"]).mean()
        out[f"{pair} vs {REFERENCE_POLICY} (%)"] = out["policy"].map(change)
    return out


def assumptions(preset: str, pair: str, fixed) -> pd.DataFrame:
    """The scenario's parameters (value, unit, [P]/[A] tag, meaning), with the report config's fixed values."""
    from specedge.scenario import Scenario

    fixed = dict(fixed)
    alpha = fixed.pop("alpha", None)
    tasks = fixed.pop("tasks", None)
    sc = Scenario.from_preset(preset, pair=pair, alpha=alpha, tasks=tasks, **fixed)
    table = sc.assumptions()
    table["tag"] = "[" + table["tag"].astype(str) + "]"
    set_here = set(fixed) | ({"num_tasks"} if tasks is not None else set())
    table["source"] = table["parameter"].map(lambda p: "report config" if p in set_here else f"preset {preset}")
    table["value"] = table["value"].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))
    head = pd.DataFrame([{"parameter": "pair", "value": pair, "unit": "", "tag": "[P]",
                          "meaning": "draft model / target model", "source": "report config"},
                         {"parameter": "alpha", "value": f"{sc.alpha:g}", "unit": "", "tag": "[P]",
                          "meaning": "α, per-position acceptance rate of the expected/iid sources",
                          "source": "report config" if alpha is not None else f"preset {preset}"}])
    return pd.concat([head, table[["parameter", "value", "unit", "tag", "meaning", "source"]]], ignore_index=True)


def summary(ctx, cells: pd.DataFrame) -> None:
    """Section 0: the summary table and the assumptions table (see the module docstring)."""
    grid = ctx.cfg.comparison
    sources = list(dict.fromkeys(cells["acceptance"]))
    if not sources:
        return
    source = reference_source(sources)
    sec = ctx.report.section(
        "summary", "Summary and assumptions",
        f"Mean makespan (s) of every policy for each model pair on the `{source}` acceptance source (the policy "
        f"comparison below has every source, intervals and more metrics), and each policy's change against "
        f"`{REFERENCE_POLICY}` "
        "(the paper's optimizer), paired by seed: negative is faster. Below it, what the scenario assumes.")
    table = policy_by_pair(cells, source, pairs=list(grid.pairs))
    sec.table("summary-policy-by-pair", table, title="Makespan by policy and pair",
              caption=f"{len(grid.seeds)} seed(s) per cell, K = {dict(grid.fixed).get('tasks', 'the preset’s')} "
                      "tasks; seconds and percent.")
    best = []
    for col in (c for c in table.columns if c.endswith(" makespan_s")):
        row = table.loc[table[col].idxmin()]
        best.append(f"`{col.removesuffix(' makespan_s')}`: `{row['policy']}` ({row[col]:.1f} s)")
    if best:
        sec.text("Fastest per pair: " + "; ".join(best) + ".")
    preset = grid.presets[0]
    sec.table("summary-assumptions", assumptions(preset, grid.pairs[0], grid.fixed),
              title=f"Scenario assumptions ({preset} preset)",
              caption="[P]: the paper's value or form; [A]: our assumption (the paper gives none); P/A: the paper's "
                      "fact with our value. `source` says whether the report config set the value. Other pairs "
                      "differ only in their model cards.", inline=True)
