"""How a runtime gets runs driven: the embedded runtime uses this process's event loop
(``LocalRuntime`` through ``transport.local.LoopDelivery``); the AWS runtime sends SQS messages
and creates EventBridge Scheduler schedules (``transport.aws.AwsDispatcher``)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pyworkflow.core.models import WorkflowRun


class Dispatcher(Protocol):
    async def wake(self, run_id: str, *, reason: str) -> None:
        """Have ``run_id`` driven soon (a child ended, a payload arrived, a run was created)."""

    async def wake_at(self, run_id: str, when: datetime, *, key: str) -> None:
        """Have ``run_id`` driven at ``when``. ``key`` names this wait uniquely (run and
        sequence), so a retried suspension finds its timer instead of creating a second one."""

    async def start_child(self, run_id: str, *, wait: bool) -> None:
        """A child run was created; ``wait`` says its parent is waiting for it right now."""

    async def forget(self, run: WorkflowRun) -> None:
        """``run`` has ended: drop its pending timer (``run.wake_key``), if any."""
