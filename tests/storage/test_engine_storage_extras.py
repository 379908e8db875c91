"""pyworkflow-engine 0.1.9's storage conveniences: ``InMemoryStorageBackend.clear()``, the
``FileStorageBackend()`` default directory (0.1.9's ``./pyworkflow_data`` when only that
exists) and the ``pyworkflow.storage.schemas`` import path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyworkflow.core import models
from pyworkflow.core.models import Hook, RunStatus
from pyworkflow.storage.file import FileStorageBackend
from pyworkflow.storage.memory import InMemoryStorageBackend

from .test_contract import T0, make_event, make_run


async def test_clear_forgets_runs_events_hooks_and_idempotency_keys() -> None:
    storage = InMemoryStorageBackend()
    await storage.create_run(make_run("r", idempotency_key="k"), [make_event("r", 1)])
    await storage.create_hook(Hook("h", "r", "r:h"))
    storage.clear()
    assert await storage.get_run("r") is None
    assert await storage.get_events("r") == []
    assert await storage.list_hooks() == []
    assert await storage.get_run_by_idempotency_key("k") is None
    # and the store is usable again, with the same ids
    await storage.create_run(make_run("r", idempotency_key="k"), [make_event("r", 1)])
    assert (await storage.list_runs())[0][0].run_id == "r"


def test_file_default_directory_is_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = FileStorageBackend()
    assert storage.base_path == Path(".pyworkflow/data")
    assert str(tmp_path / ".pyworkflow" / "data") in repr(storage)


async def test_file_default_directory_reads_an_existing_engine_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0.1.9 wrote ``runs/<id>.json`` (its ``to_dict``) and ``events/<id>.jsonl``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyworkflow_data" / "runs").mkdir(parents=True)
    (tmp_path / "pyworkflow_data" / "events").mkdir()
    run = {
        "run_id": "run_old",
        "workflow_name": "legacy",
        "status": "completed",
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
        "started_at": None,
        "completed_at": None,
        "input_args": "[]",
        "input_kwargs": "{}",
        "result": "3",
        "error": None,
        "idempotency_key": None,
        "max_duration": None,
        "context": {},
        "recovery_attempts": 0,
        "max_recovery_attempts": 3,
        "recover_on_worker_loss": True,
        "parent_run_id": None,
        "nesting_depth": 0,
        "continued_from_run_id": None,
        "continued_to_run_id": None,
    }
    (tmp_path / "pyworkflow_data" / "runs" / "run_old.json").write_text(json.dumps(run))
    event = make_event("run_old", 1).model_dump(mode="json")
    (tmp_path / "pyworkflow_data" / "events" / "run_old.jsonl").write_text(json.dumps(event) + "\n")

    storage = FileStorageBackend()
    assert storage.base_path == Path("pyworkflow_data")
    assert "pyworkflow_data" in repr(storage)
    found = await storage.get_run("run_old")
    assert found is not None and found.status == RunStatus.COMPLETED and found.result == "3"
    assert [e.sequence for e in await storage.get_events("run_old")] == [1]
    runs, _ = await storage.list_runs()
    assert [r.run_id for r in runs] == ["run_old"]


def test_file_default_directory_prefers_ours_when_both_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyworkflow_data").mkdir()
    (tmp_path / ".pyworkflow" / "data").mkdir(parents=True)
    assert FileStorageBackend().base_path == Path(".pyworkflow/data")


def test_schemas_import_path_exports_engine_records() -> None:
    from pyworkflow.storage import schemas

    names = [
        "RunStatus", "StepStatus", "HookStatus", "OverlapPolicy", "ScheduleStatus",
        "WorkflowRun", "StepExecution", "Hook", "CalendarSpec", "ScheduleSpec", "Schedule",
    ]  # fmt: skip
    for name in names:
        assert getattr(schemas, name) is getattr(models, name), name
    assert sorted(schemas.__all__) == sorted(names)
    from pyworkflow.storage.schemas import RunStatus as Status
    from pyworkflow.storage.schemas import WorkflowRun

    assert WorkflowRun(run_id="r", workflow_name="wf", status=Status.PENDING).status == "pending"
