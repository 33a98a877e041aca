"""``record smollm2-acceptance/smollm2-self-t0 --every N --limit M``: every N-th instruction, then the first M."""

from __future__ import annotations

from pathlib import Path

import pytest

from specedge.cli.record_smollm2 import _instructions
from specedge.errors import InputError

INSTRUCTIONS = Path(__file__).resolve().parents[2] / "data" / "prompts" / "instructions.jsonl"


def test_every_spans_the_categories_and_limit_applies_after():
    every10 = _instructions(INSTRUCTIONS, None, 10)
    assert len(every10) == 24 and len({i.category for i in every10}) == 7
    all_ids = [i.request_id for i in _instructions(INSTRUCTIONS, None, 1)]
    assert [i.request_id for i in every10] == all_ids[::10]
    assert [i.request_id for i in _instructions(INSTRUCTIONS, 5, 20)] == all_ids[::20][:5]
    assert {i.category for i in _instructions(INSTRUCTIONS, 24, 1)} == {"code"}  # the file is sorted by category


def test_bad_stride_is_refused():
    with pytest.raises(InputError, match="--every"):
        _instructions(INSTRUCTIONS, None, 0)
