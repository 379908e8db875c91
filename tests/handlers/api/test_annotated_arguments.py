"""``Annotated`` constraints on a workflow's parameters hold over the API: a start whose
arguments break them is a 422 ``InvalidArgumentsError`` and writes nothing."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from pyworkflow import workflow
from pyworkflow.core.models import RunStatus
from tests.handlers.api.conftest import Api


@workflow(name="api_annotated_quantity")
async def order_quantity(quantity: Annotated[int, Field(gt=0, le=100)]) -> int:
    return quantity * 2


def test_an_argument_breaking_its_annotated_constraint_is_422_and_writes_nothing(api: Api):
    response = api.http("POST", "/runs", {"workflow": "api_annotated_quantity", "args": [-5]})
    assert response.status == 422, response.body
    assert response.body["error"]["type"] == "InvalidArgumentsError"
    assert "greater than 0" in response.body["error"]["message"]
    assert api.count_runs() == 0
    assert api.dispatcher.woken == []


def test_an_argument_within_its_annotated_constraint_starts_the_run(api: Api):
    response = api.http("POST", "/runs", {"workflow": "api_annotated_quantity", "args": [7]})
    assert response.status == 202, response.body
    api.drive()
    run = api.get(response.body["run_id"])
    assert run.status == RunStatus.COMPLETED and run.get_result() == 14
