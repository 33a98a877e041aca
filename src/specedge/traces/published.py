"""Acceptance datasets derived from published numbers (``source = derived-from-published``).

These are *synthetic* rounds drawn to match one published summary figure each. They are not measurements of any
model: they exist so that specedge can replay acceptance levels that the literature reports for pairs we cannot
run here. Every dataset carries the citation, the published figure, the generator and its seed.

The generator's assumption (:data:`GENERATOR`): positions are accepted i.i.d. with a per-position rate α, the draft
proposes :data:`DRAFTED_TOKENS` tokens per round, and a request runs until it has committed
:data:`OUTPUT_TOKENS_PER_REQUEST` tokens (its last round is not cut short: the figures in the papers are per-round
averages). Where the publication gives τ (mean committed tokens per round, bonus included) rather than α, α is the
root of  Σ_{i=1..γ} α^i = τ − 1  (scipy.optimize.brentq).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq

#: Draft length per synthetic round [A]: long enough that any l <= 12 replays by exact truncation.
DRAFTED_TOKENS = 12
#: Tokens each synthetic request commits before it stops [A].
OUTPUT_TOKENS_PER_REQUEST = 256
#: Synthetic requests per dataset [A].
REQUESTS_PER_DATASET = 200
GENERATOR = "specedge.traces.published: iid-geometric acceptance, numpy PCG64"

LEVIATHAN = (
    "Leviathan, Kalman, Matias. Fast Inference from Transformers via Speculative Decoding. ICML 2023, Table 2 "
    "(T5-XXL target, T=0)"
)
SPECBENCH = (
    "Xia et al. Unlocking Efficiency in Large Language Model Inference: A Comprehensive Survey of Speculative "
    "Decoding (Spec-Bench). Findings of ACL 2024; Spec-Bench leaderboard, Vicuna-7B, mean accepted tokens"
)


@dataclass(frozen=True)
class PublishedFigure:
    """One published acceptance figure: either a per-token α or a τ (mean committed tokens per round)."""

    dataset_id: str
    citation: str
    draft_model: str
    target_model: str
    task: str
    alpha: float | None = None
    tau: float | None = None

    def per_position_alpha(self, drafted: int = DRAFTED_TOKENS) -> float:
        if self.alpha is not None:
            return self.alpha
        assert self.tau is not None
        target = self.tau - 1.0
        if not 0 < target < drafted:
            raise ValueError(f"{self.dataset_id}: tau {self.tau} cannot be reached with {drafted} drafted tokens")
        return brentq(lambda a: a * (1 - a**drafted) / (1 - a) - target, 1e-9, 1 - 1e-12)


FIGURES: tuple[PublishedFigure, ...] = (
    *(
        PublishedFigure(f"published-leviathan-t5xxl-{d}-{t.lower()}", LEVIATHAN, f"t5-{d}", "t5-xxl", t, alpha=a)
        for t, row in (("EnDe", (0.75, 0.80, 0.82)), ("CNNDM", (0.65, 0.73, 0.74)))
        for d, a in zip(("small", "base", "large"), row)
    ),
    *(
        PublishedFigure(f"published-specbench-vicuna7b-{key}", SPECBENCH, method, "vicuna-7b-v1.3", "spec-bench", tau=tau)
        for key, method, tau in (
            ("eagle2", "EAGLE-2", 4.36),
            ("eagle", "EAGLE", 3.57),
            ("hydra", "Hydra", 3.26),
            ("medusa", "Medusa", 2.32),
            ("sps-68m", "SpS (vicuna-68m draft)", 2.29),
            ("pld", "prompt lookup decoding", 1.74),
        )
    ),
)


def draw_rounds(figure: PublishedFigure, seed: int = 0) -> pd.DataFrame:
    """Synthetic per-round rows (v1 acceptance schema) matching ``figure`` in expectation."""
    alpha = figure.per_position_alpha()
    rng = np.random.default_rng(seed)
    # Upper bound on rounds per request: every round commits >= 1 token.
    max_rounds = OUTPUT_TOKENS_PER_REQUEST
    # accepted = number of leading successes among DRAFTED_TOKENS Bernoulli(alpha) positions.
    u = rng.random((REQUESTS_PER_DATASET, max_rounds, DRAFTED_TOKENS)) < alpha
    accepted = np.cumprod(u, axis=2).sum(axis=2).astype(np.int16)
    committed = np.cumsum(accepted.astype(np.int64) + 1, axis=1)
    # Keep rounds up to and including the one that reaches the output length.
    keep = (committed - (accepted + 1)) < OUTPUT_TOKENS_PER_REQUEST
    req, rnd = np.nonzero(keep)
    return pd.DataFrame(
        {
            "dataset": figure.dataset_id,
            "request_id": np.char.add("req-", req.astype(str)),
            "turn": np.zeros(req.size, dtype=np.int16),
            "round": rnd.astype(np.int32),
            "drafted": np.full(req.size, DRAFTED_TOKENS, dtype=np.int16),
            "accepted": accepted[req, rnd],
            # The publications give no per-request prompt lengths: left null rather than invented.
            "prompt_tokens": pd.array([None] * req.size, dtype="Int32"),
            "temperature": np.zeros(req.size, dtype=np.float32),
            "wall_ms": pd.array([None] * req.size, dtype="Float32"),
        }
    )


def metadata(figure: PublishedFigure, seed: int) -> dict[str, object]:
    published = f"alpha={figure.alpha}" if figure.alpha is not None else f"tau={figure.tau}"
    return {
        "source": "derived-from-published",
        "citation": figure.citation,
        "published_figure": published,
        "per_position_alpha": round(figure.per_position_alpha(), 6),
        "draft_model": figure.draft_model,
        "target_model": figure.target_model,
        "task": figure.task,
        "generator": GENERATOR,
        "seed": seed,
        "drafted": DRAFTED_TOKENS,
        "note": (
            "SYNTHETIC: rounds drawn i.i.d. to match one published figure in expectation; not a recording. "
            f"{REQUESTS_PER_DATASET} requests of {OUTPUT_TOKENS_PER_REQUEST} tokens; prompt_tokens null (not published)."
        ),
    }


def write_all(store, seed: int = 0, replace: bool = False) -> list[str]:
    """Write every published-figure dataset to ``store``; returns the dataset ids written."""
    written = []
    for i, fig in enumerate(FIGURES):
        store.write(draw_rounds(fig, seed + i), fig.dataset_id, kind="acceptance", metadata=metadata(fig, seed + i),
                    replace=replace)
        written.append(fig.dataset_id)
    return written
