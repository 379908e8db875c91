"""Large payloads on the AWS runtime: arguments, step results, hook payloads and results over the
threshold go to the template's payload bucket (moto S3), the table (DynamoDB Local, or SQLite) holds
pointers, and runs driven by ``pyworkflow/handlers/worker.py`` complete with the full values.

The cost line printed by ``test_cost_of_a_large_step_result`` is the measurement asked for in
issue 6: what a 1 MB step result costs in requests against a small one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

import pyworkflow
from pyworkflow.core.clock import new_id
from pyworkflow.core.events import EventType
from pyworkflow.core.models import RunStatus
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.storage.blobs import BlobNotFoundError, S3BlobStore
from pyworkflow.storage.offload import OffloadingStorage, PayloadTooLargeError, is_pointer
from tests.aws.conftest import Aws
from tests.aws.ops import AwsOps

KB = 1024
MB = 1024 * KB
TOKENS: dict[str, str] = {}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def render_value(seed: str, size: int) -> str:
    return (seed * (size // len(seed) + 1))[:size]


@pyworkflow.step
async def render(seed: str, size: int) -> str:
    return render_value(seed, size)


@pyworkflow.workflow
async def large_payloads(document: str, key: str) -> dict[str, Any]:
    report = await render("report-", 1 * MB)
    upload = await pyworkflow.hook("upload", on_created=lambda t: TOKENS.__setitem__(key, t))
    return {
        "document": digest(document),
        "report": digest(report),
        "upload": digest(upload["blob"]),
        "echo": document[: 250 * KB],
    }


@pyworkflow.workflow
async def one_step(size: int) -> int:
    return len(await render("r", size))


@pyworkflow.workflow
async def waits_for_upload(key: str) -> int:
    upload = await pyworkflow.hook("upload", on_created=lambda t: TOKENS.__setitem__(key, t))
    return len(upload["blob"])


@pytest.fixture
async def client(aws: Aws) -> AsyncIterator[AwsOps]:
    """The API/SDK side, with the same offloading as the worker (the stack's bucket)."""
    assert aws.stack.blob_bucket, "the template's PayloadBucket was not created in moto"
    storage = OffloadingStorage(aws.storage, S3BlobStore(aws.stack.blob_bucket))
    yield AwsOps(AwsRuntime(storage, aws.client.dispatcher))
    await storage.blobs.close()  # type: ignore[union-attr]  # (the inner one is the fixture's)


async def bucket_keys(aws: Aws, prefix: str) -> list[str]:
    import aioboto3

    async with aioboto3.Session().client("s3") as s3:
        page = await s3.list_objects_v2(Bucket=aws.stack.blob_bucket, Prefix=prefix)
    return sorted(o["Key"] for o in page.get("Contents", []))


def worker_storage(worker: Any) -> OffloadingStorage:
    storage = worker._runtime.storage
    assert isinstance(storage, OffloadingStorage), type(storage)
    return storage


async def test_large_argument_step_result_and_hook_payload(
    aws: Aws, client: AwsOps, worker: Any
) -> None:
    key = new_id("k")
    document = ("doc-" * (300 * KB // 4))[: 300 * KB]
    run_id = await client.start(large_payloads, document, key)
    await aws.pump(idle_polls=1, wait_seconds=0)
    run = await client.storage.get_run(run_id)
    assert run is not None and run.status == RunStatus.SUSPENDED, run and run.error
    assert key in TOKENS

    blob = ("upload-" * (500 * KB // 7 + 1))[: 500 * KB]
    resumed = await client.resume_hook(TOKENS[key], {"blob": blob})
    assert resumed.status == "resumed"
    await aws.pump_until_done(run_id)

    run = await client.storage.get_run(run_id)
    assert run is not None and run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == {
        "document": digest(document),
        "report": digest(render_value("report-", 1 * MB)),
        "upload": digest(blob),
        "echo": document[: 250 * KB],
    }
    assert json.loads(run.input_args) == [document, key]

    # What the table holds: pointers, each a few hundred bytes.
    raw_run = await aws.storage.get_run(run_id)
    assert raw_run is not None
    for field in ("input_args", "result"):
        assert is_pointer(json.loads(getattr(raw_run, field))), field
    raw_events = await aws.storage.get_events(run_id)
    by_type = {e.type: e for e in raw_events}
    for type_ in (
        EventType.WORKFLOW_STARTED,
        EventType.STEP_COMPLETED,
        EventType.HOOK_RECEIVED,
        EventType.WORKFLOW_COMPLETED,
    ):
        assert is_pointer(by_type[type_].data), type_
        assert len(json.dumps(by_type[type_].data)) < 300
    assert not is_pointer(by_type[EventType.HOOK_CREATED].data)  # small stays inline
    raw_hook = await aws.storage.find_hook(run_id, name="upload")
    assert raw_hook is not None and is_pointer(raw_hook.payload)

    # ... and the bucket the blobs, under the run's prefix; full events read back whole.
    keys = await bucket_keys(aws, f"runs/{run_id}/")
    assert len(keys) == 7, keys  # input, result; 4 events; the hook's payload
    events = await client.storage.get_events(run_id)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    step = next(e for e in events if e.type == EventType.STEP_COMPLETED)
    assert step.data["result"] == render_value("report-", 1 * MB)
    received = next(e for e in events if e.type == EventType.HOOK_RECEIVED)
    assert received.data["payload"] == {"blob": blob}


async def test_cost_of_a_large_step_result(
    aws: Aws, client: AwsOps, worker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same one-step workflow with a 10-byte and a 1 MB result, through the worker: the
    large one costs exactly one PutObject more (the step's event item is a pointer of the same
    shape), and a cold reader one GetObject to replay it."""

    def counted() -> Counter[str]:
        if worker._runtime is None:
            return Counter()
        storage = worker_storage(worker)
        return Counter(
            {
                **{f"storage.{k}": v for k, v in getattr(storage.inner, "requests", {}).items()},
                **storage.blobs.requests,
            }
        )  # type: ignore[union-attr]

    costs = {}
    for label, size in (("small (10 B)", 10), ("large (1 MB)", 1 * MB)):
        before = counted()
        run_id = await client.start(one_step, size)
        await aws.pump_until_done(run_id)
        run = await client.storage.get_run(run_id)
        assert run is not None and run.status == RunStatus.COMPLETED, run.error
        assert run.get_result() == size
        costs[label] = counted() - before
    small, large = costs["small (10 B)"], costs["large (1 MB)"]
    assert large - small == Counter({"s3.PutObject": 1})
    assert small - large == Counter()

    cold = OffloadingStorage(aws.storage, S3BlobStore(aws.stack.blob_bucket or ""))
    try:
        events = await cold.get_events(run_id)
        assert len(events[1].data["result"]) == 1 * MB
        gets = dict(cold.blobs.requests)  # type: ignore[union-attr]
    finally:
        await cold.blobs.close()  # type: ignore[union-attr]
    assert gets == {"s3.GetObject": 1}
    with capsys.disabled():
        print(
            f"\n[large payloads, {type(aws.storage).__name__}] worker requests per run of a "
            f"one-step workflow: small result {dict(small)}; 1 MB result {dict(large)} "
            f"(+{dict(large - small)}); a cold replay of the 1 MB run reads {gets}"
        )


async def test_payloads_over_the_limit_fail_naming_it(
    aws: Aws, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PYWORKFLOW_MAX_PAYLOAD_BYTES = 600 KB: the 1 MB step result fails its run (recorded as
    the step's failure, gap-free); a 700 KB hook payload is refused to the caller and the hook
    stays pending, so a 500 KB one still gets through."""
    monkeypatch.setenv("PYWORKFLOW_MAX_PAYLOAD_BYTES", str(600 * KB))
    # The worker's storage is built from the settings; this one, built here, is told the limit
    storage = OffloadingStorage(
        aws.storage, S3BlobStore(aws.stack.blob_bucket or ""), max_payload_bytes=600 * KB
    )
    client = AwsOps(AwsRuntime(storage, aws.client.dispatcher))
    try:
        key, waiting = new_id("k"), new_id("k")
        failing = await client.start(large_payloads, "small", key)
        hooked = await client.start(waits_for_upload, waiting)
        await aws.pump(idle_polls=1, wait_seconds=0)
        run = await storage.get_run(failing)
        assert run is not None and run.status == RunStatus.FAILED and run.error is not None
        assert re.search(r"The result of step 'render' is 1,048,\d{3} bytes of JSON", run.error)
        assert "over the limit of 614,400 bytes (PYWORKFLOW_MAX_PAYLOAD_BYTES)" in run.error
        events = await storage.get_events(failing)
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert [e.type for e in events][-2:] == [EventType.STEP_FAILED, EventType.WORKFLOW_FAILED]

        with pytest.raises(
            PayloadTooLargeError,
            match=r"The payload of hook 'upload' is "
            r".*\(PYWORKFLOW_MAX_PAYLOAD_BYTES\)",
        ):
            await client.resume_hook(TOKENS[waiting], {"blob": "u" * (700 * KB)})
        await client.resume_hook(TOKENS[waiting], {"blob": "u" * (500 * KB)})
        await aws.pump_until_done(hooked)
        run = await storage.get_run(hooked)
        assert run is not None and run.status == RunStatus.COMPLETED, run.error
        assert run.get_result() == 500 * KB
    finally:
        await storage.blobs.close()  # type: ignore[union-attr]


async def test_s3_blob_store(moto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put, get (one client reused), a missing key named in BlobNotFoundError, close/reopen."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": moto.endpoint_url,
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"blobs-{new_id('b')[2:].lower()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    store = S3BlobStore(bucket, prefix="p/")
    try:
        await store.put("runs/r1/events/1-abc.json", b'{"a":1}')
        assert await store.get("runs/r1/events/1-abc.json") == b'{"a":1}'
        client = store._client
        with pytest.raises(BlobNotFoundError, match="runs/r1/missing.json"):
            await store.get("runs/r1/missing.json")
        assert store._client is client
        assert dict(store.requests) == {"s3.PutObject": 1, "s3.GetObject": 2}
        with pytest.raises(ValueError, match="not a blob key"):
            await store.put("../escape", b"")
        keys = boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
        assert [o["Key"] for o in keys] == ["p/runs/r1/events/1-abc.json"]
    finally:
        await store.close()
    reopened = S3BlobStore(bucket, prefix="p/")
    try:
        assert await reopened.get("runs/r1/events/1-abc.json") == b'{"a":1}'
    finally:
        await reopened.close()
