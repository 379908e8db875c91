"""The operations, once: runs, hooks, workflows, schedules, written against the ``Runtime``
protocol. The module-level API (``pyworkflow.start``...), the clients' embedded and AWS-direct
transports, the CLI's local backend and the Lambda handlers are thin callers of these modules,
so every entry point behaves the same (``tests/conformance`` holds them to it).

    from pyworkflow.service import runs, hooks, schedules, workflows
"""

from pyworkflow.service import hooks, runs, schedules, workflows

__all__ = ["hooks", "runs", "schedules", "workflows"]
