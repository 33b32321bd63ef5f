"""The executor interface shared by scans and model pools (freqprint.executor)."""

from __future__ import annotations

import operator

import pytest

from freqprint.errors import FreqprintError
from freqprint.executor import LocalExecutor, create_executor, run_jobs


def test_run_jobs_keeps_job_order_and_sends_shared_once_per_job():
    seen = []
    with LocalExecutor(1) as ex:
        out = run_jobs(ex, operator.add, [(i,) for i in range(7)], shared=10, on_result=lambda i, r: seen.append(i))
    assert out == [10 + i for i in range(7)] and sorted(seen) == list(range(7))


def test_spawned_pool_returns_results_in_job_order():
    with create_executor("local", workers=2) as ex:
        assert run_jobs(ex, pow, [(e,) for e in range(6)], shared=2) == [2**e for e in range(6)]


def test_bad_executor_settings_are_one_error():
    with pytest.raises(FreqprintError, match="unknown executor"):
        create_executor("slurm")
    with pytest.raises(FreqprintError, match="workers"):
        create_executor("local", workers=0)
    with pytest.raises(FreqprintError, match="Ray resource"):
        create_executor("local", gpus=1)
