"""Prompt sets for recording: held-out stdlib snippets, or a user's prompt file (JSONL or plain text)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specedge.errors import InputError


@dataclass(frozen=True)
class Prompt:
    request_id: str
    text: str


def stdlib_prompts(count: int, prompt_chars: int = 96, seed: int = 0, root: Path | None = None) -> list[Prompt]:
    """``count`` snippets of ``prompt_chars`` characters, each starting at a line start of a held-out stdlib file.

    Files are drawn uniformly (with replacement) among held-out files long enough, then a line start uniformly
    among those leaving ``prompt_chars`` characters; the same seed gives the same prompts. request_id is
    ``<relative path>:<line number>``; a (file, line) drawn twice is redrawn.
    """
    from specedge.record.corpus import is_held_out, list_source_files, stdlib_root

    root = stdlib_root() if root is None else Path(root)
    files = [rel for rel in list_source_files(root) if is_held_out(rel)]
    texts = {}
    for rel in files:
        text = (root / rel).read_text(encoding="utf-8", errors="replace")
        if len(text) >= 4 * prompt_chars:
            texts[rel] = text
    names = sorted(texts)
    if not names:
        raise InputError(f"stdlib prompts: no held-out file under {root} has {4 * prompt_chars} characters")
    rng = np.random.default_rng(seed)
    prompts: list[Prompt] = []
    seen: set[str] = set()
    while len(prompts) < count:
        rel = names[int(rng.integers(len(names)))]
        text = texts[rel]
        starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n" and i + 1 + prompt_chars <= len(text)]
        line = int(rng.integers(len(starts)))
        rid = f"{rel}:{line + 1}"
        snippet = text[starts[line] : starts[line] + prompt_chars]
        if rid in seen or not snippet.strip():
            if len(seen) > 50 * count:  # pragma: no cover - only for absurd counts
                raise InputError(f"stdlib prompts: cannot draw {count} distinct prompts")
            continue
        seen.add(rid)
        prompts.append(Prompt(rid, snippet))
    return prompts


def load_prompt_file(path: Path | str) -> list[Prompt]:
    """Read prompts from ``.jsonl`` (one object per line with "prompt" and optional "request_id"/"id") or any
    other text file (one prompt per non-empty line; request_id = line number). Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: prompt file does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc})") from exc
    prompts: list[Prompt] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}, line {n}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str) or not obj["prompt"]:
                raise InputError(f'{path}, line {n}: expected an object with a non-empty string "prompt"')
            rid = obj.get("request_id", obj.get("id", n))
            prompts.append(Prompt(str(rid), obj["prompt"]))
        else:
            prompts.append(Prompt(str(n), line))
    if not prompts:
        raise InputError(f"{path}: no prompts in the file")
    ids = [p.request_id for p in prompts]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{path}: request_id {dup!r} appears more than once")
    return prompts
