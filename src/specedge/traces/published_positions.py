"""Acceptance datasets derived from published *per-position* acceptance (``source = derived-from-published``).

Serving engines report "per-position acceptance": for draft position i, the share of verification rounds that
accepted position i, i.e. the survival S(i) = P(accepted ≥ i) [P] (vLLM's ``Per-position acceptance (%)``,
whose sum is the acceptance length minus one: τ = 1 + Σ_i S(i)). These datasets draw synthetic rounds that
reproduce a published S(1..γ) exactly in expectation; unlike :mod:`specedge.traces.published` (one α for every
position) the conditional rates α_i = S(i) / S(i − 1) fall with position as the publications show.

Generator (:data:`GENERATOR`) [A]: each round drafts γ = the number of published positions and draws its
accepted count by inversion from one uniform U: accepted = #{i ≤ γ : U < S(i)} (so P(accepted ≥ i) = S(i)).
Rounds are independent [A: no per-request clumping]; a request runs until it has committed
:data:`~specedge.traces.published.OUTPUT_TOKENS_PER_REQUEST` tokens; prompt lengths are not published (null).

Every figure says whether its numbers were checked against the source (``checked``) and how: a figure that
could not be found is shipped with ``checked = False`` and says so in its provenance, never as checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from specedge.traces.published import OUTPUT_TOKENS_PER_REQUEST, REQUESTS_PER_DATASET

GENERATOR = "specedge.traces.published_positions: survival inversion, one uniform per round, numpy PCG64"
#: Seed offset of these datasets, so that they never share a seed with specedge.traces.published's [A].
SEED_OFFSET = 1000


@dataclass(frozen=True)
class PublishedSurvival:
    """A published per-position acceptance S(1..γ) (fractions) with where it comes from and how it was checked."""

    dataset_id: str
    citation: str
    url: str
    draft_model: str
    target_model: str
    task: str
    temperature: float | None
    survival: tuple[float, ...]
    checked: bool
    check_note: str
    published_tau: float | None = None

    def __post_init__(self) -> None:
        s = np.asarray(self.survival, dtype=np.float64)
        if s.size == 0 or np.any(s <= 0) or np.any(s > 1) or np.any(np.diff(s) > 0):
            raise ValueError(f"{self.dataset_id}: survival must be non-increasing in (0, 1], got {self.survival}")

    @property
    def drafted(self) -> int:
        return len(self.survival)

    @property
    def tau(self) -> float:
        """Mean committed tokens per round implied by the survival: 1 + Σ S(i) [P]."""
        return 1.0 + float(sum(self.survival))


VLLM_48892 = PublishedSurvival(
    dataset_id="published-vllm-mtp8-gsm8k",
    citation=("vLLM pull request #48892, '[Model Runner V2][Spec Decode] Add multi-layer MTP speculator', comment "
              "by TheEpicDolphin, 2026-08-03: MTP 8 on GSM8K at temperature 0 (11,043 drafts, 88,344 draft tokens, "
              "38,611 accepted; acceptance length 4.50)"),
    url="https://github.com/vllm-project/vllm/pull/48892",
    draft_model="mtp-8 (multi-layer MTP speculator)",
    target_model="MTP model of vLLM PR #48892 (not named in the quoted comment)",
    task="gsm8k",
    temperature=0.0,
    survival=(0.7617, 0.6158, 0.5125, 0.4243, 0.3640, 0.3094, 0.2722, 0.2365),
    checked=True,
    check_note=("checked 2026-11-30 against the PR thread (search corpus 'issues'): per-position acceptance "
                "76.17 / 61.58 / 51.25 / 42.43 / 36.40 / 30.94 / 27.22 / 23.65 %, acceptance length 4.50; issue 16 "
                "quotes them rounded to one decimal. The PR description's own GSM8K table (concurrency 64) gives a "
                "different run: 75.68 / 60.11 / 49.76 / 41.13 / 35.38 / 29.80 / 26.08 / 22.29 %, length 4.40."),
    published_tau=4.50,
)

LLAMACPP_24536 = PublishedSurvival(
    dataset_id="published-llamacpp-eagle3",
    citation=("llama.cpp pull request #24536, 'spec: add spec metrics mean acceptance length and acceptance rate per "
              "position', comment by ruixiang63, 2026-06-15: EAGLE-3 server log of one request (20 prompt tokens, "
              "256 generated; draft-eagle3: 87 drafts, 259 draft tokens, 167 accepted, 70 drafts with any "
              "accepted; mean acceptance length 2.92)"),
    url="https://github.com/ggml-org/llama.cpp/pull/24536",
    draft_model="eagle-3",
    target_model="not named in the quoted comment",
    task="one request of 20 prompt tokens and 256 generated (prompt not shown)",
    temperature=None,
    survival=(0.805, 0.632, 0.483),
    checked=True,
    check_note=("checked 2026-11-30 against the PR thread (search corpus 'issues'; ggml-org/llama.cpp PR #24536, "
                "comment by ruixiang63 of 2026-06-15, its 'slot print_timing' and 'statistics draft-eagle3' lines): "
                "'acceptance rate per position = (0.805, 0.632, 0.483)', mean acceptance length 2.92; the counts "
                "beside them agree (70/87 = 0.805, 1 + 167/87 = 2.92; 0.805, 0.632, 0.483 x 87 = 70, 55, 42, "
                "sum 167). One request of 87 rounds: a small sample. The PR description shows another EAGLE-3 "
                "request (158 accepted / 289 generated, mean acceptance length 2.63), not used."),
    published_tau=2.92,
)

IK_LLAMACPP_2156 = PublishedSurvival(
    dataset_id="published-ikllamacpp-mtp-code",
    citation="ik_llama.cpp #2156 (MTP on code, per-position acceptance 90.5 / 80.5 / 73.6 %), as quoted in "
             "specedge issue 16",
    url="https://github.com/ikawrakow/ik_llama.cpp/pull/2156",
    draft_model="mtp",
    target_model="unknown (not checked)",
    task="code",
    temperature=None,
    survival=(0.905, 0.805, 0.736),
    checked=False,
    check_note=("NOT CHECKED: no copy of ik_llama.cpp #2156 was found with the search tools on 2026-11-30 "
                "(corpus 'issues': MTP acceptance threads of ikawrakow/ik_llama.cpp, e.g. #1499, #1815, #1987, "
                "#1992, none with these numbers; searches for the PR number; exact-string searches for '73.6%', "
                "'90.5 / 80.5', '(0.905, 0.805, 0.736)' and 'ik_llama.cpp/pull/2156'). The numbers are as given "
                "in issue 16; treat them as unverified."),
)

FIGURES: tuple[PublishedSurvival, ...] = (VLLM_48892, LLAMACPP_24536, IK_LLAMACPP_2156)


def accepted_from_uniform(u: np.ndarray, survival) -> np.ndarray:
    """accepted = #{i : u < S(i)} for uniforms u in [0, 1) (inversion of the published survival)."""
    s = np.asarray(survival, dtype=np.float64)
    return (np.asarray(u)[..., None] < s).sum(axis=-1)


def draw_rounds(figure: PublishedSurvival, seed: int = 0) -> pd.DataFrame:
    """Synthetic per-round rows (v1 acceptance schema) whose survival is ``figure.survival`` in expectation."""
    rng = np.random.default_rng(seed)
    max_rounds = OUTPUT_TOKENS_PER_REQUEST  # every round commits >= 1 token
    accepted = accepted_from_uniform(rng.random((REQUESTS_PER_DATASET, max_rounds)), figure.survival)
    committed = np.cumsum(accepted + 1, axis=1)
    keep = (committed - (accepted + 1)) < OUTPUT_TOKENS_PER_REQUEST  # up to the round that completes the output
    req, rnd = np.nonzero(keep)
    temp = np.nan if figure.temperature is None else figure.temperature
    return pd.DataFrame(
        {
            "dataset": figure.dataset_id,
            "request_id": np.char.add("req-", req.astype(str)),
            "turn": np.zeros(req.size, dtype=np.int16),
            "round": rnd.astype(np.int32),
            "drafted": np.full(req.size, figure.drafted, dtype=np.int16),
            "accepted": accepted[req, rnd].astype(np.int16),
            "prompt_tokens": pd.array([None] * req.size, dtype="Int32"),
            "temperature": pd.array(np.full(req.size, temp), dtype="Float32"),
            "wall_ms": pd.array([None] * req.size, dtype="Float32"),
        }
    )


def metadata(figure: PublishedSurvival, seed: int) -> dict[str, object]:
    return {
        "source": "derived-from-published",
        "citation": figure.citation,
        "url": figure.url,
        "published_figure": "per-position acceptance S(i) = " + " / ".join(f"{x:g}" for x in figure.survival)
        + (f"; acceptance length {figure.published_tau:g}" if figure.published_tau is not None else ""),
        "survival": list(figure.survival),
        "implied_tau": round(figure.tau, 6),
        "checked": figure.checked,
        "check_note": figure.check_note,
        "draft_model": figure.draft_model,
        "target_model": figure.target_model,
        "task": figure.task,
        "generator": GENERATOR,
        "generator_module": "src/specedge/traces/published_positions.py",
        "seed": seed,
        "drafted": figure.drafted,
        "note": (
            "SYNTHETIC: rounds drawn independently to reproduce a published per-position acceptance in "
            f"expectation; not a recording. {REQUESTS_PER_DATASET} requests of {OUTPUT_TOKENS_PER_REQUEST} tokens; "
            "prompt_tokens null (not published)."
            + ("" if figure.checked else " The published numbers were NOT checked against their source.")
        ),
    }


def write_all(store, seed: int = 0, replace: bool = False, only: tuple[str, ...] = ()) -> list[str]:
    """Write the per-position datasets (``only``: just these ids) to ``store``; figure i uses seed
    ``SEED_OFFSET + seed + i``. Returns the ids written."""
    from specedge.errors import DatasetExistsError, InputError

    unknown = sorted(set(only) - {f.dataset_id for f in FIGURES})
    if unknown:
        raise InputError(f"--only: unknown dataset id(s) {', '.join(unknown)}; known: "
                         + ", ".join(f.dataset_id for f in FIGURES))
    chosen = [(i, fig) for i, fig in enumerate(FIGURES) if not only or fig.dataset_id in only]
    existing = [fig.dataset_id for _, fig in chosen if fig.dataset_id in store]
    if existing and not replace:  # refuse before writing any, so the store is left untouched
        raise DatasetExistsError(f"store {store.root}: dataset(s) {', '.join(existing)} already exist; pass "
                                 "--replace to add new versions, or --only to write the others")
    written = []
    for i, fig in chosen:
        s = SEED_OFFSET + seed + i
        store.write(draw_rounds(fig, s), fig.dataset_id, kind="acceptance", metadata=metadata(fig, s),
                    replace=replace)
        written.append(fig.dataset_id)
    return written
