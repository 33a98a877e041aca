"""Messages between the coordinator (emulated uplink), the draft node and the verify node.

Every message is a frozen dataclass of plain Python values and numpy arrays, pickled over a
``multiprocessing`` pipe (no torch tensors cross a process boundary, so no shared-memory tricks hide a copy).

Flow of one run::

    coordinator --NodeConfig(args)--> node          (at spawn)
    node        --Ready-->            coordinator   (model loaded, pinned, warmed up, speed probed)
    coordinator --Start(t0)-->        both nodes
    coordinator --TaskArrival-->      draft node    (task k at t0 + upload_s[k]: the emulated uplink)
    draft node  --DraftJob-->         verify node   (batch m, round n: draft tokens and their distributions)
    verify node --VerifyResult-->     draft node    (accepted counts, next token, finished flags)
    draft node  --Stop-->             verify node   (every task finished)
    node        --NodeRecords-->      coordinator   (what the node measured, and its speed probe after serving)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class WorkloadTask:
    """One task as the nodes know it: id, prompt token ids, output length, and its trace names."""

    task: int
    request_id: str
    prompt_ids: np.ndarray
    output_tokens: int


@dataclass(frozen=True)
class NodeConfig:
    """What a node process needs: which model, which core, the plan, the tasks' lengths and the sampler."""

    role: str  # "draft" or "verify"
    model_path: str
    model_name: str
    loader: str  # see specedge.serve.workload.ModelSource
    core: int | None
    threads: int
    batches: tuple[tuple[int, ...], ...]
    speculation_length: tuple[int, ...]
    mode: str  # sd-pipeline or sd-serial
    release: str  # all-uploads or batch-uploads
    input_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]
    temperature: float
    seed: int
    warmup_passes: int
    dtype: str = "fp32"


@dataclass(frozen=True)
class Ready:
    role: str
    pid: int
    core: int | None
    affinity: tuple[int, ...]
    torch_threads: int
    model: dict = field(default_factory=dict)
    warmup_s: float = 0.0
    pipe: dict = field(default_factory=dict)  # draft node: the pipe's measured round trip (see nodes.PING_ROUNDS)
    probe: dict = field(default_factory=dict)  # the node's speed probe before serving (specedge.serve.probe)


@dataclass(frozen=True)
class Start:
    t0: float  # time.monotonic() value of the run's origin


@dataclass(frozen=True)
class TaskArrival:
    task: WorkloadTask
    scheduled_s: float


@dataclass(frozen=True)
class DraftJob:
    """Round ``round`` of batch ``batch``: the live members' draft tokens (B, l) and, for T > 0, the draft
    distributions q (B, l, V) they were sampled from (at T = 0, q is the one-hot of the tokens and is not sent).
    In round 0 ``prompts`` carries the members' prompt ids."""

    batch: int
    round: int
    tasks: tuple[int, ...]
    tokens: np.ndarray
    q: np.ndarray | None
    prompts: tuple[np.ndarray, ...] | None
    sent_s: float


@dataclass(frozen=True)
class VerifyResult:
    batch: int
    round: int
    tasks: tuple[int, ...]
    accepted: np.ndarray  # (B,) draft tokens accepted
    next_token: np.ndarray  # (B,) corrected or bonus token
    finished: np.ndarray  # (B,) bool: the task has all its output tokens
    sent_s: float


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class NodeRecords:
    """Rows measured by one node, per record type (lists of dicts become DataFrames in the coordinator)."""

    role: str
    records: dict
    error: str | None = None
