"""Completion policies of parallel()/map() (AWS's CompletionConfig), map's item index and the
serdes option, as plain functions outside a workflow."""

import asyncio
import functools

import pytest

import pyworkflow
from pyworkflow import CompletionReason, FanOutConfigError, ItemStatus, TerminationMode, step
from pyworkflow.core.fan_out_policy import as_serdes, policy, takes_index


async def outcome(x: int) -> int:
    await asyncio.sleep(0)
    if x < 0:
        raise ValueError(f"negative {x}")
    return x


async def test_tolerated_failure_count_stops_once_exceeded():
    res = await pyworkflow.map(
        outcome, [-1, 2, -3, -4, 5, 6], max_concurrency=1, tolerated_failure_count=1
    )
    assert res.completion_reason == CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    assert sorted(res.failed) == [0, 2] and res.skipped == [3, 4, 5]


async def test_tolerated_failures_is_still_accepted_as_the_older_name():
    old = await pyworkflow.map(outcome, [-1, -2, 3], max_concurrency=1, tolerated_failures=1)
    new = await pyworkflow.map(outcome, [-1, -2, 3], max_concurrency=1, tolerated_failure_count=1)
    assert old.statuses == new.statuses == [ItemStatus.FAILED, ItemStatus.FAILED, "skipped"]
    both = await pyworkflow.map(
        outcome, [-1, -2, 3], tolerated_failures=1, tolerated_failure_count=1
    )
    assert len(both) == 3


async def test_tolerated_failure_percentage_is_exceeded_only_above_it():
    # 10 items, 30 %: the third failure is 30 % (not above), the fourth 40 % (above)
    items = [-1, -2, -3, 4, 5, 6, 7, 8, -9, -10]
    res = await pyworkflow.map(outcome, items, max_concurrency=1, tolerated_failure_percentage=30)
    assert res.completion_reason == CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    assert sorted(res.failed) == [0, 1, 2, 8] and res.skipped == [9]
    at_limit = await pyworkflow.map(outcome, items[:8] + [9, 10], tolerated_failure_percentage=30)
    assert at_limit.completion_reason == CompletionReason.ALL_COMPLETED
    assert len(at_limit.failed) == 3


async def test_zero_percent_tolerates_no_failure():
    res = await pyworkflow.parallel(
        outcome(1), outcome(-2), outcome(3), max_concurrency=1, tolerated_failure_percentage=0
    )
    assert res.completion_reason == CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    assert res.skipped == [2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tolerated_failure_count": -1}, "tolerated_failure_count"),
        ({"tolerated_failure_count": True}, "tolerated_failure_count"),
        ({"tolerated_failure_percentage": -0.5}, "tolerated_failure_percentage"),
        ({"tolerated_failure_percentage": 100.5}, "tolerated_failure_percentage"),
        ({"tolerated_failure_percentage": "10"}, "tolerated_failure_percentage"),
        ({"min_successful": 3}, "min_successful"),
        ({"min_successful": 0}, "min_successful"),
        ({"tolerated_failures": 1, "tolerated_failure_count": 2}, "older name"),
        ({"on_completion": "finish"}, "on_completion"),
        ({"serdes": (str,)}, "serdes"),
    ],
)
async def test_invalid_completion_options_raise_a_typed_error_before_anything_runs(kwargs, message):
    ran = []

    async def record(x: int) -> int:
        ran.append(x)
        return x

    with pytest.raises(FanOutConfigError, match=message):
        await pyworkflow.map(record, [1, 2], **kwargs)
    coros = [record(1), record(2)]
    with pytest.raises(FanOutConfigError, match=message):
        await pyworkflow.parallel(*coros, **kwargs)
    assert ran == []
    assert issubclass(FanOutConfigError, ValueError)  # older `except ValueError` still works


async def test_unreachable_min_successful_completes_with_its_own_reason():
    res = await pyworkflow.parallel(
        outcome(-1), outcome(-2), outcome(3), outcome(4), max_concurrency=2, min_successful=3
    )
    assert res.completion_reason == CompletionReason.MIN_SUCCESSFUL_UNREACHABLE
    assert res.skipped == [2, 3]


class _Gates:
    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Event] = {}
        self.started: list[int] = []
        self.finished: list[int] = []

    def gate(self, i: int) -> asyncio.Event:
        return self.gates.setdefault(i, asyncio.Event())

    async def item(self, i: int) -> int:
        self.started.append(i)
        await self.gate(i).wait()
        self.finished.append(i)
        return i


async def _until(predicate) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def _first_of_three(mode: str) -> tuple[_Gates, pyworkflow.FanOutResult[int]]:
    g = _Gates()
    task = asyncio.create_task(
        pyworkflow.map(g.item, range(5), max_concurrency=3, min_successful=1, on_completion=mode)
    )
    await _until(lambda: len(g.started) == 3)
    g.gate(1).set()
    await _until(lambda: 1 in g.finished)
    for _ in range(5):
        await asyncio.sleep(0)
    for i in range(5):
        g.gate(i).set()
    return g, await task


async def test_on_completion_cancel_skips_the_items_still_running():
    g, res = await _first_of_three("cancel")
    assert res.completion_reason == CompletionReason.MIN_SUCCESSFUL_REACHED
    assert res.statuses == ["skipped", "succeeded", "skipped", "skipped", "skipped"]
    assert sorted(g.started) == [0, 1, 2] and g.finished == [1]


async def test_on_completion_wait_lets_started_items_finish_and_starts_no_more():
    g, res = await _first_of_three(TerminationMode.WAIT)
    assert res.completion_reason == CompletionReason.MIN_SUCCESSFUL_REACHED
    assert res.statuses == ["succeeded", "succeeded", "succeeded", "skipped", "skipped"]
    assert res.results == [0, 1, 2, None, None]
    assert sorted(g.started) == [0, 1, 2] and sorted(g.finished) == [0, 1, 2]


@step
async def labelled(item: str, index: int) -> str:
    return f"{index}:{item}"


@step
async def single(item: str) -> str:
    return item.upper()


async def with_default(item: str, suffix: str = "!") -> str:
    return item + suffix


async def varargs(*args: str) -> str:
    return "|".join(args)


async def two(prefix: str, item: str, index: int) -> str:
    return f"{prefix}{index}{item}"


async def test_map_passes_the_index_when_fn_takes_two_positional_parameters():
    assert (await pyworkflow.map(labelled, ["a", "b"])).results == ["0:a", "1:b"]
    assert (await pyworkflow.map(single, ["a", "b"])).results == ["A", "B"]
    assert (await pyworkflow.map(with_default, ["a"])).results == ["a!"]
    assert (await pyworkflow.map(varargs, ["a"])).results == ["a"]
    bound = functools.partial(two, "#")
    assert (await pyworkflow.map(bound, ["a", "b"])).results == ["#0a", "#1b"]
    assert (await pyworkflow.map(lambda item, i: outcome(item * 10 + i), [1, 2])).results == [
        10,
        21,
    ]


def test_takes_index_reads_the_signature_a_step_decorates():
    assert takes_index(labelled) and not takes_index(single)
    assert not takes_index(print)  # a builtin: one-argument call kept (print has *args)
    assert not takes_index(len)


class _Codec:
    def serialize(self, value: object) -> object:
        return value

    def deserialize(self, data: object) -> object:
        return data


def test_serdes_is_an_object_or_a_pair_of_functions():
    assert as_serdes(None) is None
    codec = _Codec()
    assert as_serdes(codec) is codec
    pair = as_serdes((str, int))
    assert pair is not None and pair.deserialize(pair.serialize(5)) == 5
    with pytest.raises(FanOutConfigError, match="serdes"):
        as_serdes(object())


def test_policy_decides_like_aws_completion_config():
    rules = policy(10, min_successful=6, tolerated_failure_percentage=25)
    assert rules.decide(5, 2) is None
    assert rules.decide(6, 0) == CompletionReason.MIN_SUCCESSFUL_REACHED
    assert rules.decide(0, 3) == CompletionReason.FAILURE_TOLERANCE_EXCEEDED  # 30 % > 25 %
    assert policy(4, min_successful=3).decide(1, 2) == CompletionReason.MIN_SUCCESSFUL_UNREACHABLE
    assert policy(3).decide(0, 3) is None  # no policy: every item runs
