"""Every number and switch of the serving model, named and documented: :class:`ScenarioParams`.

Each field carries metadata: ``unit``, ``tag`` ("P" = stated by the paper, "A" = our assumption, "P/A" = the
paper's fact with our choice of value or form) and ``doc`` (what it assumes). Presets (``specedge/presets/*.toml``)
give every field a value; :func:`assumptions_table` lists them for reports and the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from specedge.errors import ScenarioError


def _p(unit: str, tag: str, doc: str):
    return field(metadata={"unit": unit, "tag": tag, "doc": doc})


def _hp(unit: str, doc: str):
    """A host-overhead parameter [A]: default 0 (the paper's model) where a preset does not set it."""
    return field(default=0.0, metadata={"unit": unit, "tag": "A", "doc": doc})


#: Values a string-valued switch may take.
CHOICES = {
    "release": ("all-uploads", "batch-uploads"),
    "compute_model": ("affine", "roofline", "fitted", "measured"),
}

#: The host-overhead parameters (default 0 when a preset does not give them).
HOST_OVERHEAD_PARAMS = tuple(f"{node}_job_overhead{term}" for node in ("sbs", "mbs")
                             for term in ("_s", "_per_seq_s", "_per_token_s"))


@dataclass(frozen=True)
class ScenarioParams:
    """The scenario's parameters. Field metadata documents each; see :func:`assumptions_table`."""

    # ---- tasks
    num_tasks: int = _p("", "P", "K, the number of tasks (users); one request each, all issued at time 0")
    input_tokens_min: int = _p("tokens", "P", "smallest prompt length; I_k ~ U{min..max}")
    input_tokens_max: int = _p("tokens", "P", "largest prompt length")
    output_tokens_min: int = _p("tokens", "P", "smallest output length; O_k ~ U{min..max}")
    output_tokens_max: int = _p("tokens", "P", "largest output length")
    cell_radius_m: float = _p("m", "P", "users are uniform in a disk of this radius around the SBS")
    min_distance_m: float = _p("m", "A", "no user is closer to the SBS than this (keeps the path loss finite)")
    # ---- uplink
    bandwidth_hz: float = _p("Hz", "P", "B, total uplink bandwidth shared by the users")
    tx_power_w: float = _p("W", "P", "p, every user's transmit power")
    noise_power_dbm: float = _p("dBm", "P/A", "sigma^2, noise power over the band, fixed whatever the share")
    path_loss_db_at_1km: float = _p("dB", "A", "path loss at 1 km (3GPP macro model 128.1 + 37.6 log10 d/km)")
    path_loss_db_per_decade: float = _p("dB", "A", "path-loss slope per decade of distance")
    bits_per_token: float = _p(
        "bit", "A",
        "uplink payload per prompt token, D_k = I_k * bits_per_token; calibrated so that the uniform upload is "
        "the share of the latency that the paper's bandwidth gains imply (docs/model.md section 7)")
    release: str = _p(
        "", "A",
        "when a batch may start: 'all-uploads' (after the slowest upload, so total = T_up + compute, the paper's "
        "additive form) or 'batch-uploads' (once the batch's own members have arrived)")
    # ---- nodes and compute
    sbs_device: str = _p("", "P", "device card of the SBS, which runs the draft model")
    mbs_device: str = _p("", "P", "device card of the MBS, which runs the target model")
    compute_model: str = _p(
        "", "P/A",
        "'affine' (paper: T = c1 b F + c2, constants from the device cards), 'roofline', 'fitted' (affine "
        "fitted to compute traces) or 'measured' (interpolated compute traces)")
    sbs_compute_efficiency: float = _p("", "A", "fraction of the SBS's peak FLOP/s a pass achieves: c1 = 1/(e peak)")
    mbs_compute_efficiency: float = _p("", "A", "fraction of the MBS's peak FLOP/s a pass achieves")
    sbs_layer_overhead_s: float = _p(
        "s", "A", "fixed cost per layer of one SBS pass (kernel launches, framework): c2 = J * overhead")
    mbs_layer_overhead_s: float = _p("s", "A", "fixed cost per layer of one MBS pass")
    memory_efficiency: float = _p(
        "", "A", "fraction of peak memory bandwidth a pass achieves (roofline, and the affine weight read)")
    affine_weight_read: bool = _p(
        "", "A",
        "affine only: c2 also pays one read of the weights per pass, weight_bytes / (memory_efficiency * "
        "bandwidth), so small-batch decoding is memory-bound as on real GPUs")
    flops_ffn_factor: float = _p(
        "", "P/A", "FFN term of F(x, c) is ffn_factor * h2: 1 = the paper's form, 1.5 = LLaMA's gated FFN")
    draft_compute_trace: str = _p("", "A", "compute dataset for the draft when compute_model is fitted/measured")
    verify_compute_trace: str = _p("", "A", "compute dataset for the target when compute_model is fitted/measured")
    allow_compute_extrapolation: bool = _p("", "A", "measured only: allow queries outside the measured grid")
    # ---- memory
    sbs_memory_bytes: float = _p(
        "B", "P", "SBS memory: draft weights + KV cache of a batch (all members at I_max + O_max) must fit")
    kv_bytes_per_value: float = _p("B", "A", "bytes per KV-cache value (2 = fp16)")
    kv_cache_uses_gqa: bool = _p(
        "", "A", "false: KV per token = 4 J h bytes (paper's formula); true: use the card's grouped-query width")
    # ---- extensions the paper ignores
    fronthaul_delay_s: float = _p(
        "s", "P/A", "one-way SBS<->MBS delay per message; paper ignores it (0); a round pays it twice")
    downlink_s_per_token: float = _p(
        "s", "P/A", "time to deliver one committed token to its user; paper ignores the downlink (0)")
    # ---- host overhead per stage job (specedge.latency.host_overhead): t_host(b, x) = a + s b + t b x, where b is
    # the job's batch size and x the tokens per sequence it moves (l for SD jobs, 1 for AD); 0 = the paper's model.
    # Defaults (0) apply when a preset does not set them.
    sbs_job_overhead_s: float = _hp("s", "SBS host time per draft job outside its passes (sampling, cache "
                                    "bookkeeping, sending): the constant a; paper 0, fitted from real runs")
    sbs_job_overhead_per_seq_s: float = _hp("s", "SBS host time per draft job per sequence in the batch: s")
    sbs_job_overhead_per_token_s: float = _hp("s", "SBS host time per draft job per drafted token (b l): t")
    mbs_job_overhead_s: float = _hp("s", "MBS host time per verify job outside its passes (acceptance, cache "
                                    "crops, sending the result): the constant a; paper 0, fitted from real runs")
    mbs_job_overhead_per_seq_s: float = _hp("s", "MBS host time per verify job per sequence in the batch: s")
    mbs_job_overhead_per_token_s: float = _hp("s", "MBS host time per verify job per checked draft token (b l): t")

    def __post_init__(self) -> None:
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ScenarioError(f"parameter {name}={getattr(self, name)!r}; expected one of {', '.join(choices)}")
        positive = ("num_tasks", "input_tokens_min", "output_tokens_min", "cell_radius_m", "bandwidth_hz",
                    "tx_power_w", "bits_per_token", "sbs_compute_efficiency", "mbs_compute_efficiency",
                    "memory_efficiency", "flops_ffn_factor", "sbs_memory_bytes", "kv_bytes_per_value")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ScenarioError(f"parameter {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("min_distance_m", "sbs_layer_overhead_s", "mbs_layer_overhead_s", "fronthaul_delay_s",
                     "downlink_s_per_token", *HOST_OVERHEAD_PARAMS):
            if not getattr(self, name) >= 0:
                raise ScenarioError(f"parameter {name} must be >= 0, got {getattr(self, name)!r}")
        for lo, hi in (("input_tokens_min", "input_tokens_max"), ("output_tokens_min", "output_tokens_max"),
                       ("min_distance_m", "cell_radius_m")):
            if getattr(self, lo) > getattr(self, hi):
                raise ScenarioError(f"parameter {lo}={getattr(self, lo)} exceeds {hi}={getattr(self, hi)}")
        for name in ("sbs_compute_efficiency", "mbs_compute_efficiency", "memory_efficiency"):
            if getattr(self, name) > 1:
                raise ScenarioError(f"parameter {name} must be <= 1, got {getattr(self, name)}")

    @classmethod
    def from_mapping(cls, values: dict, *, source: str) -> ScenarioParams:
        """Build from a mapping, coercing types; ScenarioError names the missing or unknown keys."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ScenarioError(f"{source}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
        missing = [k for k in known if k not in values and k not in HOST_OVERHEAD_PARAMS]
        if missing:
            raise ScenarioError(f"{source}: missing parameter(s) {', '.join(missing)}")
        coerced = {}
        for name, value in values.items():
            kind = known[name].type
            try:
                if kind == "int":
                    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                        raise ValueError
                    value = int(value)
                elif kind == "float":
                    if isinstance(value, bool):
                        raise ValueError
                    value = float(value)
                elif kind == "bool":
                    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                        value = value.lower() in ("true", "1")
                    if not isinstance(value, bool):
                        raise ValueError
                else:
                    value = str(value)
            except (TypeError, ValueError):
                raise ScenarioError(f"{source}: parameter {name}={value!r} is not a valid {kind}") from None
            coerced[name] = value
        return cls(**coerced)


def assumptions_table(params: ScenarioParams):
    """A DataFrame (parameter, value, unit, tag, meaning) of every field, for reports and the README."""
    import pandas as pd

    rows = [
        {"parameter": f.name, "value": getattr(params, f.name), "unit": f.metadata["unit"],
         "tag": f.metadata["tag"], "meaning": f.metadata["doc"]}
        for f in fields(params)
    ]
    return pd.DataFrame(rows)
