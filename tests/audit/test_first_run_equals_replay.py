"""The first execution sees exactly what every replay will (audit behaviour 7).

1. The step context: ``set_step_context`` records ``to_jsonable(value.to_dict())`` but keeps the
   ORIGINAL object as ``ctx.step_context`` for the rest of the first execution; a replay gets
   ``model_validate(recorded)``. Anything JSON changes (int dict keys, tuples, enum members,
   datetimes in loosely typed fields) differs between the two
   (``pyworkflow/core/step_context.py`` ``set_step_context``).
2. A step annotated to return a pydantic model gets a plain dict back — on the first run and on
   replay — whenever the model cannot validate its own ``model_dump(mode="json")``: a field with
   an alias (dumped by name, validated by alias) or a strict model with a datetime (dumped as a
   string, refused by strict validation). ``from_jsonable`` swallows the ValidationError and
   returns the raw data (``pyworkflow/core/serde.py``).
"""

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from pyworkflow import (
    StepContext,
    get_step_context,
    get_workflow_run,
    resume,
    set_step_context,
    sleep,
    start,
    step,
    workflow,
)


class Tally(StepContext):
    counts: dict = {}  # e.g. items seen, by numeric id


@step
async def fr_seen(text: str) -> str:
    return text  # recorded: what the first execution saw


@workflow(context_class=Tally)
async def fr_context() -> list[str]:
    await set_step_context(Tally(counts={7: 1}))
    first = await fr_seen(repr(get_step_context().counts))
    await sleep(5)  # the rest runs in a second execution, which replays the above
    return [first, repr(get_step_context().counts)]


async def test_the_step_context_is_the_same_on_the_first_execution_and_on_replay(clock):
    run_id = await start(fr_context)
    clock.advance(10)
    first, replayed = await resume(run_id)
    # Now: "{7: 1}" the first time, "{'7': 1}" on replay.
    assert first == replayed


class User(BaseModel):
    user_id: int = Field(alias="userId")


class Stamp(BaseModel):
    model_config = ConfigDict(strict=True)
    at: datetime


@step
async def fr_user() -> User:
    return User(userId=7)


@step
async def fr_stamp() -> Stamp:
    return Stamp(at=datetime(2024, 1, 1, tzinfo=UTC))


@workflow
async def fr_models() -> list[str]:
    return [type(await fr_user()).__name__, type(await fr_stamp()).__name__]


async def test_a_step_annotated_with_a_pydantic_model_returns_that_model(storage):
    run_id = await start(fr_models)
    # Now: ['dict', 'dict'].
    assert (await get_workflow_run(run_id)).get_result() == ["User", "Stamp"]
