"""Records built, dumped and read back the way pyworkflow-engine 0.1.9's code does it."""

from datetime import UTC, datetime, timedelta

import pytest

from pyworkflow import RunStatus, Schedule, ScheduleSpec, WorkflowRun
from pyworkflow.core.models import Hook, HookStatus, StepExecution, StepStatus, hash_token


def test_workflow_run_positional_with_default_timestamps():
    before = datetime.now(UTC)
    run = WorkflowRun("run_1", "order", RunStatus.RUNNING)
    assert (run.run_id, run.workflow_name, run.status) == ("run_1", "order", RunStatus.RUNNING)
    assert before <= run.created_at <= datetime.now(UTC)
    assert run.updated_at.tzinfo is not None


def test_workflow_run_has_recovery_fields_with_engine_defaults():
    run = WorkflowRun(run_id="r", workflow_name="w", status=RunStatus.PENDING)
    assert run.max_recovery_attempts == 3
    assert run.recover_on_worker_loss is True
    assert run.recovery_attempts == 0


def test_workflow_run_to_dict_from_dict_round_trip():
    run = WorkflowRun(
        "r", "w", RunStatus.COMPLETED, result="42", max_recovery_attempts=5, nesting_depth=1
    )
    data = run.to_dict()
    assert data["status"] == "completed"
    assert isinstance(data["created_at"], str)
    assert WorkflowRun.from_dict(data) == run


def test_workflow_run_from_engine_dict():
    now = datetime.now(UTC)
    data = {
        "run_id": "r",
        "workflow_name": "w",
        "status": "suspended",
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "started_at": None,
        "completed_at": None,
        "input_args": "[]",
        "input_kwargs": "{}",
        "result": None,
        "error": None,
        "idempotency_key": None,
        "max_duration": None,
        "metadata": {"k": 1},
        "recovery_attempts": 1,
        "max_recovery_attempts": 4,
        "recover_on_worker_loss": False,
        "parent_run_id": None,
        "nesting_depth": 0,
    }
    run = WorkflowRun.from_dict(data)
    assert run.status == RunStatus.SUSPENDED and run.created_at == now
    assert (run.max_recovery_attempts, run.recover_on_worker_loss) == (4, False)
    assert run.metadata == {"k": 1}


def test_workflow_run_positional_conflict_is_a_type_error():
    with pytest.raises(TypeError):
        WorkflowRun("r", "w", run_id="again")


def test_stored_run_without_new_fields_still_loads():
    legacy = '{"run_id":"r","workflow_name":"w","created_at":"2024-01-01T00:00:00Z",'
    legacy += '"updated_at":"2024-01-01T00:00:00Z"}'
    run = WorkflowRun.model_validate_json(legacy)
    assert run.max_recovery_attempts == 3 and run.recover_on_worker_loss is True


def test_hook_built_with_token_is_stored_by_hash_only():
    hook = Hook("hook_1", "run_1", "secret-token")
    assert hook.token == "secret-token"
    assert hook.token_hash == hash_token("secret-token")
    assert hook.status == HookStatus.PENDING and hook.url == "" and hook.metadata == {}
    dumped = hook.to_dict()
    assert "secret-token" not in str(dumped) and "secret-token" not in hook.model_dump_json()


def test_hook_round_trip_and_engine_dict():
    hook = Hook(hook_id="h", run_id="r", token="t", name="approval", metadata={"a": 1})
    assert Hook.from_dict(hook.to_dict()) == hook
    engine = {
        "hook_id": "h",
        "run_id": "r",
        "url": "",
        "token": "t",
        "status": "received",
        "created_at": datetime.now(UTC).isoformat(),
        "received_at": None,
        "expires_at": None,
        "payload": '{"ok": true}',
        "name": None,
        "payload_schema": '{"type": "object"}',
        "metadata": {},
    }
    read = Hook.from_dict(engine)
    assert read.token_hash == hash_token("t") and read.status == HookStatus.RECEIVED
    assert read.payload_schema == {"type": "object"} and read.name == ""


def test_schedule_positional_default_created_at_and_round_trip():
    schedule = Schedule("s1", "report", ScheduleSpec(cron="0 9 * * *"))
    assert schedule.created_at.tzinfo is not None
    data = schedule.to_dict()
    assert data["spec"]["cron"] == "0 9 * * *" and data["status"] == "active"
    assert Schedule.from_dict(data) == schedule


def test_schedule_spec_from_dict_with_calendar():
    spec = ScheduleSpec.from_dict(
        {"calendar": [{"hour": 9}], "start_at": "2025-01-01T00:00:00+00:00"}
    )
    assert spec.calendar is not None and spec.calendar[0].hour == 9
    assert ScheduleSpec.from_dict(spec.to_dict()) == spec


def test_step_execution_record():
    step = StepExecution("s1", "r1", "charge", StepStatus.RETRYING, attempt=2)
    assert step.max_retries == 3 and step.created_at.tzinfo is not None
    step = step.model_copy(update={"retry_after": datetime.now(UTC) + timedelta(seconds=5)})
    data = step.to_dict()
    assert data["status"] == "retrying"
    assert StepExecution.from_dict(data) == step
