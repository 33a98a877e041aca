"""Distil a small draft for a causal-LM teacher from the teacher's own generations, on CPU
(``specedge record distill-draft``; the teacher used here is SmolLM2-135M-Instruct).

Recipe (every number is a field of :class:`DistillConfig` or of the draft's :class:`ByteGPTConfig`):

1. **Instructions**: ``prompts`` templated instructions (:func:`distillation_instructions`: code, maths,
   rewriting, QA, lists, writing; seeded), none equal to an instruction of the evaluation set, each wrapped in the
   teacher's chat template.
2. **Corpus**: the teacher generates ``max_new_tokens`` tokens (stopping at its end-of-sequence token) for
   ``gen_batch`` instructions at a time (left-padded, ``transformers`` ``generate``); every ``sample_every``-th
   batch samples at T = 1 (torch seeded with ``seed`` + batch index), the others decode greedily. At each
   generated position the teacher's ``top_k`` logits and the log-sum-exp of all its logits are kept, so the
   kept probabilities are exact and the rest of the mass is known (``1 − Σ top-k``).
3. **Draft**: the project's GPT (:class:`specedge.record.bytegpt.ByteGPT`: pre-LayerNorm, RoPE, GELU MLP, tied
   input/output embedding) with the teacher's vocabulary. With ``embedding_init = "teacher-svd"`` its embedding
   starts as the teacher's embedding projected on its top ``d_model`` right singular vectors (uncentred), so
   tokens the corpus never shows still start meaningful.
4. **Loss** at every generated position: the cross-entropy of the draft's distribution against the teacher's,
   both coarsened to top-k bins plus one tail bin: −Σ_k p_k log q_k − p_tail log q_tail (equal to the KL
   between the coarsened distributions up to a constant). Prompt positions carry no loss.
5. **Training**: AdamW, linear warm-up then cosine decay, ``batch_size`` sequences per step drawn with
   replacement (numpy Generator seeded with ``seed``) from the training split; ``held_out_fraction`` of the
   sequences (a seeded shuffle) are held out. Held-out metrics: agreement of the draft's argmax with the
   teacher's (the T = 0 acceptance of one position), Σ_k min(p_k, q_k) over the teacher's top-k (a lower bound on
   the T = 1 acceptance Σ min(p, q) of one position), and the binned cross-entropy.
6. **Checkpoint**: ``config.json`` (bytegpt format, plus the recipe, corpus statistics and results) and
   ``model.pt`` with the weights stored in ``checkpoint_dtype`` (fp16 keeps a 49152 × 128 embedding under
   15 MB); it loads back in fp32 with :func:`load_draft`.

Threads: ``torch_threads`` (default 1) for generation and training alike.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from specedge.errors import InputError
from specedge.record.bytegpt import CONFIG_FILE, WEIGHTS_FILE, ByteGPT, ByteGPTConfig, load_bytegpt
from specedge.record.lm import ByteGPTLM, dtype_name, sha256_file

Progress = Callable[[str, int, int, dict], None]

DRAFT_ARCH = ByteGPTConfig(d_model=128, n_layer=4, n_head=4, vocab_size=49152)
"""The SmolLM2 draft's shape: ~7.1M parameters, 6.3M of them the tied 49152 × 128 embedding (fp16: 14.2 MB)."""


@dataclass(frozen=True)
class DistillConfig:
    """The distillation recipe; see the module docstring for what each step does."""

    seed: int = 0
    prompts: int = 768
    max_new_tokens: int = 96
    gen_batch: int = 32
    sample_every: int = 2  # batch index % sample_every == sample_every - 1 samples at T = 1; 0 = all greedy
    top_k: int = 32
    held_out_fraction: float = 0.1
    steps: int = 500
    batch_size: int = 16
    lr_peak: float = 4e-3
    lr_final_ratio: float = 0.1
    warmup_steps: int = 30
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    embedding_init: str = "teacher-svd"  # or "random"
    embedding_init_std: float = 0.02  # the SVD projection is rescaled to this overall std (ByteGPT's init std)
    bf16_autocast: bool = True  # training forward under bf16 autocast (fp32 master weights, fp32 loss)
    checkpoint_dtype: str = "fp16"
    torch_threads: int = 1
    eval_every: int = 100

    def __post_init__(self) -> None:
        if self.embedding_init not in ("teacher-svd", "random"):
            raise InputError(f"embedding_init must be 'teacher-svd' or 'random', got {self.embedding_init!r}")
        if self.checkpoint_dtype not in ("fp16", "bf16", "fp32"):
            raise InputError(f"checkpoint_dtype must be fp16, bf16 or fp32, got {self.checkpoint_dtype!r}")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise InputError(f"held_out_fraction must be in (0, 1), got {self.held_out_fraction}")
        for name in ("prompts", "max_new_tokens", "gen_batch", "top_k", "steps", "batch_size", "torch_threads"):
            if getattr(self, name) < 1:
                raise InputError(f"DistillConfig.{name} must be >= 1, got {getattr(self, name)}")


# --- 1. instructions ----------------------------------------------------------------------------------------

_LANGS = ("Python", "JavaScript", "Java", "C", "Go", "Rust", "TypeScript", "Ruby")
_CODE_TASKS = (
    "computes the sum of the digits of a number", "returns the minimum of a list", "checks whether a list is sorted",
    "reverses the order of the words in a sentence", "counts the occurrences of a character in a string",
    "finds the median of a list of numbers", "removes all whitespace from a string",
    "returns the last n elements of a list", "computes the power of a number without a built-in function",
    "returns the index of an element in a list or -1", "merges two dictionaries", "converts minutes to hours and "
    "minutes", "calculates the area of a triangle from its base and height", "returns the longest word in a sentence",
    "checks whether a string contains only digits", "computes the dot product of two vectors",
    "rotates a list by k positions", "finds the missing number in a list of the numbers from 1 to n",
    "returns the common prefix of two strings", "converts a decimal number to binary",
    "checks whether the brackets in a string are balanced", "computes the cumulative sum of a list",
    "returns the unique elements of a list", "calculates compound interest", "implements insertion sort",
    "counts the words in a text", "checks whether a number is a perfect square", "returns the n-th triangular number",
    "capitalises every other letter of a string", "computes the mean and standard deviation of a list",
)
_SENTENCES = (
    "The children played in the park until it got dark.", "Our manager approved the proposal on Friday.",
    "The river flooded the village after the storm.", "She wrote a letter to her grandmother every week.",
    "The scientists discovered a new species of frog.", "We will need more chairs for the meeting.",
    "The old bridge was repaired last summer.", "He forgot his keys at the office again.",
    "The bakery sells fresh bread every morning.", "The team won the championship after a long season.",
    "Many people prefer to work from home.", "The museum opens a new exhibition next month.",
    "The teacher explained the lesson twice.", "I think this plan is not very good.",
    "The company will launch its new app in the spring.", "The wind blew the leaves across the road.",
    "They built a small house near the lake.", "The students finished the project before the deadline.",
    "The dog waited patiently by the door.", "This restaurant serves the best soup in town.",
)
_REWRITES = (
    "Rewrite this sentence in the passive voice", "Make this sentence more formal", "Paraphrase this sentence",
    "Translate this sentence into French", "Translate this sentence into Spanish",
    "Rewrite this sentence in the past tense", "Rewrite this sentence in the future tense",
    "Make this sentence more concise", "Rewrite this sentence for a child", "Turn this sentence into a question",
)
_TOPICS = (
    "the stock market", "a volcano", "electricity", "a neural network", "the immune system", "the Roman Empire",
    "recycling", "a solar panel", "the Pythagorean theorem", "an operating system", "cloud computing", "a hurricane",
    "the printing press", "democracy", "a microscope", "blockchain", "the human brain", "a rainforest", "magnetism",
    "a compiler", "ocean tides", "the French Revolution", "an earthquake", "protein in the diet", "a spreadsheet",
    "the greenhouse effect", "a satellite", "the Olympic Games", "a credit card", "nuclear energy",
)
_QA_TEMPLATES = ("What is {t}?", "Why is {t} important?", "Explain {t} in two sentences.",
                 "What are the main uses of {t}?", "Give a short history of {t}.", "How would you describe {t} "
                 "to a ten-year-old?")
_LIST_THINGS = (
    "ways to learn a new language", "famous landmarks in Europe", "uses for a smartphone",
    "common mistakes in job interviews", "types of clouds", "board games for families", "ways to improve sleep",
    "herbs used in cooking", "features of a good website", "jobs that involve working with animals",
    "tips for saving money", "causes of air pollution", "programming languages used for web development",
    "ingredients for a pizza", "hobbies you can do at home", "mammals that live in Africa",
    "ways to be more productive at work", "safety rules in a laboratory", "qualities of a good leader",
    "things to do on a rainy day",
)
_FORMS = ("poem", "story", "haiku", "limerick", "song verse", "diary entry", "letter")
_SUBJECTS = (
    "a lighthouse", "a lost umbrella", "the first day of spring", "a dragon who is afraid of the dark",
    "a city at night", "friendship", "a snowy village", "a time traveler", "a secret garden", "the sea",
    "a tired astronaut", "a talking tree", "the last day of school", "a busy train station", "a rainy afternoon",
    "an old bicycle", "a robot chef", "the northern lights", "a forgotten key", "a mountain village",
)


def _math(rng: np.random.Generator) -> str:
    a, b, c = (int(v) for v in rng.integers(2, 99, size=3))
    kind = int(rng.integers(10))
    return [
        f"What is {a} plus {b * 7}?", f"What is {a} times {b}?", f"What is {a * 13} minus {b}?",
        f"Solve for x: {a}x + {b} = {a * c + b}.", f"What is {5 * (a % 19 + 1)}% of {b * 20}?",
        f"A car travels {a * 10} km in {b % 5 + 2} hours. What is its average speed?",
        f"If {c % 9 + 2} notebooks cost ${(c % 9 + 2) * (a % 7 + 1)}, how much does one notebook cost?",
        f"What is the area of a rectangle with sides {a} m and {b} m?",
        f"Convert {a}.{b % 10} kilometers to meters.", f"What is the square of {a}?",
    ][kind]


def distillation_instructions(count: int, seed: int = 0, exclude: Sequence[str] = ()) -> list[str]:
    """``count`` distinct templated instructions (families in rotation: code, maths, rewriting, QA, lists,
    writing), none equal to an ``exclude``d text; the same seed gives the same list."""
    rng = np.random.default_rng(seed)
    banned = {e.strip() for e in exclude}

    def pick(options):
        return options[int(rng.integers(len(options)))]

    families = (
        lambda: f"Write a {pick(_LANGS)} function that {pick(_CODE_TASKS)}.",
        lambda: _math(rng),
        lambda: f"{pick(_REWRITES)}: {pick(_SENTENCES)}",
        lambda: pick(_QA_TEMPLATES).format(t=pick(_TOPICS)),
        lambda: f"List {int(rng.integers(3, 10))} {pick(_LIST_THINGS)}.",
        lambda: f"Write a short {pick(_FORMS)} about {pick(_SUBJECTS)}.",
    )
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 200 * count:
            raise InputError(f"distillation_instructions: cannot draw {count} distinct instructions")
        text = families[len(out) % len(families)]()
        if text in seen or text in banned:
            continue
        seen.add(text)
        out.append(text)
    return out


# --- 2. corpus ----------------------------------------------------------------------------------------------


@dataclass
class DistillCorpus:
    """Teacher generations: per sequence the token ids (prompt + generated), the prompt length, and per generated
    position the teacher's top-k ids and log-probabilities (exact: logits minus the full log-sum-exp)."""

    sequences: list[np.ndarray] = field(default_factory=list)
    prompt_lens: list[int] = field(default_factory=list)
    topk_ids: list[np.ndarray] = field(default_factory=list)  # (gen_len, k) int32
    topk_logp: list[np.ndarray] = field(default_factory=list)  # (gen_len, k) float32
    sampled: list[bool] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def generated_tokens(self) -> int:
        return int(sum(len(s) - p for s, p in zip(self.sequences, self.prompt_lens)))

    def save(self, path: Path | str) -> None:
        """One ``.npz`` file (flat arrays plus offsets), so training can be rerun without regenerating."""
        lens = np.asarray([len(s) for s in self.sequences], dtype=np.int64)
        np.savez_compressed(
            path, seq_lens=lens, sequences=np.concatenate(self.sequences), prompt_lens=np.asarray(self.prompt_lens),
            topk_ids=np.concatenate(self.topk_ids), topk_logp=np.concatenate(self.topk_logp),
            sampled=np.asarray(self.sampled), wall_s=np.asarray(self.wall_s), cpu_s=np.asarray(self.cpu_s),
        )

    @classmethod
    def load(cls, path: Path | str) -> "DistillCorpus":
        with np.load(path) as z:
            lens, prompt_lens = z["seq_lens"], z["prompt_lens"]
            gen_lens = lens - prompt_lens
            seq_cuts, gen_cuts = np.cumsum(lens)[:-1], np.cumsum(gen_lens)[:-1]
            return cls(
                sequences=np.split(z["sequences"], seq_cuts), prompt_lens=prompt_lens.tolist(),
                topk_ids=np.split(z["topk_ids"], gen_cuts), topk_logp=np.split(z["topk_logp"], gen_cuts),
                sampled=z["sampled"].tolist(), wall_s=float(z["wall_s"]), cpu_s=float(z["cpu_s"]),
            )

    def describe(self) -> dict:
        gen = [len(s) - p for s, p in zip(self.sequences, self.prompt_lens)]
        return {
            "sequences": len(self.sequences),
            "generated_tokens": self.generated_tokens,
            "mean_generated": float(np.mean(gen)) if gen else 0.0,
            "mean_prompt_tokens": float(np.mean(self.prompt_lens)) if gen else 0.0,
            "sampled_sequences": int(sum(self.sampled)),
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
        }


@torch.inference_mode()
def generate_corpus(
    teacher,
    prompt_ids: Sequence[Sequence[int]],
    cfg: DistillConfig,
    *,
    eos_token_id: int,
    pad_token_id: int,
    progress: Progress | None = None,
) -> DistillCorpus:
    """Generate from a ``transformers`` causal LM (``teacher``) and keep its top-k log-probabilities."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class _Keep(LogitsProcessor):
        """Sees the raw logits of every step (no other processor runs before it) and keeps top-k + lse."""

        def __init__(self) -> None:
            self.ids: list[torch.Tensor] = []
            self.logp: list[torch.Tensor] = []

        def __call__(self, input_ids, scores):
            raw = scores.float()
            vals, idx = raw.topk(cfg.top_k, dim=-1)
            self.ids.append(idx.to(torch.int32))
            self.logp.append(vals - raw.logsumexp(dim=-1, keepdim=True))
            return scores

    teacher.eval()
    corpus = DistillCorpus()
    started, cpu_started = time.perf_counter(), time.process_time()
    total = len(prompt_ids)
    batches = [list(range(i, min(i + cfg.gen_batch, total))) for i in range(0, total, cfg.gen_batch)]
    for bi, rows in enumerate(batches):
        sampled = cfg.sample_every > 0 and bi % cfg.sample_every == cfg.sample_every - 1
        width = max(len(prompt_ids[r]) for r in rows)
        ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, r in enumerate(rows):  # left padding
            ids[j, width - len(prompt_ids[r]) :] = torch.tensor(prompt_ids[r], dtype=torch.long)
            mask[j, width - len(prompt_ids[r]) :] = 1
        keep = _Keep()
        torch.manual_seed(cfg.seed + bi)
        kwargs = {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0} if sampled else {"do_sample": False}
        out = teacher.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=cfg.max_new_tokens, pad_token_id=pad_token_id,
            eos_token_id=eos_token_id, logits_processor=LogitsProcessorList([keep]), **kwargs,
        )
        gen = out[:, width:]
        steps = len(keep.ids)
        if steps != gen.shape[1]:
            raise RuntimeError(f"teacher generate: {steps} logit steps for {gen.shape[1]} generated positions")
        kid = torch.stack(keep.ids, dim=1).numpy()
        klp = torch.stack(keep.logp, dim=1).numpy()
        for j, r in enumerate(rows):
            g = gen[j].tolist()
            n = g.index(eos_token_id) + 1 if eos_token_id in g else len(g)
            corpus.sequences.append(np.asarray(list(prompt_ids[r]) + g[:n], dtype=np.int32))
            corpus.prompt_lens.append(len(prompt_ids[r]))
            corpus.topk_ids.append(kid[j, :n].copy())
            corpus.topk_logp.append(klp[j, :n].astype(np.float32))
            corpus.sampled.append(sampled)
        if progress is not None:
            progress("teacher generation", bi + 1, len(batches), {"tokens": corpus.generated_tokens})
    corpus.wall_s = time.perf_counter() - started
    corpus.cpu_s = time.process_time() - cpu_started
    return corpus


# --- 3-5. draft, loss, training -----------------------------------------------------------------------------


def svd_embedding(teacher_embedding: torch.Tensor, d_model: int) -> torch.Tensor:
    """The teacher's (V, h) embedding projected on its top ``d_model`` right singular vectors: (V, d_model)."""
    e = teacher_embedding.detach().float()
    if d_model > e.shape[1]:
        raise InputError(f"draft d_model {d_model} exceeds the teacher's embedding width {e.shape[1]}")
    _, _, vh = torch.linalg.svd(e, full_matrices=False)
    return e @ vh[:d_model].T


def _hidden(model: ByteGPT, tokens: torch.Tensor) -> torch.Tensor:
    """The draft's final-norm hidden states (B, T, d) for a full sequence (no cache): its forward without the
    output head, so the head can run on the loss positions only."""
    x = model.embed(tokens)
    for block in model.blocks:
        x = block(x, None, 0)
    return model.ln_f(x)


def _batch(corpus: DistillCorpus, rows: Sequence[int]):
    """Right-padded inputs and, for every generated position, (batch row, input position, top-k ids, log p)."""
    width = max(len(corpus.sequences[r]) for r in rows) - 1
    tokens = torch.zeros((len(rows), width), dtype=torch.long)
    where_b, where_t, ids, logp = [], [], [], []
    for j, r in enumerate(rows):
        seq = corpus.sequences[r]
        tokens[j, : len(seq) - 1] = torch.from_numpy(seq[:-1].astype(np.int64))
        p, n = corpus.prompt_lens[r], len(seq) - corpus.prompt_lens[r]
        # input position p - 1 + s predicts generated token s
        where_b.append(np.full(n, j))
        where_t.append(np.arange(p - 1, p - 1 + n))
        ids.append(corpus.topk_ids[r])
        logp.append(corpus.topk_logp[r])
    return (
        tokens,
        torch.from_numpy(np.concatenate(where_b)),
        torch.from_numpy(np.concatenate(where_t)),
        torch.from_numpy(np.concatenate(ids).astype(np.int64)),
        torch.from_numpy(np.concatenate(logp)),
    )


def binned_loss(logits: torch.Tensor, ids: torch.Tensor, teacher_logp: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Cross-entropy against the teacher coarsened to top-k bins + a tail bin; also per-position metrics."""
    logq = logits.float().log_softmax(dim=-1)
    logq_k = logq.gather(-1, ids)
    p_k = teacher_logp.exp()
    p_tail = (1.0 - p_k.sum(-1)).clamp(min=0.0)
    q_k = logq_k.exp()
    logq_tail = torch.log1p(-q_k.sum(-1).clamp(max=1.0 - 1e-6))
    loss = -(p_k * logq_k).sum(-1) - p_tail * logq_tail
    with torch.no_grad():
        metrics = {
            "top1_agreement": (logq.argmax(-1) == ids[:, 0]).float(),
            "expected_acceptance": torch.minimum(p_k, q_k).sum(-1),
        }
    return loss.mean(), metrics


@torch.no_grad()
def evaluate(model: ByteGPT, corpus: DistillCorpus, rows: Sequence[int], chunk: int = 16) -> dict:
    """Held-out metrics over all generated positions of ``rows`` (fp32, eval mode)."""
    was = model.training
    model.eval()
    agree, accept, losses, count = 0.0, 0.0, 0.0, 0
    for i in range(0, len(rows), chunk):
        tokens, wb, wt, ids, logp = _batch(corpus, rows[i : i + chunk])
        h = _hidden(model, tokens)[wb, wt]
        loss, m = binned_loss(F.linear(h, model.embed.weight), ids, logp)
        n = ids.shape[0]
        agree += float(m["top1_agreement"].sum())
        accept += float(m["expected_acceptance"].sum())
        losses += float(loss) * n
        count += n
    model.train(was)
    return {
        "positions": count,
        "top1_agreement": agree / count,
        "expected_acceptance": accept / count,
        "binned_cross_entropy_nats": losses / count,
    }


def _lr(step: int, cfg: DistillConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr_peak * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    floor = cfg.lr_peak * cfg.lr_final_ratio
    return floor + 0.5 * (cfg.lr_peak - floor) * (1.0 + math.cos(math.pi * min(1.0, frac)))


def split_rows(corpus: DistillCorpus, cfg: DistillConfig) -> tuple[list[int], list[int]]:
    """(train rows, held-out rows): a shuffle seeded with ``seed + 1``; at least one of each."""
    n = len(corpus.sequences)
    if n < 2:
        raise InputError(f"distillation needs at least 2 sequences, got {n}")
    order = np.random.default_rng(cfg.seed + 1).permutation(n)
    held = max(1, int(round(cfg.held_out_fraction * n)))
    return sorted(order[held:].tolist()), sorted(order[:held].tolist())


def train_draft(
    corpus: DistillCorpus,
    arch: ByteGPTConfig,
    cfg: DistillConfig,
    *,
    teacher_embedding: torch.Tensor | None = None,
    progress: Progress | None = None,
) -> tuple[ByteGPT, dict]:
    """Train the draft on the corpus's training split; returns (model, result with held-out metrics)."""
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    model = ByteGPT(arch)
    if cfg.embedding_init == "teacher-svd":
        if teacher_embedding is None:
            raise InputError("embedding_init='teacher-svd' needs the teacher's embedding")
        if teacher_embedding.shape[0] != arch.vocab_size:
            raise InputError(f"teacher vocabulary {teacher_embedding.shape[0]} != draft vocab_size {arch.vocab_size}")
        with torch.no_grad():
            init = svd_embedding(teacher_embedding, arch.d_model)
            model.embed.weight.copy_(init * (cfg.embedding_init_std / init.std()))
    train_rows, held_rows = split_rows(corpus, cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr_peak, betas=cfg.betas,
    )
    rng = np.random.default_rng(cfg.seed)
    history: list[dict] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    before = evaluate(model, corpus, held_rows)
    loss_val = float("nan")
    model.train()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        rows = [train_rows[i] for i in rng.integers(0, len(train_rows), size=cfg.batch_size)]
        tokens, wb, wt, ids, logp = _batch(corpus, rows)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16_autocast):
            h = _hidden(model, tokens)[wb, wt]
            logits = F.linear(h, model.embed.weight)
        loss, _ = binned_loss(logits, ids, logp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        loss_val = loss.item()
        info: dict = {"loss": loss_val, "lr": _lr(step, cfg)}
        if (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            ev = evaluate(model, corpus, held_rows)
            history.append({"step": step + 1, **ev})
            info["held_out_top1"] = ev["top1_agreement"]
        if progress is not None:
            progress("draft training", step + 1, cfg.steps, info)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    model.eval()
    return model, {
        "parameters": model.num_parameters(),
        "train_sequences": len(train_rows),
        "held_out_sequences": len(held_rows),
        "held_out_before_training": before,
        "final_train_loss_nats": loss_val,
        "train_wall_s": round(wall, 3),
        "train_cpu_s": round(cpu, 3),
        "history": history,
    }


# --- 6. checkpoint ------------------------------------------------------------------------------------------

_STORE_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def save_draft(model: ByteGPT, directory: Path, training: dict, checkpoint_dtype: str = "fp16") -> Path:
    """``config.json`` (bytegpt format; ``training`` holds recipe and results) and ``model.pt`` in the given dtype."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    from specedge.provenance import portable_metadata

    payload = {"architecture": "bytegpt", "config": json.loads(model.cfg.to_json()),
               "training": portable_metadata(training)[0]}  # the checkpoint's provenance: no absolute path
    (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    dt = _STORE_DTYPES[checkpoint_dtype]
    torch.save({k: v.detach().to(dt).contiguous() for k, v in model.state_dict().items()}, directory / WEIGHTS_FILE)
    return directory


class TokenGPTLM(ByteGPTLM):
    """The project's GPT over a BPE vocabulary (a distilled draft): the byte-GPT adapter with the teacher's
    tokenizer for encode/decode and honest provenance."""

    def __init__(self, model, name, path=None, weights_sha256=None, tokenizer=None, tokenizer_desc: str = ""):
        super().__init__(model, name, path=path, weights_sha256=weights_sha256)
        self.tokenizer = tokenizer
        self.tokenizer_desc = tokenizer_desc
        self.training_info: dict = {}

    def encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            raise InputError(f"{self.name}: no tokenizer attached (load it with tokenizer_of=<the target>)")
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        if self.tokenizer is None:
            raise InputError(f"{self.name}: no tokenizer attached (load it with tokenizer_of=<the target>)")
        return self.tokenizer.decode(ids)

    def describe(self) -> dict:
        desc = super().describe()
        cfg = self.model.cfg
        desc.update(
            architecture=f"specedge GPT (specedge.record.bytegpt code) over a {cfg.vocab_size}-token vocabulary: "
            f"d_model={cfg.d_model}, n_layer={cfg.n_layer}, n_head={cfg.n_head}, mlp_ratio={cfg.mlp_ratio}, rope, "
            "tied embedding",
            tokenizer=self.tokenizer_desc or "none attached",
            training=self.training_info,
        )
        return desc


def load_draft(path: Path | str, tokenizer_of=None, dtype: str = "fp32") -> TokenGPTLM:
    """Load a distilled draft; ``tokenizer_of`` (the target, an HFCausalLM) lends its tokenizer and must have the
    same vocabulary width."""
    from specedge.record.lm import _dtype

    path = Path(path)
    model = load_bytegpt(path, dtype=_dtype(dtype))
    training = json.loads((path / CONFIG_FILE).read_text()).get("training", {})
    if tokenizer_of is not None and tokenizer_of.vocab_size != model.cfg.vocab_size:
        raise InputError(f"{path}: draft vocabulary {model.cfg.vocab_size} != target {tokenizer_of.name!r} "
                         f"vocabulary {tokenizer_of.vocab_size}")
    lm = TokenGPTLM(
        model, path.name, path=path, weights_sha256=sha256_file(path / WEIGHTS_FILE),
        tokenizer=getattr(tokenizer_of, "tokenizer", None),
        tokenizer_desc=(f"the target's ({tokenizer_of.name}) tokenizer, shared" if tokenizer_of is not None else
                        training.get("tokenizer", "")),
    )
    # A checkpoint's record may hold the distilling machine's absolute paths (the teacher's folder): portable here,
    # a site-packages path without a version the record does not hold.
    from specedge.provenance import portable_metadata

    lm.training_info = portable_metadata(
        {k: training[k] for k in ("recipe", "teacher", "held_out", "distill_config") if k in training},
        recorded_versions={})[0]
    return lm


def distill(
    teacher,
    prompt_ids: Sequence[Sequence[int]],
    out_dir: Path,
    cfg: DistillConfig,
    arch: ByteGPTConfig,
    *,
    eos_token_id: int,
    pad_token_id: int,
    teacher_info: dict | None = None,
    extra: dict | None = None,
    progress: Progress | None = None,
    corpus_cache: Path | str | None = None,
) -> dict:
    """Steps 2-6 for a ``transformers`` teacher: generate, train, evaluate, save; returns the result record.

    ``corpus_cache``: an ``.npz`` file; when it exists the corpus is read from it (its recorded generation time
    kept), otherwise the generated corpus is written there. The cache must come from the same teacher, prompts
    and generation settings: that is the caller's responsibility (the file's sha256 is recorded)."""
    torch.set_num_threads(cfg.torch_threads)
    if corpus_cache is not None and Path(corpus_cache).is_file():
        corpus = DistillCorpus.load(corpus_cache)
        if len(corpus.sequences) != len(prompt_ids):
            raise InputError(f"{corpus_cache}: {len(corpus.sequences)} sequences for {len(prompt_ids)} prompts")
    else:
        corpus = generate_corpus(teacher, prompt_ids, cfg, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                                 progress=progress)
        if corpus_cache is not None:
            corpus.save(corpus_cache)
    emb = teacher.get_input_embeddings().weight if cfg.embedding_init == "teacher-svd" else None
    model, result = train_draft(corpus, arch, cfg, teacher_embedding=emb, progress=progress)
    # held-out metrics of the weights as stored (rounded to the checkpoint dtype)
    stored = ByteGPT(arch)
    store_dtype = _STORE_DTYPES[cfg.checkpoint_dtype]
    stored.load_state_dict({k: v.to(store_dtype).float() for k, v in model.state_dict().items()})
    _, held_rows = split_rows(corpus, cfg)
    result["held_out"] = evaluate(stored, corpus, held_rows)
    result["corpus"] = corpus.describe()
    if corpus_cache is not None:
        result["corpus"]["cache_sha256"] = sha256_file(Path(corpus_cache))
    training = {
        "recipe": "specedge.record.distill (specedge record distill-draft)",
        "distill_config": asdict(cfg),
        "teacher": teacher_info or {},
        "torch": torch.__version__,
        "checkpoint_dtype": cfg.checkpoint_dtype,
        "runtime_dtype": dtype_name(torch.float32),
        **(extra or {}),
        **result,
    }
    save_draft(model, out_dir, training, cfg.checkpoint_dtype)
    return training


def distill_smollm2_draft(
    out_dir: Path, cfg: DistillConfig, arch: ByteGPTConfig = DRAFT_ARCH, *, progress: Progress | None = None,
    instructions_path: Path | str | None = None, corpus_cache: Path | str | None = None,
) -> dict:
    """The recipe for SmolLM2-135M-Instruct: instructions disjoint from the evaluation set, chat template, distil."""
    from specedge.record.smollm2 import DEFAULT_PROMPTS, load_instructions, load_smollm2

    torch.set_num_threads(cfg.torch_threads)
    started, cpu_started = time.perf_counter(), time.process_time()
    teacher = load_smollm2()
    if arch.vocab_size != teacher.vocab_size:
        raise InputError(f"draft vocab_size {arch.vocab_size} != SmolLM2's {teacher.vocab_size}")
    evaluation = load_instructions(instructions_path or DEFAULT_PROMPTS)
    texts = distillation_instructions(cfg.prompts, cfg.seed, exclude=[i.prompt for i in evaluation])
    prompt_ids = [teacher.encode(teacher.chat_text(t)) for t in texts]
    result = distill(
        teacher.model, prompt_ids, Path(out_dir), cfg, arch, eos_token_id=teacher.eos_token_id,
        pad_token_id=teacher.eos_token_id, teacher_info=teacher.describe(), progress=progress,
        corpus_cache=corpus_cache,
        extra={
            "tokenizer": "SmolLM2-135M-Instruct's tokenizer (49152 tokens; from the GGUF via transformers)",
            "instructions": "specedge.record.distill.distillation_instructions (templated; disjoint from "
            f"{instructions_path or DEFAULT_PROMPTS})",
        },
    )
    result["total_wall_s"] = round(time.perf_counter() - started, 3)
    result["total_cpu_s"] = round(time.process_time() - cpu_started, 3)  # < wall when the CPU is shared
    # rewrite config.json with the totals (teacher load included) added
    cfg_path = Path(out_dir) / CONFIG_FILE
    payload = json.loads(cfg_path.read_text())
    payload["training"]["total_wall_s"] = result["total_wall_s"]
    payload["training"]["total_cpu_s"] = result["total_cpu_s"]
    cfg_path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return result
