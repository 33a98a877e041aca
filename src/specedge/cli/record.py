"""``specedge record …``: train the stdlib pair, record acceptance rounds and compute traces.

torch and transformers are imported inside the commands only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from specedge.cli import app

record_app = typer.Typer(help="Record real traces: train the stdlib pair, acceptance rounds, compute latency.", no_args_is_help=True)
app.add_typer(record_app, name="record")
console = Console(stderr=True)


class _Reporter:
    """A rich progress bar on a terminal; plain log lines (every ``every`` steps) otherwise (nohup, CI)."""

    def __init__(self, every: int = 25) -> None:
        self.every = every
        self.interactive = sys.stderr.isatty()
        self._progress = None
        self._tasks: dict[str, int] = {}
        self._started = time.perf_counter()

    def __enter__(self) -> "_Reporter":
        if self.interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"), console=console,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def __call__(self, name: str, done: int, total: int, info: dict) -> None:
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        if self._progress is not None:
            if name not in self._tasks:
                self._tasks[name] = self._progress.add_task(name, total=total, info="")
            self._progress.update(self._tasks[name], completed=done, info=text)
        elif done % self.every == 0 or done == total or "held_out_bits_per_byte" in info:
            elapsed = time.perf_counter() - self._started
            print(f"[{elapsed:7.1f}s] {name} {done}/{total} {text}", file=sys.stderr, flush=True)


@record_app.command("train-pair")
def train_pair_cmd(
    out: Path = typer.Option(Path("models/checkpoints"), "--out", help="Directory to write <name>/ checkpoints into."),
    seed: int = typer.Option(0, "--seed"),
    steps: int = typer.Option(1000, "--steps", help="Optimiser steps of the target."),
    draft_steps: int = typer.Option(1000, "--draft-steps", help="Optimiser steps of the draft."),
    batch_size: int = typer.Option(16, "--batch-size"),
    seq_len: int = typer.Option(256, "--seq-len"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (pinned and recorded)."),
) -> None:
    """Train the stdlib byte-level pair (target ~3.2M, draft ~0.36M parameters) on this CPU, seeded."""
    from specedge.record.train import TrainConfig, train_pair

    base = TrainConfig(batch_size=batch_size, seq_len=seq_len, torch_threads=threads, seed=seed)
    with _Reporter() as reporter:
        results = train_pair(out, seed=seed, target_steps=steps, draft_steps=draft_steps, base=base, progress=reporter)
    for r in results:
        console.print(
            f"{r.name}: {r.parameters:,} parameters, held-out {r.held_out_bits_per_byte:.3f} bits/byte, "
            f"{r.train_wall_s / 60:.1f} min"
        )


def _ints(text: str, option: str) -> tuple[int, ...]:
    from specedge.errors import InputError

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{option}: expected comma-separated integers, got {text!r}") from None
    if not values:
        raise InputError(f"{option}: expected at least one integer")
    return values


def compute_grid(batch_sizes: str, new_tokens: str, contexts: str, phases: str, repeats: int, warmup: int):
    """The ComputeGrid of the comma-separated ``--batch-sizes/--new-tokens/--contexts/--phases`` options."""
    from specedge.record.compute_trace import ComputeGrid

    return ComputeGrid(
        batch_sizes=_ints(batch_sizes, "--batch-sizes"), new_tokens=_ints(new_tokens, "--new-tokens"),
        context_tokens=_ints(contexts, "--contexts"), phases=tuple(p.strip() for p in phases.split(",") if p.strip()),
        repeats=repeats, warmup=warmup,
    )


def _write(frame, dataset_id: str, kind: str, metadata: dict, store_path: Path | None, replace: bool) -> None:
    from specedge.traces.store import open_store

    store = open_store(path=store_path)
    store.write(frame, dataset_id, kind=kind, metadata=metadata, replace=replace)
    console.print(f"wrote {kind} dataset [bold]{dataset_id}[/] ({len(frame):,} rows)")


@record_app.command("acceptance")
def acceptance_cmd(
    target: Path = typer.Option(..., "--target", help="Target checkpoint: a bytegpt or a transformers directory."),
    draft: Path = typer.Option(..., "--draft", help="Draft checkpoint (same vocabulary as the target)."),
    dataset: str = typer.Option(..., "--dataset", help="Dataset id to write, e.g. stdlib-bytegpt-3m-0.3m-t0."),
    temperature: float = typer.Option(0.0, "--temperature", "-T", help="0 = greedy; > 0 = speculative sampling."),
    gamma: int = typer.Option(12, "--gamma", "--drafted",
                              help="Draft tokens per round, the traces' drafted (record long: γ ≥ 10)."),
    max_new_tokens: int = typer.Option(160, "--max-new-tokens"),
    prompts: Path | None = typer.Option(None, "--prompts", help="Prompt file (.jsonl with 'prompt', or one per line)."),
    stdlib_prompts: int = typer.Option(256, "--stdlib-prompts", help="Without --prompts: held-out stdlib snippets."),
    prompt_chars: int = typer.Option(96, "--prompt-chars", help="Length of each stdlib snippet."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (pinned and recorded)."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32 / bf16 / fp16 / fp64"),
    licence: str = typer.Option("", "--licence", help="Licence of the prompts/outputs (recorded in metadata)."),
    note: str = typer.Option("", "--note"),
    store: Path | None = typer.Option(None, "--store", help="Trace store (default: $SPECEDGE_STORE or traces/)."),
    replace: bool = typer.Option(False, "--replace", help="Replace an existing dataset of that id."),
) -> None:
    """Run real speculative decoding on a draft/target pair and write one acceptance row per round."""
    import torch

    from specedge.record.lm import load_lm
    from specedge.record.prompts import load_prompt_file
    from specedge.record.prompts import stdlib_prompts as make_stdlib_prompts
    from specedge.record.recorder import LMDrafter, record_acceptance

    torch.set_num_threads(threads)
    target_lm, draft_lm = load_lm(target, dtype=dtype), load_lm(draft, dtype=dtype)
    if prompts is not None:
        prompt_list, source = load_prompt_file(prompts), f"prompt file {prompts}"
    else:
        prompt_list = make_stdlib_prompts(stdlib_prompts, prompt_chars=prompt_chars, seed=seed)
        source = (f"{stdlib_prompts} snippets of {prompt_chars} characters at line starts of held-out CPython "
                  f"stdlib files (specedge.record.prompts.stdlib_prompts, seed {seed})")
    with _Reporter(every=16) as reporter:
        rec = record_acceptance(
            target_lm, LMDrafter(draft_lm), prompt_list, dataset_id=dataset, gamma=gamma, temperature=temperature,
            max_new_tokens=max_new_tokens, seed=seed, licence=licence, note=note, prompt_source=source,
            progress=lambda done, total, info: reporter(dataset, done, total, info),
        )
    md = rec.metadata
    console.print(
        f"{dataset}: {md['rounds']:,} rounds over {len(prompt_list)} prompts, τ = {md['tau_mean_tokens_per_round']:.3f}, "
        f"draft acceptance ratio m = {md['draft_acceptance_ratio']:.3f}, {md['recording_wall_s']:.0f} s"
    )
    _write(rec.frame, dataset, "acceptance", md, store, replace)


@record_app.command("compute")
def compute_cmd(
    model: Path = typer.Option(..., "--model", help="Checkpoint: a bytegpt or a transformers directory."),
    dataset: str = typer.Option(..., "--dataset", help="Dataset id to write, e.g. compute-cpu-stdlib-bytegpt-3m."),
    batch_sizes: str = typer.Option("1,2,4,8,16", "--batch-sizes"),
    new_tokens: str = typer.Option("1,2,4,8,12,16", "--new-tokens", help="x of the verify phase."),
    contexts: str = typer.Option("64,256,1024", "--contexts", help="c of decode/verify; prompt length of prefill."),
    phases: str = typer.Option("prefill,decode,verify", "--phases"),
    repeats: int = typer.Option(10, "--repeats"),
    warmup: int = typer.Option(2, "--warmup"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (pinned and recorded)."),
    dtype: str = typer.Option("fp32", "--dtype"),
    device: str | None = typer.Option(None, "--device", help="Device id (default: cpu-<cpu model>-<threads>t)."),
    name: str | None = typer.Option(None, "--name", help="Model id in the trace (default: the directory name)."),
    seed: int = typer.Option(0, "--seed"),
    note: str = typer.Option("", "--note"),
    store: Path | None = typer.Option(None, "--store"),
    replace: bool = typer.Option(False, "--replace"),
    allow_noisy: bool = typer.Option(False, "--allow-noisy", help="Measure even when other processes take more "
                                     "than 5% of a core (sampled for 3 s first); recorded as foreign_work."),
) -> None:
    """Time forward passes (prefill, decode, verify) over a batch × new-token × context grid on this machine."""
    from specedge.record.compute_trace import measure_compute
    from specedge.record.lm import load_lm

    grid = compute_grid(batch_sizes, new_tokens, contexts, phases, repeats, warmup)
    lm = load_lm(model, name=name, dtype=dtype)
    from specedge.serve.quiet import gate_measurement

    quiet_before = gate_measurement(allow_noisy=allow_noisy, say=console.print)
    with _Reporter(every=1) as reporter:
        frame, md = measure_compute(
            lm, grid, dataset_id=dataset, device=device, threads=threads, seed=seed, note=note,
            progress=lambda done, total, info: reporter(dataset, done, total, info),
        )
    md["foreign_work"] = {"before": quiet_before}
    console.print(f"{dataset}: {len(frame):,} passes timed in {md['recording_wall_s']:.0f} s on {md['device']}")
    _write(frame, dataset, "compute", md, store, replace)


@record_app.command("fit-compute")
def fit_compute_cmd(
    dataset: str = typer.Argument(..., help="A compute dataset in the store."),
    card: str = typer.Option(..., "--card", help="Model card (models/cards/<name>.toml) of the traced model."),
    kv_bytes: float = typer.Option(4.0, "--kv-bytes", help="Bytes per KV value in the roofline's traffic (fp32: 4)."),
    store: Path | None = typer.Option(None, "--store"),
) -> None:
    """Fit the paper's affine compute model (and a roofline) to a compute trace, per phase: R², residuals."""
    from rich.table import Table

    from specedge.latency.cards import load_model_card
    from specedge.record.fit_report import compute_fit_table
    from specedge.traces.store import open_store

    frame = open_store(path=store).read(dataset)
    table = compute_fit_table(load_model_card(card), frame, kv_bytes_per_value=kv_bytes)
    out = Table(title=f"{dataset}: T = c1·b·F(x, c) + c2 vs roofline, per phase")
    for col in ("phase", "configs", "affine R²", "1/c1 GFLOP/s", "c2 ms", "median |rel res|", "max |rel res|",
                "roofline R²", "memory-bound share"):
        out.add_column(col)
    for r in table.itertuples():
        out.add_row(r.phase, str(r.configs), f"{r.affine_r2:.4f}", f"{r.effective_flops_per_s / 1e9:.2f}",
                    f"{r.c2_ms:.3f}", f"{r.median_abs_rel_residual:.1%}", f"{r.max_abs_rel_residual:.1%}",
                    f"{r.roofline_r2:.4f}", f"{r.roofline_memory_bound_share:.0%}")
    Console().print(out)
