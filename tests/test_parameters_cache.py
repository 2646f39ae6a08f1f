"""The machine's name survives a start without Supabase: kept beside the spool, read back when it cannot be asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.parameters import remember_machine_name


async def test_the_name_from_supabase_is_kept_and_read_back_when_supabase_is_away(tmp_path: Path) -> None:
    cache = tmp_path / "spool.machine.json"
    assert await remember_machine_name(None, cache=cache) is None  # never known
    assert await remember_machine_name("ALD reference reactor", cache=cache) == "ALD reference reactor"
    assert await remember_machine_name(None, cache=cache) == "ALD reference reactor"
    assert await remember_machine_name("tool 4 (renamed)", cache=cache) == "tool 4 (renamed)"
    assert await remember_machine_name(None, cache=cache) == "tool 4 (renamed)"


@pytest.mark.parametrize("text", ["not json", "[]", '{"name": "x"}', '[{"name": 3}]', '[{"name": ""}]'],
                         ids=["garbage", "empty", "not-a-list", "not-text", "blank"])  # fmt: skip
async def test_a_bad_cache_gives_no_name_and_no_error(tmp_path: Path, text: str) -> None:
    cache = tmp_path / "spool.machine.json"
    cache.write_text(text)
    assert await remember_machine_name(None, cache=cache) is None
