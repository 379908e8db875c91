"""Every name of pyworkflow-engine 0.1.9's ``__all__`` imports from pyworkflow, called alike.

The specification is 0.1.9's own sdist (the ``engine_sdist`` fixture), read with ``ast`` and
never imported. A deviation kept on purpose is listed in DEVIATIONS with its reason, and in
docs/compatibility.md.
"""

import inspect

import pytest

import pyworkflow

from .engine_spec import EngineSource, differences, engine_all, our_signature

# pyworkflow-engine 0.1.9's ``pyworkflow.__all__``, in its order.
ENGINE_ALL = [
    "__version__",
    "configure",
    "configure_from_yaml",
    "get_config",
    "get_storage",
    "reset_config",
    "discover_workflows",
    "DiscoveryError",
    "workflow",
    "step",
    "scheduled_workflow",
    "create_schedule",
    "get_schedule",
    "list_schedules",
    "update_schedule",
    "pause_schedule",
    "resume_schedule",
    "delete_schedule",
    "trigger_schedule",
    "backfill_schedule",
    "activate_scheduled_workflows",
    "get_scheduled_workflow",
    "list_scheduled_workflows",
    "ScheduledWorkflowMetadata",
    "sleep",
    "hook",
    "define_hook",
    "TypedHook",
    "resume_hook",
    "ResumeResult",
    "shield",
    "continue_as_new",
    "start_child_workflow",
    "ChildWorkflowHandle",
    "start",
    "resume",
    "cancel_workflow",
    "get_workflow_run",
    "get_workflow_events",
    "get_workflow_chain",
    "WorkflowError",
    "FatalError",
    "RetryableError",
    "CancellationError",
    "SuspensionSignal",
    "WorkflowNotFoundError",
    "WorkflowAlreadyRunningError",
    "HookNotFoundError",
    "HookExpiredError",
    "HookAlreadyReceivedError",
    "InvalidTokenError",
    "ConfigurationError",
    "ChildWorkflowError",
    "ChildWorkflowFailedError",
    "MaxNestingDepthError",
    "WorkflowContext",
    "LocalContext",
    "MockContext",
    "get_context",
    "has_context",
    "set_context",
    "reset_context",
    "StepContext",
    "get_step_context",
    "has_step_context",
    "set_step_context",
    "list_workflows",
    "get_workflow",
    "list_steps",
    "get_step",
    "StorageBackend",
    "FileStorageBackend",
    "InMemoryStorageBackend",
    "WorkflowRun",
    "RunStatus",
    "Schedule",
    "ScheduleSpec",
    "CalendarSpec",
    "ScheduleStatus",
    "OverlapPolicy",
    "Runtime",
    "LocalRuntime",
    "get_runtime",
    "register_runtime",
    "LocalScheduler",
    "configure_logging",
    "get_logger",
    "bind_workflow_context",
    "bind_step_context",
]

# Signatures that differ from 0.1.9's on purpose: name -> (the differences the check reports,
# why). Each is also a row of docs/compatibility.md. The differences are pinned, so a new one
# fails the test even for a name listed here.
DEVIATIONS: dict[str, tuple[list[str], str]] = {
    "hook": (
        ["name: default added"],
        "a hook without a name is allowed (AWS's create_callback has no required name); every "
        "0.1.9 call, which passes one, works the same",
    ),
    "WorkflowRun": (
        ["status: default added"],
        "a run is created pending, so status defaults to RunStatus.PENDING; every 0.1.9 call "
        "(which always passes it) works the same",
    ),
}

# Names whose call signature is not compared, and why.
NOT_COMPARED = {
    "__version__": "a string, not a callable (ours is pyworkflow's own version)",
    "StepContext": "a pydantic model in both: its fields are the subclass's own, given by keyword",
}


@pytest.fixture(scope="module")
def engine(engine_sdist):
    return EngineSource(engine_sdist)


def test_pinned_list_is_the_engines_all(engine_sdist):
    assert engine_all(engine_sdist) == ENGINE_ALL


@pytest.mark.parametrize("name", ENGINE_ALL)
def test_name_imports_from_pyworkflow(name):
    namespace: dict[str, object] = {}
    exec(f"from pyworkflow import {name}", namespace)  # the way user code imports it
    assert namespace[name] is getattr(pyworkflow, name)


def test_names_not_compared_are_what_the_reason_says():
    from pydantic import BaseModel

    assert set(NOT_COMPARED) <= set(ENGINE_ALL)
    assert isinstance(pyworkflow.__version__, str)
    assert issubclass(pyworkflow.StepContext, BaseModel)


@pytest.mark.parametrize("name", [n for n in ENGINE_ALL if n not in NOT_COMPARED])
def test_signature_matches_engine(engine, name):
    ours = getattr(pyworkflow, name)
    if engine.is_enum(name):
        engine_values = engine.enum_values(name)
        our_values = {member.name: member.value for member in ours}
        assert {k: our_values.get(k) for k in engine_values} == engine_values
        return
    engine_params = engine.signature(name)
    assert engine_params is not None, f"{name}: no signature read from 0.1.9 (add a rule)"
    found = differences(engine_params, our_signature(ours))
    expected = DEVIATIONS.get(name, ([], ""))[0]
    assert found == expected, (
        f"{name}{inspect.signature(ours)} differs from 0.1.9's "
        f"({', '.join(map(str, engine_params))}): {found}"
    )


def test_deviations_are_documented():
    from pathlib import Path

    table = (Path(__file__).resolve().parents[2] / "docs" / "compatibility.md").read_text()
    for name in DEVIATIONS:
        assert f"`{name}" in table, f"{name}'s deviation is not in docs/compatibility.md"
