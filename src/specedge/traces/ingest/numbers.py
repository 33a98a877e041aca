"""The tool's own numbers: rounds, accepted tokens and draft tokens *as the tool counts them*.

Every ingest format records, beside its table, what its file defines (metadata key ``tool_numbers``):

- R, rounds: verification rounds (vLLM ``num_drafts``, SGLang ``spec_verify_ct``, Spec-Bench
  ``len(accept_lengths)``, llama.cpp ``n_predict − n_accept [− 1]``);
- A, accepted draft tokens (bonus/corrected token excluded);
- D, draft tokens as the tool counts them (vLLM ``num_draft_tokens``, SGLang ``spec_num_proposed_drafts``,
  llama.cpp ``n_drafted`` / ``draft_n``).

From them, and from nothing else [A: the tool's counts are authoritative]:

- τ = 1 + A / R   (mean tokens committed per round, bonus included) [P: vLLM "mean acceptance length",
  Spec-Bench "#Mean accepted tokens"];
- m = A / D       (acceptance ratio over the tool's own draft count) [P: vLLM "acceptance rate",
  llama.cpp "accept", SGLang ``spec_accept_rate``].

A number the file does not define is ``None`` and so is everything derived from it; it is never filled in
from a draft length or a fitted histogram. A number computed under an assumption rather than read is listed
in ``inferred`` with the assumption (e.g. ``--drafted`` turning R into D = R·γ), and ``traces show`` prints
that list next to the values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Metadata key under which a dataset keeps its tool's numbers.
KEY = "tool_numbers"


@dataclass(frozen=True)
class ToolNumbers:
    """Totals a file defines, each None when it does not; ``inferred`` maps a name to its assumption."""

    rounds: int | None
    accepted_tokens: int | None
    draft_tokens: int | None
    inferred: Mapping[str, str] = field(default_factory=dict)
    definitions: Mapping[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "accepted_tokens": self.accepted_tokens,
            "draft_tokens": self.draft_tokens,
            "inferred": dict(self.inferred),
            "definitions": dict(self.definitions),
        }


def derived(numbers: Mapping[str, Any]) -> dict[str, Any]:
    """{rounds, tau, acceptance_ratio, inferred} from a ``tool_numbers`` metadata dict (None where undefined)."""
    r, a, d = numbers.get("rounds"), numbers.get("accepted_tokens"), numbers.get("draft_tokens")
    tau = 1.0 + a / r if r and a is not None else None
    ratio = a / d if d and a is not None else None
    inferred = dict(numbers.get("inferred") or {})
    labels = {}
    values = {"rounds": r, "tau": tau, "acceptance_ratio": ratio}
    for name, deps in (("rounds", ("rounds",)), ("tau", ("rounds", "accepted_tokens")),
                       ("acceptance_ratio", ("accepted_tokens", "draft_tokens"))):
        why = [f"{k}: {inferred[k]}" for k in deps if k in inferred]
        if why and values[name] is not None:
            labels[name] = "; ".join(why)
    return {"rounds": r, "tau": tau, "acceptance_ratio": ratio, "inferred": labels}


def totals_table(units: list[str], rounds: list[int | None], accepted: list[int], drafted: list[int | None]):
    """A ``totals``-kind table (unconformed) from per-unit lists."""
    import pyarrow as pa

    return pa.table({
        "unit": pa.array(units, pa.string()),
        "rounds": pa.array(rounds, pa.int64()),
        "accepted_tokens": pa.array(accepted, pa.int64()),
        "draft_tokens": pa.array(drafted, pa.int64()),
    })


def sum_or_none(values) -> int | None:
    """Σ values, or None when any is None (a total is defined only if every part is)."""
    values = list(values)
    return None if not values or any(v is None for v in values) else int(sum(values))
