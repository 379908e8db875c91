"""The in-memory backend hands out and keeps copies that share nothing mutable: the cheap copy
(``private_copy``: deep only where a field holds a container) must be as safe as a deep copy."""

from __future__ import annotations

from datetime import UTC, datetime

from pyworkflow.core.models import Hook, RunStatus, WorkflowRun
from pyworkflow.storage.memory import InMemoryStorageBackend
from pyworkflow.storage.shared import private_copy


def _run() -> WorkflowRun:
    return WorkflowRun(
        run_id="run_copy",
        workflow_name="wf",
        context={"nested": {"list": [1, 2]}},
        tags=["a"],
        metadata={"k": ["v"]},
    )


def test_private_copy_shares_no_container_and_applies_the_update() -> None:
    run = _run()
    copied = private_copy(run, {"version": 7, "status": RunStatus.RUNNING})
    assert copied.version == 7 and copied.status is RunStatus.RUNNING and run.version == 0
    assert copied.context == run.context and copied.tags == run.tags
    copied.context["nested"]["list"].append(3)
    copied.tags.append("b")
    copied.metadata["k"].append("w")
    assert run.context == {"nested": {"list": [1, 2]}}
    assert run.tags == ["a"] and run.metadata == {"k": ["v"]}
    assert copied.model_dump() == {
        **run.model_dump(),
        "version": 7,
        "status": RunStatus.RUNNING,
        "context": {"nested": {"list": [1, 2, 3]}},
        "tags": ["a", "b"],
        "metadata": {"k": ["v", "w"]},
    }


def test_private_copy_keeps_a_hooks_private_token() -> None:
    hook = Hook("hook_1", "run_1", "whk_secret", expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert private_copy(hook).token == "whk_secret"


async def test_memory_records_handed_out_cannot_change_the_stored_ones() -> None:
    storage = InMemoryStorageBackend()
    created = await storage.create_run(_run(), [])
    created.context["nested"]["list"].append(99)
    created.tags.append("mutated")
    fetched = await storage.get_run("run_copy")
    assert fetched is not None
    assert fetched.context == {"nested": {"list": [1, 2]}} and fetched.tags == ["a"]
    fetched.metadata["k"].append("mutated")
    updated = await storage.update_run(fetched, expected_version=1)
    fetched.metadata["k"].append("after the write")
    again = await storage.get_run("run_copy")
    assert again is not None and again.version == 2 == updated.version
    assert again.metadata == {"k": ["v", "mutated"]}
