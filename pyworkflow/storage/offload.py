"""Large payloads outside the storage item: a ``StorageBackend`` wrapper.

``OffloadingStorage(inner, blobs)`` keeps ``inner``'s contract, and every record it returns holds
full values. A record whose payload fields (an event's ``data``; a run's ``input_args``,
``input_kwargs``, ``result``, ``error``, ``context``; a hook's ``payload``; a schedule's ``args``,
``kwargs``) together exceed ``PYWORKFLOW_OFFLOAD_THRESHOLD_BYTES`` (200 KB) has its largest ones
replaced by a pointer ``{"$blob": key, "sha256", "size"}`` until it fits. The blob is written
first: a crash in between leaves at worst an orphan blob, never a pointer to nothing. Reads
resolve pointers (one ``get`` each, SHA-256 checked, then cached in-process). JSON only.

Keys: ``runs/<run id>/events/<sequence>-<sha256>.json`` (``run/<field>-``, ``hooks/<id>/payload-``,
``schedules/<id>/<field>-``). The content hash means a key's bytes never change: two workers
racing on one sequence never overwrite each other's blob, and a blob this process wrote or read
is not written again (a run record is rewritten on every lease renewal with the same input).

Limits, declared by ``payload_limits()`` and refused with a ``PayloadTooLargeError`` naming
the setting; the executor checks them before it writes and records what an oversized result
causes (``pyworkflow/runtime/payloads.py``). This layer only stores bytes and pointers.
- ``max_payload_bytes`` per field (``PYWORKFLOW_MAX_PAYLOAD_BYTES``, 50 MB: a worker holds a
  payload several times over while it decodes and replays it, in 1 GB of Lambda memory).
- without a blob store (DynamoDB, no ``PYWORKFLOW_BLOB_BUCKET``): DynamoDB's 400 KB item limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from pydantic_core import to_json

from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import Hook, HookStatus, Page, RunStatus, Schedule, WorkflowRun
from pyworkflow.exceptions import ConfigurationError, PayloadTooLargeError
from pyworkflow.settings import (  # names for messages only: settings are read elsewhere
    DEFAULT_MAX_PAYLOAD_BYTES,
    ENV_BLOB_BUCKET,
    ENV_BLOB_DIR,
    ENV_MAX_PAYLOAD_BYTES,
)
from pyworkflow.storage.base import PayloadLimits, StorageBackend
from pyworkflow.storage.blobs import BlobIntegrityError, BlobStore

DEFAULT_THRESHOLD_BYTES = 200 * 1024
#: DynamoDB's item limit, less room for keys, index attributes and the other fields
DYNAMODB_PAYLOAD_LIMIT = 400 * 1024 - 16 * 1024
#: payload bytes one write may carry inline (a DynamoDB transaction takes 4 MB at most)
BATCH_INLINE_BYTES = 2 * 1024 * 1024
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
_KNOWN_KEYS_MAX = 100_000

POINTER_KEYS = frozenset({"$blob", "sha256", "size"})
_TEXT_POINTER = '{"$blob":'
_SAFE_PART = re.compile(r"[A-Za-z0-9_.=-]{1,128}")

RUN_TEXT_FIELDS = ("input_args", "input_kwargs", "result", "error")
_SCHEDULE_FIELDS = ("args", "kwargs")


def is_pointer(value: Any) -> bool:
    return (
        isinstance(value, dict) and value.keys() == POINTER_KEYS and isinstance(value["$blob"], str)
    )


def _text_pointer(value: Any) -> dict[str, Any] | None:
    """The pointer a text field holds, or None. A JSON document never starts with ``{"$blob":``
    by accident only if it was written through here: such a value is always offloaded."""
    if not isinstance(value, str) or len(value) > 1024 or not value.startswith(_TEXT_POINTER):
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if is_pointer(data) else None


def _part(text: str) -> str:
    """A key component: ``text`` if it is plain, else its hash (run ids are user input)."""
    if _SAFE_PART.fullmatch(text) and text not in (".", ".."):
        return text
    return "h-" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class _Slot:
    """One payload field of one record in a write."""

    owner: int  # index of the record in the write
    name: str  # the model field
    key_base: str  # the key without its hash
    what: str  # for error messages
    data: bytes
    text: bool  # a JSON-text field (vs a JSON value)
    escape: bool = False  # looks like a pointer: always offloaded, so it reads back as itself

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class _Plan:
    chosen: list[_Slot] = field(default_factory=list)
    errors: dict[int, PayloadTooLargeError] = field(default_factory=dict)


class OffloadingStorage(StorageBackend):
    """``inner`` with large payloads in ``blobs`` (see the module docstring). With
    ``blobs=None`` nothing is offloaded and payloads over ``threshold_bytes`` are refused with
    a ``PayloadTooLargeError`` naming ``limit_setting`` (DynamoDB's item limit)."""

    def __init__(
        self,
        inner: StorageBackend,
        blobs: BlobStore | None,
        *,
        threshold_bytes: int | None = None,
        max_payload_bytes: int | None = None,
        batch_inline_bytes: int = BATCH_INLINE_BYTES,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        limit_setting: str = f"DynamoDB's 400 KB item limit; set {ENV_BLOB_BUCKET} to keep "
        "larger payloads in S3",
    ) -> None:
        self.inner = inner
        self.blobs = blobs
        if blobs is None:
            self.threshold = threshold_bytes or DYNAMODB_PAYLOAD_LIMIT
        else:
            self.threshold = threshold_bytes or DEFAULT_THRESHOLD_BYTES
        self.max_payload = max_payload_bytes or DEFAULT_MAX_PAYLOAD_BYTES
        self.batch_inline = max(batch_inline_bytes, self.threshold)
        self.limit_setting = limit_setting
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_max = cache_bytes
        self._known: OrderedDict[str, None] = OrderedDict()

    # Counters and backend-specific helpers (ensure_table, requests...) are the inner one's.
    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    @property  # type: ignore[override]
    def writes(self) -> int:
        return self.inner.writes

    @writes.setter
    def writes(self, value: int) -> None:
        self.inner.writes = value

    @property  # type: ignore[override]
    def reads(self) -> int:
        return self.inner.reads

    @reads.setter
    def reads(self, value: int) -> None:
        self.inner.reads = value

    def payload_limits(self) -> PayloadLimits:
        if self.blobs is None:
            return PayloadLimits(per_record=self.threshold, per_record_setting=self.limit_setting)
        return PayloadLimits(per_field=self.max_payload, per_field_setting=ENV_MAX_PAYLOAD_BYTES)

    async def close(self) -> None:
        await self.inner.close()
        if self.blobs is not None:
            await self.blobs.close()

    # --- runs --------------------------------------------------------------------------------
    async def create_run(self, run: WorkflowRun, events: list[Event]) -> WorkflowRun:
        pointers = await self._offload([self._run_slots(run, 0), *self._event_slots(events, 1)])
        stored = await self.inner.create_run(
            self._with(run, pointers, 0),
            [self._with(e, pointers, i + 1) for i, e in enumerate(events)],
        )
        return self._restore(stored, run, pointers, 0)

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        return await self._resolve_run(await self.inner.get_run(run_id))

    async def get_run_by_idempotency_key(self, key: str) -> WorkflowRun | None:
        return await self._resolve_run(await self.inner.get_run_by_idempotency_key(key))

    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun:
        pointers = await self._offload([self._run_slots(run, 0)])
        stored = await self.inner.update_run(
            self._with(run, pointers, 0), expected_version=expected_version
        )
        return self._restore(stored, run, pointers, 0)

    async def list_runs_page(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        page = await self.inner.list_runs_page(
            status=status,
            workflow_name=workflow_name,
            parent_run_id=parent_run_id,
            limit=limit,
            cursor=cursor,
        )
        items = await asyncio.gather(*(self._resolve_run(r) for r in page.items))
        return page.model_copy(update={"items": list(items)})

    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> list[WorkflowRun]:
        runs = await self.inner.list_due_runs(now, limit=limit, after=after)
        return [
            r for r in await asyncio.gather(*(self._resolve_run(r) for r in runs)) if r is not None
        ]

    # --- events ------------------------------------------------------------------------------
    async def append_events(
        self,
        run_id: str,
        events: list[Event],
        *,
        run: WorkflowRun | None = None,
        expected_version: int | None = None,
    ) -> WorkflowRun | None:
        plan = self._plan_append(events, run)
        self._raise_first(plan)
        pointers = await self._store(plan)
        n = len(events)
        stored = await self.inner.append_events(
            run_id,
            [self._with(e, pointers, i) for i, e in enumerate(events)],
            run=self._with(run, pointers, n) if run is not None else None,
            expected_version=expected_version,
        )
        return self._restore(stored, run, pointers, n) if stored is not None else None

    async def read_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]:
        events = await self.inner.read_events(run_id, after_sequence=after_sequence)
        return list(await asyncio.gather(*(self._resolve_event(e) for e in events)))

    async def continue_run(
        self,
        run: WorkflowRun,
        events: list[Event],
        *,
        expected_version: int,
        new_run: WorkflowRun,
        new_events: list[Event],
    ) -> WorkflowRun:
        n = len(events)
        plan = self._plan(
            [
                *self._event_slots(events, 0),
                self._run_slots(run, n),
                self._run_slots(new_run, n + 1),
                *self._event_slots(new_events, n + 2),
            ]
        )
        self._raise_first(plan)
        pointers = await self._store(plan)
        stored = await self.inner.continue_run(
            self._with(run, pointers, n),
            [self._with(e, pointers, i) for i, e in enumerate(events)],
            expected_version=expected_version,
            new_run=self._with(new_run, pointers, n + 1),
            new_events=[self._with(e, pointers, n + 2 + i) for i, e in enumerate(new_events)],
        )
        return self._restore(stored, run, pointers, n)

    # --- hooks -------------------------------------------------------------------------------
    async def create_hook(self, hook: Hook) -> None:
        pointers = await self._offload([self._hook_slots(hook, 0)])
        await self.inner.create_hook(self._with(hook, pointers, 0))

    async def get_hook_by_hash(self, token_hash: str) -> Hook | None:
        return await self._resolve_hook(await self.inner.get_hook_by_hash(token_hash))

    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None:
        return await self._resolve_hook(
            await self.inner.find_hook(run_id, hook_id=hook_id, name=name)
        )

    async def update_hook(self, hook: Hook, *, expected_version: int) -> Hook:
        pointers = await self._offload([self._hook_slots(hook, 0)])
        stored = await self.inner.update_hook(
            self._with(hook, pointers, 0), expected_version=expected_version
        )
        return self._restore(stored, hook, pointers, 0)

    async def read_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]:
        hooks = await self.inner.read_hooks(run_id=run_id, status=status, limit=limit)
        return [
            h
            for h in await asyncio.gather(*(self._resolve_hook(h) for h in hooks))
            if h is not None
        ]

    # --- schedules ---------------------------------------------------------------------------
    async def create_schedule(self, schedule: Schedule) -> Schedule:
        pointers = await self._offload([self._schedule_slots(schedule, 0)])
        stored = await self.inner.create_schedule(self._with(schedule, pointers, 0))
        return self._restore(stored, schedule, pointers, 0)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        return await self._resolve_schedule(await self.inner.get_schedule(schedule_id))

    async def update_schedule(self, schedule: Schedule, *, expected_version: int) -> Schedule:
        pointers = await self._offload([self._schedule_slots(schedule, 0)])
        stored = await self.inner.update_schedule(
            self._with(schedule, pointers, 0), expected_version=expected_version
        )
        return self._restore(stored, schedule, pointers, 0)

    async def delete_schedule(self, schedule_id: str) -> bool:
        return await self.inner.delete_schedule(schedule_id)

    async def list_schedules(
        self, *, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Schedule]:
        found = await self.inner.list_schedules(
            workflow_name=workflow_name, status=status, limit=limit
        )
        return [
            s
            for s in await asyncio.gather(*(self._resolve_schedule(s) for s in found))
            if s is not None
        ]

    # --- slots: the payload fields of each record ----------------------------------------------
    def _text_slot(
        self, owner: int, name: str, value: str | None, key_base: str, what: str
    ) -> list[_Slot]:
        if value is None:
            return []
        return [
            _Slot(
                owner,
                name,
                key_base,
                what,
                value.encode(),
                True,
                escape=self.blobs is not None and _text_pointer(value) is not None,
            )
        ]

    def _json_slot(
        self, owner: int, name: str, value: Any, key_base: str, what: str
    ) -> list[_Slot]:
        if value is None or value == {}:
            return []
        return [
            _Slot(
                owner,
                name,
                key_base,
                what,
                to_json(value),
                False,
                escape=self.blobs is not None and is_pointer(value),
            )
        ]

    def _run_slots(self, run: WorkflowRun, owner: int) -> list[_Slot]:
        base = f"runs/{_part(run.run_id)}/run"
        slots = [
            s
            for name in RUN_TEXT_FIELDS
            for s in self._text_slot(
                owner, name, getattr(run, name), f"{base}/{name}", describe_run_field(run, name)
            )
        ]
        return slots + self._json_slot(
            owner, "context", run.context, f"{base}/context", describe_run_field(run, "context")
        )

    def _event_slots(self, events: list[Event], first: int) -> list[list[_Slot]]:
        return [
            self._json_slot(
                first + i,
                "data",
                e.data,
                f"runs/{_part(e.run_id)}/events/{e.sequence:010d}",
                describe_event(e),
            )
            for i, e in enumerate(events)
        ]

    def _hook_slots(self, hook: Hook, owner: int) -> list[_Slot]:
        return self._json_slot(
            owner,
            "payload",
            hook.payload,
            f"runs/{_part(hook.run_id)}/hooks/{_part(hook.hook_id)}/payload",
            f"The payload of hook {hook.name!r}",
        )

    def _schedule_slots(self, schedule: Schedule, owner: int) -> list[_Slot]:
        base = f"schedules/{_part(schedule.schedule_id)}"
        return [
            s
            for name in _SCHEDULE_FIELDS
            for s in self._text_slot(
                owner,
                name,
                getattr(schedule, name),
                f"{base}/{name}",
                f"The arguments of schedule {schedule.schedule_id!r}",
            )
        ]

    def _plan_append(self, events: list[Event], run: WorkflowRun | None) -> _Plan:
        records = self._event_slots(events, 0)
        if run is not None:
            records.append(self._run_slots(run, len(events)))
        return self._plan(records)

    # --- planning and storing ----------------------------------------------------------------
    def _plan(self, records: list[list[_Slot]]) -> _Plan:
        """Which fields go to the blob store: per record, the largest until the rest fits the
        threshold (and pointer look-alikes); then, over the whole write, the largest left
        until the rest fits one write. Fields over the limit become errors."""
        plan = _Plan()
        inline: list[_Slot] = []
        totals: dict[int, int] = {}
        for slots in records:
            total = sum(s.size for s in slots)
            if slots:
                totals[slots[0].owner] = total
            for slot in sorted(slots, key=lambda s: (not s.escape, -s.size)):
                if slot.escape or total > self.threshold:
                    plan.chosen.append(slot)
                    total -= slot.size
                else:
                    inline.append(slot)
        if self.blobs is not None:
            total = sum(s.size for s in inline)
            for slot in sorted(inline, key=lambda s: -s.size):
                if total <= self.batch_inline:
                    break
                plan.chosen.append(slot)
                total -= slot.size
        limit, setting = (
            (self.threshold, self.limit_setting)
            if self.blobs is None
            else (self.max_payload, ENV_MAX_PAYLOAD_BYTES)
        )
        for slot in plan.chosen:
            if slot.owner in plan.errors:
                continue
            if self.blobs is None:  # the whole record is what does not fit
                plan.errors[slot.owner] = PayloadTooLargeError(
                    slot.what, totals[slot.owner], limit, setting
                )
            elif slot.size > limit:
                plan.errors[slot.owner] = PayloadTooLargeError(slot.what, slot.size, limit, setting)
        return plan

    @staticmethod
    def _raise_first(plan: _Plan) -> None:
        if plan.errors:
            raise next(iter(plan.errors.values()))

    async def _offload(self, records: list[list[_Slot]]) -> dict[tuple[int, str], Any]:
        """Plan, refuse what is over the limit, store the rest: what each field holds now."""
        plan = self._plan(records)
        self._raise_first(plan)
        return await self._store(plan)

    async def _store(self, plan: _Plan) -> dict[tuple[int, str], Any]:
        """Write the chosen blobs (all of them before any item); returns what each field
        holds instead: the pointer, as a dict or as JSON text."""
        if not plan.chosen:
            return {}
        self._blob_store()
        out: dict[tuple[int, str], Any] = {}
        writes = []
        for slot in plan.chosen:
            digest = hashlib.sha256(slot.data).hexdigest()
            key = f"{slot.key_base}-{digest}.json"
            pointer = {"$blob": key, "sha256": digest, "size": slot.size}
            out[(slot.owner, slot.name)] = (
                json.dumps(pointer, separators=(",", ":")) if slot.text else pointer
            )
            if key not in self._known:
                writes.append(self._put(key, slot.data))
        await asyncio.gather(*writes)
        return out

    def _blob_store(self) -> BlobStore:
        """The blob store a plan that chose blobs writes to (only chosen when there is one)."""
        if self.blobs is None:
            raise ConfigurationError("This storage has no blob store to offload payloads to")
        return self.blobs

    async def _put(self, key: str, data: bytes) -> None:
        await self._blob_store().put(key, data)
        # known only once written: a concurrent write of the same key writes it too
        self._mark_known(key)
        self._cache_put(key, data)

    @staticmethod
    def _with(model: Any, pointers: dict[tuple[int, str], Any], owner: int) -> Any:
        update = {name: value for (o, name), value in pointers.items() if o == owner}
        return model.model_copy(update=update) if update else model

    @staticmethod
    def _restore(
        stored: Any, original: Any, pointers: dict[tuple[int, str], Any], owner: int
    ) -> Any:
        """The record ``inner`` returned, with the full values it was given back in place of
        the pointers (no read needed)."""
        names = [name for (o, name) in pointers if o == owner]
        if not names:
            return stored
        return stored.model_copy(update={name: getattr(original, name) for name in names})

    # --- reading ------------------------------------------------------------------------------
    async def _load(self, pointer: dict[str, Any]) -> bytes:
        key = pointer["$blob"]
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            return data
        if self.blobs is None:
            raise ConfigurationError(
                f"A stored record points to the large payload {key!r}, but no blob store is "
                f"configured: set {ENV_BLOB_BUCKET} (S3) or {ENV_BLOB_DIR} (a directory)"
            )
        data = await self.blobs.get(key)
        if len(data) != pointer["size"] or hashlib.sha256(data).hexdigest() != pointer["sha256"]:
            raise BlobIntegrityError(
                f"Blob {key!r} does not match its pointer (size {len(data)}, expected "
                f"{pointer['size']}): refusing to use it"
            )
        self._mark_known(key)
        self._cache_put(key, data)
        return data

    async def _value(self, value: Any, *, text: bool) -> tuple[bool, Any]:
        """(True, the full value) if ``value`` is a pointer, else (False, value)."""
        pointer = _text_pointer(value) if text else (value if is_pointer(value) else None)
        if pointer is None:
            return False, value
        data = await self._load(pointer)
        return True, (data.decode() if text else json.loads(data))

    async def _resolve(self, model: Any, fields: dict[str, bool]) -> Any:
        if model is None:
            return None
        names = list(fields)
        found = await asyncio.gather(
            *(self._value(getattr(model, n), text=fields[n]) for n in names)
        )
        update = {n: v for n, (hit, v) in zip(names, found, strict=True) if hit}
        return model.model_copy(update=update) if update else model

    async def _resolve_run(self, run: WorkflowRun | None) -> WorkflowRun | None:
        return cast(
            WorkflowRun | None,
            await self._resolve(run, {**dict.fromkeys(RUN_TEXT_FIELDS, True), "context": False}),
        )

    async def _resolve_event(self, event: Event) -> Event:
        return cast(Event, await self._resolve(event, {"data": False}))

    async def _resolve_hook(self, hook: Hook | None) -> Hook | None:
        return cast(Hook | None, await self._resolve(hook, {"payload": False}))

    async def _resolve_schedule(self, schedule: Schedule | None) -> Schedule | None:
        return cast(
            Schedule | None, await self._resolve(schedule, dict.fromkeys(_SCHEDULE_FIELDS, True))
        )

    # --- the cache: content-addressed, so never stale -------------------------------------------
    def _cache_put(self, key: str, data: bytes) -> None:
        if len(data) > self._cache_max // 4:
            return  # one huge payload would flush everything else
        old = self._cache.pop(key, None)
        if old is not None:
            self._cache_bytes -= len(old)
        self._cache[key] = data
        self._cache_bytes += len(data)
        while self._cache_bytes > self._cache_max and self._cache:
            _, evicted = self._cache.popitem(last=False)
            self._cache_bytes -= len(evicted)

    def _mark_known(self, key: str) -> None:
        self._known[key] = None
        self._known.move_to_end(key)
        while len(self._known) > _KNOWN_KEYS_MAX:
            self._known.popitem(last=False)


# --- error messages (the executor's check names payloads the same way) ---------------------------
def describe_run_field(run: WorkflowRun, name: str) -> str:
    if name in ("input_args", "input_kwargs"):
        return f"The arguments of workflow {run.workflow_name!r}"
    if name == "result":
        return f"The result of workflow {run.workflow_name!r}"
    return f"The {name} of run {run.run_id}"


def describe_event(event: Event) -> str:
    name = event.data.get("name") or event.data.get("step_name")
    if event.type == EventType.STEP_COMPLETED:
        return f"The result of step {name!r}"
    if event.type == EventType.WORKFLOW_COMPLETED:
        return "The result of the workflow"
    if event.type == EventType.HOOK_RECEIVED:
        return f"The payload of hook {name!r}"
    if event.type == EventType.WORKFLOW_CONTINUED_AS_NEW:
        return "The arguments of the continued run"
    return f"The data of event {event.sequence} ({event.type.value}) of run {event.run_id}"


__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_THRESHOLD_BYTES",
    "OffloadingStorage",
    "RUN_TEXT_FIELDS",
    "describe_event",
    "describe_run_field",
    "PayloadTooLargeError",
    "is_pointer",
]
