"""The stress script (benchmarks/stress.py) at CI size: processes and threads on one file,
deletions, gcs and kill -9s; nothing committed may be lost, nothing loaded may be wrong, and
no raw (non-MandalaError) exception may reach a worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "stress.py"


def run_stress(tmp_path: Path, *options: str) -> dict:
    """Run the script at CI size; its summary (the printed table's rows) as a dict."""
    results = tmp_path / "stress.json"
    command = [sys.executable, str(SCRIPT), "--small", "--path", str(tmp_path / "stress.db"),
               "--json", str(results), *options]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert results.exists(), f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    summary = json.loads(results.read_text())["summary"]
    summary["table"] = proc.stdout
    return summary


def assert_nothing_lost_or_wrong(summary: dict) -> None:
    table = summary["table"]
    assert summary["calls made"] > 0, table
    assert summary["calls lost"] == 0, table
    assert summary["wrong values"] == 0, table
    assert summary["raw errors"] == 0, table
    assert summary["integrity"].startswith("ok"), table
    assert summary["blob rows without a file"] == 0, table
    assert summary["workers that failed"] == "none", table


@pytest.mark.slow
def test_stress_with_a_storage_per_thread_loses_nothing(tmp_path):
    assert_nothing_lost_or_wrong(run_stress(tmp_path, "--no-threads-share-storage"))


@pytest.mark.slow
def test_stress_with_threads_sharing_a_storage_loses_nothing(tmp_path):
    assert_nothing_lost_or_wrong(run_stress(tmp_path, "--threads-share-storage"))
