"""Audit: a wake-up's trace context is advisory, so a bad one must not lose the wake-up."""

import json

import pytest

from pyworkflow.transport.messages import WakeMessage, parse_message


@pytest.mark.parametrize("trace", ["garbage", 42, ["x"], {"traceparent": 7}, {"a": {"b": 1}}])
def test_wake_up_with_garbage_trace_context_still_wakes_the_run(trace: object) -> None:
    body = json.dumps({"run_id": "r1", "reason": "timer", "key": "r1:3", "trace": trace})
    message = parse_message(body)
    assert isinstance(message, WakeMessage)
    assert (message.run_id, message.reason, message.key, message.trace) == (
        "r1",
        "timer",
        "r1:3",
        None,
    )


def test_wake_up_from_previous_version_without_trace_field_parses() -> None:
    message = parse_message(json.dumps({"run_id": "r1", "reason": "wake"}))
    assert isinstance(message, WakeMessage)
    assert message.trace is None
