"""What a step returns is what every replay returns: the first execution sees the value as
storage will give it back, and a value storage would change or cannot hold is an error naming
the step and where in the value the problem is (audit behaviours 2 and 7)."""

from enum import Enum, IntEnum, StrEnum

import pytest

from pyworkflow import RunStatus, get_workflow_events, get_workflow_run, sleep, step, workflow
from pyworkflow.core.serde import to_jsonable
from pyworkflow.exceptions import SerializationError


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Colour(StrEnum):
    RED = "red"


class Shape(Enum):
    SQUARE = "square"


@step
async def sv_level() -> object:  # no annotation that could decode it back into a member
    return Level.HIGH


@step
async def sv_colour():
    return {"colour": Colour.RED, Colour.RED: [Shape.SQUARE]}


@step
async def sv_type_name(value: str) -> str:
    return value  # recorded: the type the first execution saw


@workflow
async def sv_enum_results() -> list[str]:
    level = await sv_level()
    colour = await sv_colour()
    first = await sv_type_name(f"{type(level).__name__} {type(colour['colour']).__name__}")
    await sleep(5)  # the rest runs in a second execution, which replays both steps
    again = f"{type(level).__name__} {type(colour['colour']).__name__}"
    return [first, again, repr(level), repr(colour)]


async def test_an_enum_result_is_the_same_plain_value_on_the_first_run_and_on_replay(clock):
    from pyworkflow import resume, start

    run_id = await start(sv_enum_results)
    clock.advance(10)
    first, again, level, colour = await resume(run_id)
    assert first == again == "int str"
    assert level == "2"
    assert colour == "{'colour': 'red', 'red': ['square']}"


def test_dict_keys_that_collide_as_json_are_an_error_naming_both():
    with pytest.raises(SerializationError) as info:
        to_jsonable({"k": {1: "a", "1": "b"}}, what="The result of step 'x'")
    assert "The result of step 'x'" in str(info.value)
    assert "1 and '1'" in str(info.value)
    assert info.value.path == "['k']['1']"


def test_lone_surrogate_text_is_an_error_naming_where_it_is():
    raw = b"caf\xe9".decode("utf-8", "surrogateescape")
    with pytest.raises(SerializationError) as info:
        to_jsonable([{"name": raw}], what="The result of step 'x'")
    assert info.value.path == "[0]['name']"
    assert "lone surrogate" in str(info.value)
    str(info.value).encode("utf-8")  # the message itself can be written anywhere


@step
async def sv_colliding() -> dict:
    return {1: "a", "1": "b"}


@workflow
async def sv_collision() -> dict:
    return await sv_colliding()


async def test_a_step_result_with_colliding_keys_fails_that_step_naming_it(storage):
    from tests.runtime.conftest import start_failing

    run = await start_failing(sv_collision)
    assert run.status == RunStatus.FAILED
    assert "SerializationError" in run.error and "step 'sv_colliding'" in run.error
    events = await get_workflow_events(run.run_id)
    failed = [e for e in events if e.type == "step.failed"]
    assert len(failed) == 1 and failed[0].data["attempt"] == 1  # not retried
    assert failed[0].data["error_type"] == "SerializationError"
    assert "1 and '1'" in failed[0].data["error"]
    assert (await get_workflow_run(run.run_id)).status == RunStatus.FAILED
