"""A recorded failure says where it was raised: the user's frames (file, line, function), not
pyworkflow's or asyncio's, bounded in size, and never a local variable's value."""

from __future__ import annotations

from pyworkflow.core.retry import (
    MAX_TRACEBACK_CHARS,
    MAX_TRACEBACK_FRAMES,
    describe_error,
    format_traceback,
)


def _raise_deep(depth: int, secret: str) -> None:
    if depth == 0:
        raise KeyError("missing order")
    _raise_deep(depth - 1, secret)


def _caught(depth: int = 0) -> BaseException:
    try:
        _raise_deep(depth, secret="hunter2-api-key")
    except KeyError as exc:
        return exc
    raise AssertionError("did not raise")


def test_a_failure_records_the_user_frames_where_it_was_raised():
    trace = format_traceback(_caught())
    assert trace is not None
    assert f'File "{__file__}"' in trace and "in _raise_deep" in trace
    assert trace.splitlines()[-1] == "KeyError: 'missing order'"
    assert "pyworkflow/core" not in trace


def test_a_recorded_trace_holds_no_local_values_and_is_bounded():
    trace = format_traceback(_caught(depth=200))
    assert trace is not None
    assert "hunter2" not in trace
    assert len(trace) <= MAX_TRACEBACK_CHARS
    frames = [line for line in trace.splitlines() if line.startswith("  File ")]
    assert len(frames) == MAX_TRACEBACK_FRAMES
    assert "earlier frame(s)" in trace


def test_describe_error_carries_the_trace_and_an_exception_never_raised_has_none():
    assert "traceback" in describe_error(_caught())
    assert "traceback" not in describe_error(ValueError("built, not raised"))
