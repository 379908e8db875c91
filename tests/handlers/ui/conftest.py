"""Viewer fixtures. ``viewer``: ``pyworkflow.handlers.api.handler`` called directly with HTTP API v2
events over an ``AwsRuntime`` on SQLite whose wake-ups are recorded (``tests/handlers/api``'s
``RecordingDispatcher``); ``settle()`` plays the worker and the scheduler, moving a manual clock
to each timer. The browser test (``test_browser.py``) runs the whole local stack instead."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyworkflow import config
from pyworkflow.core.clock import ManualClock
from pyworkflow.core.models import WorkflowRun
from pyworkflow.dev.pumps import FakeLambdaContext
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.handlers.api.conftest import RecordingDispatcher, http_event

WORKFLOWS = "tests.handlers.ui.workflows"
HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"  # the sample events' Host
ORIGIN = "https://" + HOST


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    text: str


@dataclass
class Viewer:
    module: Any
    runtime: AwsRuntime
    dispatcher: RecordingDispatcher
    clock: ManualClock

    def raw(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        answer: dict[str, Any] = self.module.handler(
            http_event(method, path, body, query=query),
            FakeLambdaContext(function_name="pyworkflow-api"),
        )
        return answer

    def post_form(
        self,
        path: str,
        fields: dict[str, str],
        *,
        headers: dict[str, str] | None = None,
        base64: bool = False,
    ) -> Page:
        """A browser's form POST from one of our pages (its ``Origin`` is the API's host
        unless ``headers`` say otherwise; a header set to None is left out)."""
        from urllib.parse import urlencode

        sent = {"content-type": "application/x-www-form-urlencoded", "origin": ORIGIN}
        sent.update(headers or {})
        event = http_event(
            "POST",
            path,
            raw_body=urlencode(fields),
            headers={k: v for k, v in sent.items() if v is not None},
            base64=base64,
        )
        for name, value in sent.items():
            if value is None:
                event["headers"].pop(name, None)
        answer = self.module.handler(event, FakeLambdaContext(function_name="pyworkflow-api"))
        return Page(
            answer["statusCode"], dict(answer.get("headers") or {}), answer.get("body") or ""
        )

    def page(self, path: str, **query: Any) -> Page:
        answer = self.raw("GET", path, query=query or None)
        return Page(
            answer["statusCode"], dict(answer.get("headers") or {}), answer.get("body") or ""
        )

    def start(self, workflow: str, *args: Any, **kwargs: Any) -> str:
        import json

        answer = self.raw(
            "POST", "/runs", {"workflow": workflow, "args": list(args), "kwargs": kwargs}
        )
        assert answer["statusCode"] == 202, answer
        return str(json.loads(answer["body"])["run_id"])

    def settle(self, max_rounds: int = 100) -> None:
        """Drive every woken run; when none is left, move the clock to the next timer and wake
        its run; until nothing is woken and no timer is due."""
        loop = self.module._loop
        for _ in range(max_rounds):
            if self.dispatcher.woken:
                run_id, _ = self.dispatcher.woken.pop(0)
                loop.run_until_complete(self.runtime.drive_message({"run_id": run_id}))
                continue
            if not self.dispatcher.waits:
                return
            self.dispatcher.waits.sort(key=lambda t: t[1])
            run_id, when, _ = self.dispatcher.waits.pop(0)
            if when > self.clock.now():
                self.clock.advance((when - self.clock.now()).total_seconds())
            self.dispatcher.woken.append((run_id, "timer"))
        raise AssertionError("runs did not settle")

    def run(self, run_id: str) -> WorkflowRun:
        run = self.module._loop.run_until_complete(self.runtime.storage.get_run(run_id))
        assert run is not None
        return run


@pytest.fixture(autouse=True)
def _fresh_workflow_state() -> Iterator[None]:
    """The workflows count attempts per order in memory: each test starts from none."""
    from tests.handlers.ui import workflows

    workflows.reset()
    yield
    workflows.reset()


@pytest.fixture
def viewer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Viewer]:
    from pyworkflow.handlers import api as module

    monkeypatch.setenv(config.ENV_MODULE, WORKFLOWS)
    clock = ManualClock()
    dispatcher = RecordingDispatcher()
    runtime = AwsRuntime(
        SQLiteStorageBackend(tmp_path / "ui.db"),
        dispatcher,  # type: ignore[arg-type]
        clock=clock,
        lease_seconds=30,
        max_receives=3,
    )
    module.reset(runtime)
    yield Viewer(module=module, runtime=runtime, dispatcher=dispatcher, clock=clock)
    module.reset()
