"""`specedge serve-real --arrivals poisson` end to end on the tiny pair: a real online run, what it records
(conservation, causality, FCFS continuous batching as docs/online.md says) and its prediction by the online
simulator (`specedge fidelity` on it)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from specedge.cli import main
from specedge.serve.dataset import split_records
from specedge.traces.store import open_store

from .tiny import PAIR, RUN_ID, SETS

N, RATE, L, BMAX, SEED = 6, 200.0, 3, 2, 0
ONLINE_ID = "run-online-tiny"


@pytest.fixture(scope="module")
def online_run(tiny_run, tmp_path_factory):
    """The tiny pair served online once, in a copy of the tiny run's store (its compute traces are reused)."""
    store = tmp_path_factory.mktemp("online") / "store"
    shutil.copytree(tiny_run["store"], store)
    traces = open_store(store).info(RUN_ID).metadata["compute_traces"]
    args = ["serve-real", "--pair", PAIR, "--arrivals", "poisson", "--rate", str(RATE), "--requests", str(N),
            "--seed", str(SEED), "--online-policy", "fcfs", "--speculation-length", str(L), "--max-batch-size",
            str(BMAX), "--checkpoints", str(tiny_run["root"] / "checkpoints"), "--store", str(store), "--dataset",
            ONLINE_ID, "--compute-traces", f"{traces['draft']},{traces['verify']}", "--cores", "none",
            "--quiet-sample-s", "0.2", "--allow-noisy"]
    for s in SETS:
        args += ["--set", s]
    assert main(args) == 0
    st = open_store(store)
    return {"store": store, "info": st.info(ONLINE_ID), "parts": split_records(st.read(ONLINE_ID)),
            "tasks": st.read(ONLINE_ID).query("record == 'task'").sort_values("task").reset_index(drop=True)}


def test_the_workload_and_uplink_are_the_online_simulators(online_run):
    from specedge.online import workload as wl
    from specedge.serve.online_run import upload_ends
    from specedge.serve.workload import build_scenario

    md = online_run["info"].metadata
    sets = dict(s.split("=") for s in SETS)
    sc = build_scenario(PAIR, tasks=1, seed=SEED, **{k: int(v) for k, v in sets.items()})
    w = wl.synthetic(sc.params, arrivals="poisson", rate_rps=RATE, num_requests=N, seed=SEED)
    assert np.array_equal(md["online"]["arrival_s"], w.arrival_s)
    t = online_run["tasks"]
    assert np.array_equal(t["input_tokens"], w.input_tokens) and np.array_equal(t["output_tokens"], w.output_tokens)
    assert np.allclose(t["upload_s"], upload_ends(sc, w, "equal-share"), rtol=0, atol=1e-12)
    assert md["online"]["config"] == {"num_slots": 2, "max_batch_size": BMAX, "uplink_rule": "equal-share",
                                      "mode": "sd-pipeline"}
    assert md["online"]["policy"] == "fcfs" and md["online"]["speculation_length"] == L
    assert isinstance(md["foreign_work"]["noisy"], bool) and "plan" not in md
    assert all(set(md["speed_probe"][role]) == {"before", "after"} for role in ("draft", "verify"))


def test_conservation_and_causality(online_run):
    t, parts = online_run["tasks"], online_run["parts"]
    arrival = np.asarray(online_run["info"].metadata["online"]["arrival_s"])
    rounds, jobs = parts["round"], parts["job"]
    # every request once, completed; its rounds commit exactly its output tokens, all in one slot
    assert t["task"].tolist() == list(range(N))
    assert rounds.groupby("task")["tokens"].sum().sort_index().tolist() == t["output_tokens"].tolist()
    assert (rounds.groupby("task")["batch"].nunique() == 1).all()
    assert rounds.groupby("task").size().sort_index().tolist() == t["round"].tolist()
    assert (rounds.groupby("task")["batch"].first().sort_index().to_numpy() == t["batch"].to_numpy()).all()
    # a request's rounds are consecutive jobs of its slot (it never skips one while a member)
    for _, r in rounds.groupby("task"):
        assert (np.diff(np.sort(r["round"].to_numpy())) == 1).all()
    # arrival <= upload end <= arrival at the draft node <= admission < first token <= completion
    eps = 1e-6
    assert (arrival <= t["upload_s"] + 1e-12).all()
    assert (t["upload_s"] <= t["ready_s"] + eps).all()
    assert (t["ready_s"] <= t["start_s"] + eps).all()
    assert (t["start_s"] < t["first_token_s"]).all() and (t["first_token_s"] <= t["completion_s"]).all()
    # first token = the end of the request's first verification round, completion = its last
    ends = rounds.sort_values("round").groupby("task")["end_s"]
    assert np.array_equal(ends.first().sort_index().to_numpy(), t["first_token_s"].to_numpy())
    assert np.array_equal(ends.last().sort_index().to_numpy(), t["completion_s"].to_numpy())
    # batches: at most max_batch_size; the verify job's batch size = its members' round rows
    v = jobs[jobs["node"] == "verify"].set_index(["batch", "round"]).sort_index()
    members = rounds.groupby(["batch", "round"]).size().reindex(v.index)
    assert (v["batch_size"] == members).all() and v["batch_size"].max() <= BMAX
    # FCFS: requests join in upload-end order (admission times never decrease in that order)
    order = np.argsort(t["upload_s"].to_numpy(), kind="stable")
    assert (np.diff(t["start_s"].to_numpy()[order]) >= -eps).all()
    # the round boundary: a slot's next draft job starts after its previous verification's result was known
    d = jobs[jobs["node"] == "draft"].set_index(["batch", "round"]).sort_index()
    verified = rounds.groupby(["batch", "round"])["end_s"].max()
    later = [(m, n) for m, n in d.index if n > 0 and (m, n - 1) in verified.index]
    assert later and (d.loc[later, "start_s"].to_numpy()
                      >= verified.loc[[(m, n - 1) for m, n in later]].to_numpy() - eps).all()
    # and a verification starts after its draft job's last pass
    last_pass = parts["pass"].query("node == 'draft'").groupby(["batch", "round"])["end_s"].max()
    assert (v["start_s"].to_numpy() >= last_pass.reindex(v.index).to_numpy() - eps).all()


def test_joiners_prefill_and_continuing_members_decode(online_run):
    parts, t = online_run["parts"], online_run["tasks"]
    passes, rounds = parts["pass"], parts["round"]
    draft = passes[passes["node"] == "draft"]
    first = rounds.sort_values("round").groupby("task").first()
    joins = first.groupby(["batch", "round"]).size()
    prefills = draft[draft["phase"] == "prefill"].groupby(["batch", "round"]).size()
    # one prefill pass per job with joiners, over exactly its joiners
    assert prefills.index.tolist() == joins.index.tolist() and (prefills == 1).all()
    pre = draft[draft["phase"] == "prefill"].set_index(["batch", "round"])["batch_size"]
    assert (pre.loc[joins.index] == joins).all()
    # per job: l passes for the continuing members, l for the joiners (a prefill + l - 1 decodes)
    per_job = draft.groupby(["batch", "round"]).size()
    conts = rounds.groupby(["batch", "round"]).size().sub(joins, fill_value=0)
    want = (conts > 0).astype(int) * L + joins.reindex(per_job.index, fill_value=0).gt(0).astype(int) * L
    assert (per_job == want.reindex(per_job.index)).all()
    assert t["round"].sum() == len(rounds)


def test_fidelity_of_the_online_run_keeps_the_static_contract(online_run, capsys):
    capsys.readouterr()
    assert main(["fidelity", ONLINE_ID, "--store", str(online_run["store"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run"] == ONLINE_ID and out["online"] is True and isinstance(out["noisy"], bool)
    assert "foreign_work" in out and out["best_predictor"] in out["predictors"]
    for name in ("affine", "roofline", "measured"):
        row = out["predictors"][name]
        for key in ("median_task_error", "p90_task_error", "makespan_error", "median_ttft_error", "ks_statistic",
                    "ks_pvalue"):
            assert np.isfinite(row[key]) and row[key] >= 0
        assert row["rounds_match"] is True  # the simulator replays every request's own rounds
    assert np.isfinite(out["predictors"]["stage-times"]["median_task_error"])  # the measured jobs, recursed
    # the text table works on an online run too
    assert main(["fidelity", ONLINE_ID, "--store", str(online_run["store"])]) == 0
    assert "replay vs real run" in capsys.readouterr().out


def test_online_runs_refuse_a_plan_and_other_acceptance(online_run, tiny_run, capsys):
    base = ["serve-real", "--pair", PAIR, "--arrivals", "poisson", "--store", str(online_run["store"]),
            "--cores", "none", "--checkpoints", str(tiny_run["root"] / "checkpoints")]
    capsys.readouterr()
    assert main(base + ["--policy", "max-batching"]) == 2
    assert "has no plan" in capsys.readouterr().err
    assert main(base + ["--online-policy", "smartspec", "--allow-noisy"]) == 2
    assert "cannot be served for real" in capsys.readouterr().err
    assert main(base + ["--config", "ttft_slo_s=1"]) == 2
    assert "a real online run takes" in capsys.readouterr().err
    assert main(["fidelity", ONLINE_ID, "--store", str(online_run["store"]), "--acceptance", "x"]) == 2
    assert "observed" in capsys.readouterr().err


def test_an_online_run_measures_its_own_compute_traces_steady(tiny_run, tmp_path):
    """--measure-compute on an online run: a grid over the workload's shapes, timed as --grid-mode says, named by
    the run (functional only: a tiny grid, no timing asserted)."""
    store = tmp_path / "store"
    args = ["serve-real", "--pair", PAIR, "--arrivals", "poisson", "--rate", str(RATE), "--requests", "3",
            "--seed", str(SEED), "--online-policy", "fcfs", "--speculation-length", "2", "--max-batch-size", "2",
            "--checkpoints", str(tiny_run["root"] / "checkpoints"), "--store", str(store), "--dataset", "run-m",
            "--measure-compute", "--compute-repeats", "1", "--grid-mode", "steady", "--cores", "none",
            "--quiet-sample-s", "0.2", "--allow-noisy"]
    for s in SETS:
        args += ["--set", s]
    assert main(args) == 0
    st = open_store(store)
    traces = st.info("run-m").metadata["compute_traces"]
    for role in ("draft", "verify"):
        meta = st.info(traces[role]).metadata
        assert meta["grid_mode"] == "steady" and "shape_switch" in meta
        assert set(st.read(traces[role])["phase"]) == {"prefill", "decode", "verify"}


def test_the_memory_rule_is_the_online_kernels():
    from specedge.online.kernel import _fits
    from specedge.serve.online_nodes import fits

    rng = np.random.default_rng(0)
    for _ in range(200):
        mem = (float(rng.uniform(0, 1e6)), float(rng.uniform(1, 1e3)), float(rng.uniform(1e6, 5e7)))
        n, pad, omax, inp, out = (int(rng.integers(0, 30)), float(rng.integers(0, 200)), float(rng.integers(0, 300)),
                                  int(rng.integers(1, 200)), int(rng.integers(1, 300)))
        assert fits(mem, n, pad, omax, inp, out) == bool(_fits(np.asarray(mem), n, pad, omax, inp, out))


def test_appended_cache_rows_give_each_sequence_its_own_logits(tiny_run):
    """Joiners' cache rows appended to a running batch: the next pass equals each sequence run alone."""
    torch = pytest.importorskip("torch")
    from specedge.serve.engine import ragged_engine
    from specedge.serve.online_nodes import merge_caches
    from specedge.serve.workload import ModelSource, load_model

    from .tiny import TARGET

    lm = load_model(ModelSource(TARGET, "path", str(tiny_run["root"] / "checkpoints" / TARGET)))
    eng = ragged_engine(lm)
    gen = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, 256, (n,), generator=gen) for n in (5, 9, 7)]
    with torch.no_grad():
        a = eng.new_cache(1, 16)  # a running member, capacity 16
        eng.forward(seqs[0][None, :-1], torch.tensor([4]), a)
        b = eng.new_cache(2, 32)  # two joiners, prefilled left-padded together
        toks = torch.zeros((2, 8), dtype=torch.int64)
        toks[0, 8 - 8:] = seqs[1][:8]
        toks[1, 8 - 6:] = seqs[2][:6]
        eng.forward(toks, torch.tensor([8, 6]), b)
        merged = merge_caches(a, b)
        nxt = torch.stack([seqs[0][-1:], seqs[1][-1:], seqs[2][6:7]])
        out = eng.forward(nxt, torch.tensor([1, 1, 1]), merged)
        for i, (s, upto) in enumerate(((seqs[0], 5), (seqs[1], 9), (seqs[2], 7))):
            alone = eng.new_cache(1, 16)
            ref = eng.forward(s[None, :upto], torch.tensor([upto]), alone)[0, -1]
            assert torch.allclose(out[i, 0], ref, atol=1e-5), i
