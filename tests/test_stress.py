"""Three agents' stdio servers and CLI writes under sustained mixed load on one data dir."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import stress  # noqa: E402


@pytest.mark.slow
def test_sustained_mixed_load_loses_nothing_and_duplicates_nothing(data_dir):
    r = stress.run(20, data_dir)
    assert r["errors"] == [] and r["lost"] == [] and r["resurrected"] == [] and r["duplicates"] == {}
    assert r["shared_facts"] >= 5 and r["shared_merged_once_with_all_agents"]
    assert r["by_kind"].get("cli remember", 0) > 5 and r["by_kind"].get("forget", 0) > 5 and r["by_kind"]["recall"] > 20
