"""Wake-ups as SQS messages on the work queue: one SendMessage each, delayed by
``DelaySeconds`` (at most ``SQS_MAX_DELAY_SECONDS``, SQS's limit) when the wait is short; or
many at once (``send_batch``: SendMessageBatch, 10 a request, several requests in flight) when a
due bucket's sweep wakes its runs."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyworkflow.exceptions import WorkflowError
from pyworkflow.transport.clients import AwsClients
from pyworkflow.transport.messages import wake_body
from pyworkflow.transport.storm import SQS_MAX_DELAY_SECONDS

#: SendMessageBatch takes at most this many entries
SQS_BATCH_ENTRIES = 10
#: SendMessageBatch requests one sweep keeps in flight
BATCH_CONCURRENCY = 16
#: attempts at entries SQS failed (throttled or an internal error) before giving up
BATCH_ATTEMPTS = 8


class SendBatchError(WorkflowError):
    """Entries of a SendMessageBatch that kept failing: the sweep's message is retried."""


@dataclass(frozen=True)
class Wake:
    """One wake-up of a batch."""

    run_id: str
    reason: str
    delay: int = 0
    key: str | None = None


async def _backoff(attempt: int) -> None:
    # Full jitter: throttled senders spread out instead of retrying in step.
    await asyncio.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # noqa: S311


class SqsQueue:
    """The work queue at ``url``; the worker Lambda drives the run each message names."""

    def __init__(self, url: str, clients: AwsClients) -> None:
        self.url = url
        self.clients = clients
        #: waits between attempts at failed batch entries (tests make it instant)
        self.backoff: Callable[[int], Awaitable[None]] = _backoff

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
            kwargs["DelaySeconds"] = min(delay, SQS_MAX_DELAY_SECONDS)
        self.clients.requests["sqs.SendMessage"] += 1
        await sqs.send_message(**kwargs)

    async def send_body(self, body: str, *, delay: int = 0) -> None:
        """One SendMessage of a prepared body (a bucket sweep's continuation)."""
        sqs = await self.clients.get("sqs")
        kwargs: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": body}
        if delay > 0:
            kwargs["DelaySeconds"] = min(delay, SQS_MAX_DELAY_SECONDS)
        self.clients.requests["sqs.SendMessage"] += 1
        await sqs.send_message(**kwargs)

    async def send_batch(self, wakes: Sequence[Wake]) -> None:
        """Every wake-up of ``wakes``, 10 a SendMessageBatch, ``BATCH_CONCURRENCY`` requests in
        flight. Entries SQS reports failed are sent again after a jittered back-off; whole
        requests throttled are retried by the client (``clients.RETRIES``). Raises
        ``SendBatchError`` only if some entry still fails after ``BATCH_ATTEMPTS``."""
        slots = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def one(chunk: Sequence[Wake]) -> None:
            async with slots:
                await self._send_chunk(chunk)

        chunks = [wakes[i : i + SQS_BATCH_ENTRIES] for i in range(0, len(wakes), SQS_BATCH_ENTRIES)]
        await asyncio.gather(*(one(chunk) for chunk in chunks))

    async def _send_chunk(self, chunk: Sequence[Wake]) -> None:
        sqs = await self.clients.get("sqs")
        pending = {str(i): wake for i, wake in enumerate(chunk)}
        for attempt in range(BATCH_ATTEMPTS):
            entries = []
            for entry_id, wake in pending.items():
                entry: dict[str, Any] = {
                    "Id": entry_id,
                    "MessageBody": wake_body(wake.run_id, wake.reason, wake.key),
                }
                if wake.delay > 0:
                    entry["DelaySeconds"] = min(wake.delay, SQS_MAX_DELAY_SECONDS)
                entries.append(entry)
            self.clients.requests["sqs.SendMessageBatch"] += 1
            response = await sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            failed = response.get("Failed") or []
            senders = [f for f in failed if f.get("SenderFault")]
            if senders:  # a malformed entry: retrying cannot help
                raise SendBatchError(f"SQS refused wake-ups: {senders}")
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if not pending:
                return
            await self.backoff(attempt)
        raise SendBatchError(
            f"{len(pending)} wake-ups still failing after {BATCH_ATTEMPTS} attempts"
        )
