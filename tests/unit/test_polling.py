"""adapters/polling.until: the one poll loop of the package (tenacity underneath)."""

from __future__ import annotations

import time

import pytest

from deployer.adapters.polling import until


def test_until_returns_the_first_true_answer():
    answers = iter([None, [], "ready", "later"])
    assert until(lambda: next(answers), seconds=5, every=0.01) == "ready"


def test_until_returns_the_last_answer_at_the_deadline_and_waits_no_longer():
    calls = []
    began = time.monotonic()
    assert until(lambda: calls.append(1) or [], seconds=0.2, every=0.05) == []
    took = time.monotonic() - began
    assert 0.15 <= took < 1.0 and 3 <= len(calls) <= 6, (took, len(calls))


def test_until_asks_at_least_once_with_no_time_left():
    calls = []
    assert until(lambda: calls.append(1) or 0, seconds=0, every=1) == 0
    assert calls == [1]


def test_until_lets_an_exception_through_without_retrying():
    calls = []

    def broken():
        calls.append(1)
        raise ValueError("engine said no")

    with pytest.raises(ValueError, match="engine said no"):
        until(broken, seconds=5, every=0.01)
    assert calls == [1]


def test_a_first_true_answer_waits_for_nothing_and_imports_nothing():
    import subprocess
    import sys

    code = (
        "import sys; from deployer.adapters.polling import until; "
        "assert until(lambda: 7, seconds=5, every=1) == 7; print('tenacity' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "an exec's exit code, ready at once, must not pay for tenacity's import"
