"""Wake-ups as SQS messages on the work queue: one SendMessage each, delayed by
``DelaySeconds`` (at most ``SQS_MAX_DELAY_SECONDS``, SQS's limit) when the wait is short."""

from __future__ import annotations

from typing import Any

from pyworkflow.transport.clients import AwsClients
from pyworkflow.transport.messages import wake_body

SQS_MAX_DELAY_SECONDS = 900  # SQS refuses a longer DelaySeconds


class SqsQueue:
    """The work queue at ``url``; the worker Lambda drives the run each message names."""

    def __init__(self, url: str, clients: AwsClients) -> None:
        self.url = url
        self.clients = clients

    async def send(
        self, run_id: str, reason: str, *, delay: int = 0, key: str | None = None
    ) -> None:
        """One SendMessage, visible after ``delay`` seconds (0: at once; SQS takes at most
        ``SQS_MAX_DELAY_SECONDS``)."""
        sqs = await self.clients.get("sqs")
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MessageBody": wake_body(run_id, reason, key),
        }
        if delay > 0:
            kwargs["DelaySeconds"] = delay
        self.clients.requests["sqs.SendMessage"] += 1
        await sqs.send_message(**kwargs)
