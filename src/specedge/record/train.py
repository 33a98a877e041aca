"""The seeded CPU training recipe of the stdlib byte-level pair (``specedge record train-pair``).

Both models see the same byte windows in the same order (one numpy Generator seeded with ``seed``), are trained
with AdamW and a linear-warm-up cosine schedule under bf16 autocast (fp32 master weights), on
``torch_threads`` CPU threads. Held-out bits/byte is the mean next-byte cross-entropy in bits over fixed
held-out windows (drawn with ``seed + 1``), measured in fp32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from specedge.record.bytegpt import ByteGPT, ByteGPTConfig, save_bytegpt
from specedge.record.corpus import Corpus, load_corpus

TARGET_NAME = "stdlib-bytegpt-3m"
DRAFT_NAME = "stdlib-bytegpt-0.3m"
TARGET_CONFIG = ByteGPTConfig(d_model=256, n_layer=4, n_head=8)
"""About 3.2M parameters."""
DRAFT_CONFIG = ByteGPTConfig(d_model=96, n_layer=3, n_head=3)
"""About 0.36M parameters."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe. steps × batch_size × seq_len bytes are seen (with replacement)."""

    steps: int = 1000
    batch_size: int = 16
    seq_len: int = 256
    lr_peak: float = 2e-3
    lr_final_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    bf16_autocast: bool = True
    seed: int = 0
    torch_threads: int = 1
    eval_windows: int = 256
    eval_every: int = 250


@dataclass(frozen=True)
class TrainResult:
    name: str
    parameters: int
    held_out_bits_per_byte: float
    final_train_loss_bits: float
    train_wall_s: float
    history: tuple[tuple[int, float], ...]  # (step, held-out bits/byte)


Progress = Callable[[str, int, int, dict], None]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to lr_peak, then cosine decay to lr_peak * lr_final_ratio at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr_peak * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    floor = cfg.lr_peak * cfg.lr_final_ratio
    return floor + 0.5 * (cfg.lr_peak - floor) * (1.0 + math.cos(math.pi * min(1.0, frac)))


def sample_windows(data: np.ndarray, count: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    """``count`` random windows of ``length`` bytes as a (count, length) int64 tensor."""
    starts = rng.integers(0, data.size - length, size=count)
    idx = starts[:, None] + np.arange(length)[None, :]
    return torch.from_numpy(data[idx].astype(np.int64))


@torch.no_grad()
def bits_per_byte(model: ByteGPT, windows: torch.Tensor, chunk: int = 32) -> float:
    """Mean next-byte cross-entropy in bits over the windows (fp32, eval mode)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, windows.shape[0], chunk):
        w = windows[i : i + chunk]
        logits = model(w[:, :-1])
        total += F.cross_entropy(logits.flatten(0, 1).float(), w[:, 1:].flatten(), reduction="sum").item()
        count += w[:, 1:].numel()
    model.train(was_training)
    return total / count / math.log(2)


def train_model(
    name: str,
    model_cfg: ByteGPTConfig,
    cfg: TrainConfig,
    corpus: Corpus,
    progress: Progress | None = None,
) -> tuple[ByteGPT, TrainResult]:
    """Train one model from scratch on the corpus's training bytes; deterministic given cfg.seed."""
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    model = ByteGPT(model_cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr_peak,
        betas=cfg.betas,
    )
    rng = np.random.default_rng(cfg.seed)
    eval_windows = sample_windows(corpus.held_out_bytes, cfg.eval_windows, cfg.seq_len + 1, np.random.default_rng(cfg.seed + 1))
    history: list[tuple[int, float]] = []
    loss_bits = float("nan")
    started = time.perf_counter()
    model.train()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = sample_windows(corpus.train_bytes, cfg.batch_size, cfg.seq_len + 1, rng)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16_autocast):
            logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        loss_bits = loss.item() / math.log(2)
        info: dict = {"train_bits": loss_bits, "lr": lr_at(step, cfg)}
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            bpb = bits_per_byte(model, eval_windows)
            history.append((step + 1, bpb))
            info["held_out_bits_per_byte"] = bpb
        if progress is not None:
            progress(name, step + 1, cfg.steps, info)
    wall_s = time.perf_counter() - started
    model.eval()
    result = TrainResult(
        name=name,
        parameters=model.num_parameters(),
        held_out_bits_per_byte=history[-1][1] if history else bits_per_byte(model, eval_windows),
        final_train_loss_bits=loss_bits,
        train_wall_s=wall_s,
        history=tuple(history),
    )
    return model, result


def train_pair(
    out_dir: Path,
    seed: int = 0,
    target_steps: int = 1000,
    draft_steps: int = 1000,
    base: TrainConfig | None = None,
    progress: Progress | None = None,
    corpus: Corpus | None = None,
) -> list[TrainResult]:
    """Train the stdlib target then draft and save them under ``out_dir/<name>/``."""
    base = base or TrainConfig()
    corpus = corpus or load_corpus()
    results = []
    for name, model_cfg, steps in ((TARGET_NAME, TARGET_CONFIG, target_steps), (DRAFT_NAME, DRAFT_CONFIG, draft_steps)):
        cfg = replace(base, steps=steps, seed=seed)
        model, result = train_model(name, model_cfg, cfg, corpus, progress)
        training = {
            "recipe": "specedge.record.train.train_pair",
            "train_config": asdict(cfg),
            "corpus": corpus.describe(),
            "result": {k: v for k, v in asdict(result).items() if k != "history"},
            "history": [list(h) for h in result.history],
            "torch": torch.__version__,
        }
        save_bytegpt(model, Path(out_dir) / name, extra=training)
        results.append(result)
    return results
