"""Hook names are per workflow: a typed ``define_hook("approval", Model)`` in one workflow does not
impose its model on a plain ``hook("approval")`` in another (one API process imports both)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import pyworkflow
from pyworkflow import HookPayloadError, define_hook, hook, workflow

TOKENS: dict[str, str] = {}


class Approval(BaseModel):
    approver: str


typed_approval = define_hook("approval", Approval)


@workflow
async def typed_flow() -> str:
    payload = await typed_approval(on_created=lambda t: TOKENS.__setitem__("typed", t))
    return payload.approver


@workflow
async def plain_flow() -> dict:
    return await hook("approval", on_created=lambda t: TOKENS.__setitem__("plain", t))


async def test_a_plain_hook_is_not_checked_against_another_workflows_model(storage) -> None:
    plain = await pyworkflow.start(plain_flow)
    typed = await pyworkflow.start(typed_flow)

    await pyworkflow.resume_hook(TOKENS["plain"], {"anything": [1, 2]})
    with pytest.raises(HookPayloadError, match="Approval"):
        await pyworkflow.resume_hook(TOKENS["typed"], {"anything": [1, 2]})
    await pyworkflow.resume_hook(TOKENS["typed"], {"approver": "ana"})

    assert (await pyworkflow.get_workflow_run(plain)).get_result() == {"anything": [1, 2]}
    assert (await pyworkflow.get_workflow_run(typed)).get_result() == "ana"


SENT: list[str] = []


@pyworkflow.step
async def send_link(token: str) -> str:
    SENT.append(token)
    return "sent"


@pyworkflow.step
async def publish(decision: dict) -> str:
    return f"published {decision['ok']}"


@workflow
async def emailing_flow() -> str:
    async def email(token: str) -> None:
        await send_link(token)  # a step in on_created: a plain call, run once

    decision = await hook("go", on_created=email)
    return await publish(decision)


async def test_a_step_called_in_on_created_runs_once_and_replays_cleanly(storage) -> None:
    SENT.clear()
    run_id = await pyworkflow.start(emailing_flow)
    assert len(SENT) == 1
    await pyworkflow.resume_hook(SENT[0], {"ok": True})
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.status == "completed", run.error
    assert run.get_result() == "published True" and len(SENT) == 1
