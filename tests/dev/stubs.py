"""Stub Lambda handlers for the dev-stack tests: they record what they were given and do what
the message body says, so the tests can check the local stack's Lambda semantics alone."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

EVENTS: list[dict[str, Any]] = []  # every event any stub received, in order
RESETS: list[str] = []  # "api" / "worker" per reset() call
ENV_SEEN: dict[str, str] = {}  # the environment the worker saw on its first call
THREADS: set[str] = set()  # names of the threads the worker ran in
_lock = threading.Lock()


def reset() -> None:
    RESETS.append(__name__)


def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Echo the event back; ``/status/<code>`` answers that code, ``/raw`` answers a bare dict
    (no statusCode), ``/binary`` a base64 body with cookies, ``/boom`` raises."""
    EVENTS.append(event)
    path = event["rawPath"]
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/raw":
        return {"plain": True}  # type: ignore[return-value]
    if path == "/binary":
        return {
            "statusCode": 200,
            "isBase64Encoded": True,
            "body": "AAEC/w==",
            "headers": {"Content-Type": "application/octet-stream"},
            "cookies": ["a=1; Path=/", "b=2"],
        }
    status = int(path.rsplit("/", 1)[1]) if path.startswith("/status/") else 200
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "x-function": context.function_name},
        "body": json.dumps(
            {"event": event, "remaining_ms": context.get_remaining_time_in_millis()}
        ),
    }


def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Per record body: "ok" succeeds, "fail" is reported failed, "crash" fails the batch,
    "bad-report" returns a response naming no record of the batch."""
    with _lock:
        EVENTS.append(event)
        THREADS.add(threading.current_thread().name)
        if not ENV_SEEN:
            ENV_SEEN.update(os.environ)
    if "Records" not in event:
        return {"scheduled": event}
    bodies = [r["body"] for r in event["Records"]]
    if "crash" in bodies:
        raise RuntimeError("the whole batch fails")
    if "bad-report" in bodies:
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"
        ]
    }


def clear() -> None:
    EVENTS.clear()
    RESETS.clear()
    ENV_SEEN.clear()
    THREADS.clear()
