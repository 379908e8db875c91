import asyncio
from collections import Counter

import pytest

import pyworkflow
from pyworkflow.core.clock import ManualClock
from pyworkflow.storage import InMemoryStorageBackend, SQLiteStorageBackend
from tests.storage.sql_servers import SQL_SERVERS, make_sql_backend

# How often each test's steps ran, by key: one counter the runtime tests share, emptied before
# each test (the steps counting into it are defined at their modules' top level).
calls: Counter[str] = Counter()
# Fan-out tests hold branches at gates and see them arrive (asyncio events by branch number).
gates: dict[int, asyncio.Event] = {}
entered: dict[int, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def _reset_calls():
    calls.clear()
    gates.clear()
    entered.clear()


def gate(i: int) -> asyncio.Event:
    return gates.setdefault(i, asyncio.Event())


def arrived(i: int) -> asyncio.Event:
    return entered.setdefault(i, asyncio.Event())


async def until(predicate, rounds: int = 1000) -> None:
    """Until ``predicate()`` holds, giving the loop ``rounds`` turns at most (no timing)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


@pytest.fixture(params=["memory", "sqlite", *SQL_SERVERS])
async def storage(request, tmp_path):
    """The engine's tests run on both embedded backends and on the PostgreSQL/MySQL servers."""
    if request.param == "memory":
        store = InMemoryStorageBackend()
    elif request.param == "sqlite":
        store = SQLiteStorageBackend(tmp_path / "runs.db")
    else:
        store = make_sql_backend(request.param, tmp_path)
    pyworkflow.configure(storage=store)
    yield store
    await store.close()  # a server's pool: its connections end with the test


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
