import pytest

import pyworkflow
from pyworkflow.core.clock import ManualClock
from pyworkflow.storage import InMemoryStorageBackend, SQLiteStorageBackend


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    """The engine's tests run on both embedded backends."""
    if request.param == "memory":
        store = InMemoryStorageBackend()
    else:
        store = SQLiteStorageBackend(tmp_path / "runs.db")
    pyworkflow.configure(storage=store)
    return store


@pytest.fixture
def clock(storage):
    """A manual clock on the parametrised storage: time moves only when a test says so."""
    c = ManualClock()
    pyworkflow.configure(clock=c)
    return c


async def start_failing(workflow_fn, *args, **kwargs):
    """Start a run that fails: ``start`` raises the workflow's exception (as pyworkflow-engine
    does); return the stored run, after checking it recorded that same exception."""
    with pytest.raises(BaseException) as info:  # noqa: PT011 - any failure type is the subject
        await pyworkflow.start(workflow_fn, *args, **kwargs)
    page = await pyworkflow.get_storage().list_runs_page(
        workflow_name=workflow_fn.__workflow_name__, limit=20
    )
    run = next(r for r in page.items if r.parent_run_id is None)
    assert run.error_type == type(info.value).__name__
    return run
