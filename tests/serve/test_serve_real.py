"""`specedge serve-real` end to end on a tiny random pair: what the run records, and bad input."""

from __future__ import annotations

import json

import numpy as np

from specedge.cli import main
from specedge.serve.dataset import split_records
from specedge.traces.store import open_store

from .tiny import NUM_TASKS, PAIR, RUN_ID, SETS, plan_file


def test_the_run_records_tasks_jobs_passes_and_rounds(tiny_run):
    store = open_store(tiny_run["store"])
    info = store.info(RUN_ID)
    assert info.kind == "run" and info.source == "recorded"
    md = info.metadata
    assert md["pair"] == PAIR and md["plan"]["batches"] == [[0, 1], [2]] and len(md["plan_sha256"]) == 64
    assert md["draft_weights_sha256"] != md["target_weights_sha256"]
    assert len(md["load_average_before"]) == 3 and md["cpu_model"] and md["date"]
    assert set(md["compute_traces"]) == {"draft", "verify"}
    for role in ("draft", "verify"):
        assert md["nodes"][role]["torch_threads"] == 1
        assert store.info(md["compute_traces"][role]).kind == "compute"
    parts = split_records(store.read(RUN_ID))
    tasks = parts["task"].sort_values("task")
    assert tasks["task"].tolist() == list(range(NUM_TASKS))
    # uploads arrive no earlier than scheduled; first token after arrival; completion after first token
    assert (tasks["ready_s"] >= tasks["upload_s"] - 1e-6).all()
    assert (tasks["first_token_s"] >= tasks["ready_s"]).all()
    assert (tasks["completion_s"] >= tasks["first_token_s"]).all()
    rounds = parts["round"]
    committed = rounds.groupby("task")["tokens"].sum().sort_index()
    assert committed.tolist() == tasks["output_tokens"].tolist()
    assert (rounds["accepted"] <= rounds["drafted"]).all()
    assert rounds.groupby("task")["round"].max().add(1).tolist() == tasks["round"].tolist()
    assert set(rounds.loc[rounds["batch"] == 0, "drafted"]) == {3}
    assert set(rounds.loc[rounds["batch"] == 1, "drafted"]) == {2}
    passes = parts["pass"]
    draft, verify = passes[passes["node"] == "draft"], passes[passes["node"] == "verify"]
    assert set(draft["phase"]) == {"prefill", "decode"} and set(verify["phase"]) == {"verify"}
    assert (draft["phase"] == "prefill").sum() == 2  # one per batch, round 0
    assert (passes["end_s"] > passes["start_s"]).all()
    assert (passes["cpu_s"] > 0).all()  # the node thread's CPU time during each pass
    usage = md["cpu_usage"]
    assert set(usage["nodes"]) == {"draft", "verify"} and usage["window_s"] > 0
    assert all(u["process_cpu_s"] > 0 for u in usage["nodes"].values())
    # each node's speed probe before and after serving, and each compute trace's before and after its grid
    probes = md["speed_probe"]
    for role, shape in (("draft", (1, 1)), ("verify", (4, 5))):
        assert set(probes[role]) == {"before", "after"}
        trace = store.info(md["compute_traces"][role]).metadata["speed_probe"]
        assert set(trace) == {"before", "after"} and trace["before"]["at_s"] < trace["after"]["at_s"]
        for p in (*probes[role].values(), *trace.values()):
            assert (p["shape"]["batch_size"], p["shape"]["new_tokens"]) == shape and p["passes"] >= 5
        assert probes[role]["before"]["at_s"] < probes[role]["after"]["at_s"]
    # one verify pass per verification round of each batch; each draft job is l passes
    jobs = parts["job"]
    assert len(verify) == (jobs["node"] == "verify").sum() == rounds.groupby(["batch", "round"]).ngroups
    per_job = draft.groupby(["batch", "round"]).size()
    assert (per_job.xs(0, level="batch") == 3).all() and (per_job.xs(1, level="batch") == 2).all()
    # finished members leave: batch sizes never grow, the first round has the whole batch
    b0 = verify[verify["batch"] == 0].sort_values("round")["batch_size"].to_numpy()
    assert b0[0] == 2 and (np.diff(b0) <= 0).all()
    # the pipeline: verification of a job starts after its last draft pass ended (same clock), and a batch's next
    # drafting starts after its verification result was sent
    last_draft = draft.groupby(["batch", "round"])["end_s"].max()
    v = jobs[jobs["node"] == "verify"].set_index(["batch", "round"]).loc[last_draft.index]
    assert (v["start_s"].to_numpy() >= last_draft.to_numpy()).all()
    d = jobs[jobs["node"] == "draft"].set_index(["batch", "round"])
    later = [(b, r) for b, r in d.index if r > 0]
    prev = [(b, r - 1) for b, r in later]
    assert (d.loc[later, "ready_s"].to_numpy() >= jobs[jobs["node"] == "verify"].set_index(["batch", "round"])
            .loc[prev, "start_s"].to_numpy()).all()


def test_serve_real_json_summary_and_bad_input(tiny_run, tmp_path, capsys):
    root = tiny_run["root"]
    base = ["serve-real", "--pair", PAIR, "--tasks", str(NUM_TASKS), "--checkpoints", str(root / "checkpoints"),
            "--store", str(tmp_path / "s"), "--cores", "none"]
    for s in SETS:
        base += ["--set", s]
    capsys.readouterr()
    assert main(base) == 2  # neither --plan nor --policy
    assert "exactly one of --plan" in capsys.readouterr().err
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"batches": [[0, 1]], "speculation_length": 2, "bandwidth_hz": [1e5] * 3}))
    assert main(base + ["--plan", str(missing)]) == 2
    assert "task(s) are in no batch" in capsys.readouterr().err
    ad = tmp_path / "ad.json"
    ad.write_text(json.dumps({"batches": [[0, 1, 2]], "speculation_length": 2, "bandwidth_hz": [1e5] * 3,
                              "mode": "ad"}))
    assert main(base + ["--plan", str(ad)]) == 2
    assert "cannot be served for real" in capsys.readouterr().err
    assert main(base + ["--plan", str(plan_file(tmp_path / "p.json")), "--checkpoints", str(tmp_path)]) == 2
    assert "checkpoint of" in capsys.readouterr().err
    assert main(base + ["--plan", str(plan_file(tmp_path / "p.json")), "--cores", "0,999"]) == 2
    assert "core 999 is not available" in capsys.readouterr().err
    for flag in ("--grid-mode", "--measure-mode"):  # refused before the cores are sampled or a model is loaded
        assert main(base + ["--plan", str(plan_file(tmp_path / "p.json")), "--measure-compute", flag, "x"]) == 2
        assert f"{flag} 'x': expected one of" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() or not any(i.kind == "compute" for i in open_store(tmp_path / "s").list())


def test_policy_plans_on_the_pairs_compute_traces(tiny_run, capsys):
    root = tiny_run["root"]
    args = ["serve-real", "--pair", PAIR, "--policy", "max-batching", "--tasks", str(NUM_TASKS), "--acceptance",
            "expected", "--checkpoints", str(root / "checkpoints"), "--store", str(tiny_run["store"]), "--dry-run",
            "--json"]
    for s in SETS:
        args += ["--set", s]
    capsys.readouterr()
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert sorted(i for b in plan["batches"] for i in b) == list(range(NUM_TASKS))
    assert plan["meta"]["policy"] and set(plan["meta"]["planned_with"]) == {"acceptance", "draft", "verify"}


def test_a_pair_written_target_first_is_read_as_draft_target(capsys):
    from specedge.cli.serve import _pair

    assert _pair("stdlib-bytegpt-3m/stdlib-bytegpt-0.3m") == "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m"
    assert "serving stdlib-bytegpt-0.3m as the draft" in capsys.readouterr().err
    assert _pair("stdlib-bytegpt-0.3m/stdlib-bytegpt-3m") == "stdlib-bytegpt-0.3m/stdlib-bytegpt-3m"


def test_a_sampled_run_at_temperature_one(tiny_run, tmp_path):
    """T = 1: draft distributions travel with the tokens and each task has its own generators."""
    root = tiny_run["root"]
    args = ["serve-real", "--pair", PAIR, "--plan", str(tiny_run["plan"]), "--tasks", str(NUM_TASKS), "-T", "1",
            "--checkpoints", str(root / "checkpoints"), "--store", str(tmp_path / "s"), "--dataset", "run-t1",
            "--cores", "none"]
    for s in SETS:
        args += ["--set", s]
    assert main(args) == 0
    store = open_store(tmp_path / "s")
    md = store.info("run-t1").metadata
    assert md["temperature"] == 1.0 and "speculative sampling" in md["sampler"]
    assert "q sent" in md["pipe"]["message"]
    parts = split_records(store.read("run-t1"))
    rounds, tasks = parts["round"], parts["task"].sort_values("task")
    assert rounds.groupby("task")["tokens"].sum().sort_index().tolist() == tasks["output_tokens"].tolist()


def test_a_plan_made_for_another_scenario_is_refused(tiny_run, tmp_path, capsys):
    """A plan records the scenario (pair, K) it was made for; serve-real refuses another one with one line."""
    root = tiny_run["root"]
    base = ["serve-real", "--pair", PAIR, "--tasks", str(NUM_TASKS), "--checkpoints", str(root / "checkpoints"),
            "--store", str(tmp_path / "s"), "--cores", "none", "--dry-run"]
    for s in SETS:
        base += ["--set", s]
    plan = json.loads(plan_file(tmp_path / "p.json").read_text())
    for made, words in (({"pair": "llama-68m/llama-7b", "tasks": NUM_TASKS}, "pair llama-68m/llama-7b in the plan"),
                        ({"pair": PAIR, "tasks": NUM_TASKS + 5}, f"K {NUM_TASKS + 5} in the plan, {NUM_TASKS} here")):
        path = tmp_path / "other.json"
        path.write_text(json.dumps({**plan, "scenario": made}))
        capsys.readouterr()
        assert main(base + ["--plan", str(path)]) == 2
        err = capsys.readouterr().err
        assert "made for another scenario" in err and words in err and len(err.strip().splitlines()) == 1
    path.write_text(json.dumps({**plan, "scenario": {"pair": PAIR, "tasks": NUM_TASKS}}))
    assert main(base + ["--plan", str(path)]) == 0  # a matching record is served
