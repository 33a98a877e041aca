"""The draft node and the verify node keep each other's caches in step (specedge.serve.draft_node / verify_node).

At T = 0 the verify node commits the target's greedy tokens whatever it is sent, so a draft node whose cache fell
out of step (a wrong accepted count sent back, a bonus token not fed) still yields a well-formed run; only the
acceptance and the draft node's passes show it. Served with the target as its own draft, every draft is accepted,
so each later draft job first feeds two tokens (the last draft, never fed, and the bonus token) on a cache one
token behind the verify node's.
"""

from __future__ import annotations

from specedge.cli import main
from specedge.serve.dataset import split_records
from specedge.traces.store import open_store

from .tiny import NUM_TASKS, SETS, TARGET


def test_a_draft_identical_to_the_target_has_every_draft_accepted(tiny_run, tmp_path):
    root = tiny_run["root"]
    args = ["serve-real", "--pair", f"{TARGET}/{TARGET}", "--plan", str(tiny_run["plan"]), "--tasks",
            str(NUM_TASKS), "--seed", "0", "--checkpoints", str(root / "checkpoints"), "--store",
            str(tmp_path / "s"), "--dataset", "run-self", "--cores", "none", "--allow-noisy",
            "--quiet-sample-s", "0.2"]
    for s in SETS:
        args += ["--set", s]
    assert main(args) == 0
    parts = split_records(open_store(tmp_path / "s").read("run-self"))
    rounds, tasks = parts["round"], parts["task"].sort_values("task")
    assert rounds.groupby("task")["tokens"].sum().sort_index().tolist() == tasks["output_tokens"].tolist()
    assert (rounds["accepted"] == rounds["drafted"]).all(), rounds[["task", "round", "drafted", "accepted"]]
    passes = parts["pass"].sort_values("start_s")
    first = passes[passes["node"] == "draft"].groupby(["batch", "round"]).first()
    verify = passes[passes["node"] == "verify"].set_index(["batch", "round"])
    later = first.index[first.index.get_level_values("round") > 0]
    assert len(later) > 0
    assert (first.loc[later, "new_tokens"] == 2).all(), first.loc[later]
    assert (first.loc[later, "context_tokens"] == verify.loc[later, "context_tokens"] - 1).all()
