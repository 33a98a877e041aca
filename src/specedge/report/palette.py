"""One colour, marker and line style per policy across the whole report (every figure asks here).

A policy keeps its colour in every figure, so a reader who learned "red is dp-refined" in section 1 reads the
sweeps without a legend. Colours group the policies by family: the paper's optimizer and its variants (blues),
specedge's optimizers (reds, purple), the batching baselines (oranges, greens), the serving-mode baselines
(browns, grey) and the exhaustive oracle (black). Markers differ within a family so that lines can be told
apart in greyscale too. A policy preset that names a registered policy plus a suffix (``fixed-l7``) takes that
policy's style; any other name gets a stable colour from :data:`EXTRA_COLOURS` (by a hash of the name, so it
is the same in every figure and every build).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    """How one policy is drawn: matplotlib colour, marker and line style."""

    colour: str
    marker: str
    linestyle: str = "-"


#: The registered policies, in the order figures list them (the paper's first, then specedge's, then baselines),
#: then the online serving policies.
POLICY_STYLES: dict[str, Style] = {
    "paper-dp": Style("#1f4e9c", "o"),
    "dp-per-batch-l": Style("#6a9bd8", "s", "--"),
    "uniform-bandwidth": Style("#17becf", "v", ":"),
    "dp-refined": Style("#d62728", "D"),
    "trace-aware": Style("#9467bd", "P", "--"),
    "trace-aware-per-task": Style("#c5a3e0", "X", ":"),
    "adaptive-l": Style("#e377c2", "*", "-."),
    "max-batching": Style("#ff7f0e", "^", "--"),
    "heuristic-batching": Style("#bcbd22", "<", "-."),
    "static-batching": Style("#2ca02c", ">", ":"),
    "fixed-l": Style("#98df8a", "h", "--"),
    "no-batching": Style("#8c564b", "x", ":"),
    "sd-serial": Style("#c49c94", "p", "-."),
    "ad": Style("#7f7f7f", "d", "--"),
    "oracle": Style("#000000", "+", ":"),
    # online serving policies (specedge.online.policies; "ad" above is shared with the offline baselines);
    # none of these colours is in EXTRA_COLOURS, so no other name can be given them by hash
    "fcfs": Style("#5254a3", "o"),
    "smartspec": Style("#ad494a", "s", "--"),
    "sd-ad-switch": Style("#bd9e39", "^", "-."),
    "spec-off-above-load": Style("#a55194", "v", ":"),
    "threshold": Style("#8ca252", "<", "--"),
    # multi-cell schemes (specedge.multicell.dipsd): DiP-SD-style batching in a gold no policy uses (by hash it
    # drew #3182bd, a blue beside paper-dp's)
    "dip-sd": Style("#e6ab02", "D"),
}

#: Colours for names that are not registered policies (stable per name).
EXTRA_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")
_EXTRA_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def policy_of(series: str) -> str:
    """The policy of a figure series label ``"policy · acceptance · axis=value"`` (the text before the first ·)."""
    return str(series).split(" · ", 1)[0].strip()


def style(name: str) -> Style:
    """The style of policy ``name`` (or of the policy a series label starts with)."""
    name = policy_of(name)
    if name in POLICY_STYLES:
        return POLICY_STYLES[name]
    prefixes = [p for p in POLICY_STYLES if name.startswith(p)]
    if prefixes:
        return POLICY_STYLES[max(prefixes, key=len)]
    h = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return Style(EXTRA_COLOURS[h % len(EXTRA_COLOURS)], _EXTRA_MARKERS[(h // 7) % len(_EXTRA_MARKERS)])


def colour(name: str) -> str:
    return style(name).colour


def order(names) -> list[str]:
    """``names`` (unique) in the report's policy order: registered policies as listed above, then the rest sorted."""
    rank = {p: i for i, p in enumerate(POLICY_STYLES)}
    uniq = list(dict.fromkeys(str(n) for n in names))
    return sorted(uniq, key=lambda n: (rank.get(policy_of(n), len(rank)), n))


#: Marker per acceptance source in figures where colour already encodes the policy.
ACCEPTANCE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def acceptance_markers(sources) -> dict[str, str]:
    return {s: ACCEPTANCE_MARKERS[i % len(ACCEPTANCE_MARKERS)] for i, s in enumerate(dict.fromkeys(sources))}


def text_colour(name: str, darken: float = 0.35) -> str:
    """The policy's colour mixed with ``darken`` black: legible as text on white (tick labels) even for the light
    colours of the palette."""
    from matplotlib.colors import to_hex, to_rgb

    r, g, b = to_rgb(colour(name))
    return to_hex((r * (1 - darken), g * (1 - darken), b * (1 - darken)))
