"""A handler module for tests/dev/test_runtime_api.py, run by awslambdaric in its own process.
The event says what to do; ``RIC_STUB_FAIL_IMPORT=1`` makes the module raise at import."""

from __future__ import annotations

import os
import time
from typing import Any

if os.environ.get("RIC_STUB_FAIL_IMPORT") == "1":
    raise RuntimeError("the stub refuses to load")

LOADED_AT = time.time()


def handler(event: dict[str, Any], context: Any) -> Any:
    action = event.get("action", "echo")
    if action == "raise":
        raise ValueError(f"bad input: {event.get('value')}")
    if action == "sleep":
        time.sleep(float(event["seconds"]))
    if action == "exit":
        os._exit(3)
    return {
        "event": event,
        "pid": os.getpid(),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "loaded_at": LOADED_AT,
        "env": {
            name: os.environ.get(name)
            for name in (
                "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "AWS_REGION",
                "_HANDLER",
                "_X_AMZN_TRACE_ID",
                "STUB_SETTING",
            )
        },
    }
