"""``configure()`` after the first run takes effect, or says why it cannot (audit behaviour
12); before, runtimes kept the settings they were made with and said nothing."""

from datetime import timedelta

import pytest

import pyworkflow
from pyworkflow import RunStatus, get_workflow_events, start, step, workflow
from pyworkflow.exceptions import ConfigurationError, EventLimitExceededError
from tests.runtime.conftest import start_failing

ATTEMPTS: list[int] = []
LEASES: list[timedelta] = []


@step(retry_delay=0)
async def cf_flaky() -> str:
    ATTEMPTS.append(1)
    raise ValueError("down")


@workflow
async def cf_retries() -> str:
    return await cf_flaky()


@step
async def cf_tick(i: int) -> int:
    return i


@workflow
async def cf_many(n: int) -> int:
    for i in range(n):
        await cf_tick(i)
    return n


@step
async def cf_look_at_lease() -> None:
    storage = pyworkflow.get_storage()
    running = (await storage.list_runs_page(status=RunStatus.RUNNING)).items
    clock = pyworkflow.get_config().clock
    LEASES.extend(r.lease_expires_at - clock.now() for r in running)


@workflow
async def cf_leased() -> None:
    await cf_look_at_lease()


async def test_an_event_limit_configured_after_the_first_run_applies_to_the_next(storage):
    assert (
        await start(cf_many, 3) == (await pyworkflow.get_storage().list_runs_page()).items[0].run_id
    )
    with pytest.warns(UserWarning, match="not recommended"):
        pyworkflow.configure(event_soft_limit=4, event_hard_limit=5)
    run = await start_failing(cf_many, 10)
    assert run.error_type == EventLimitExceededError.__name__
    assert len(await get_workflow_events(run.run_id)) <= 6


async def test_default_retries_configured_after_the_first_run_applies_to_steps(storage):
    await start(cf_many, 1)
    ATTEMPTS.clear()
    pyworkflow.configure(default_retries=1, retry_inline_max_seconds=5)
    await start_failing(cf_retries)
    assert len(ATTEMPTS) == 2  # the first attempt and one retry, not the default three


async def test_a_lease_configured_after_the_first_run_is_the_next_runs_lease(clock):
    await start(cf_many, 1)
    LEASES.clear()
    pyworkflow.configure(lease_seconds=7)
    await start(cf_leased)
    assert LEASES == [timedelta(seconds=7)]


async def test_a_db_path_configured_after_the_first_run_stores_the_next_runs_there(tmp_path):
    first = await start(cf_many, 1)
    pyworkflow.configure(db_path=str(tmp_path / "second.db"))
    second = await start(cf_many, 2)
    store = pyworkflow.get_storage()
    assert store.db_path == tmp_path / "second.db"
    assert await store.get_run(second) is not None and await store.get_run(first) is None


async def test_db_path_next_to_a_configured_storage_is_refused(storage):
    with pytest.raises(ConfigurationError, match="storage=SQLiteStorageBackend"):
        pyworkflow.configure(db_path="elsewhere.db")


@pytest.mark.parametrize(
    "option,value,why",
    [
        ("celery_broker", "redis://", "no Celery runtime"),
        ("default_recover_on_worker_loss", False, "always recovered"),
        ("default_max_recovery_attempts", 1, "never given up"),
        ("aws_region", "eu-west-1", "AWS_REGION"),
    ],
)
def test_an_option_without_effect_says_why(option, value, why):
    with pytest.warns(UserWarning, match=why):
        pyworkflow.configure(**{option: value})


def test_an_unavailable_runtime_is_refused():
    with pytest.raises(ConfigurationError, match="'local'"):
        pyworkflow.configure(default_runtime="celery")
    assert pyworkflow.get_config().default_runtime == "local"
