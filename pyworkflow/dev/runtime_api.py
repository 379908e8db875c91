"""A function run as Lambda runs it: AWS's runtime interface client (``awslambdaric``) in its own
long-lived process, fed by a local implementation of the Lambda Runtime API
(``pyworkflow dev --lambda-runtime``).

``RicFunction`` is one function's execution environment ("sandbox"): a process started as
``python -m awslambdaric <module.handler>`` with the function's environment and the variables
Lambda sets (``AWS_LAMBDA_RUNTIME_API``, ``_HANDLER``, ``LAMBDA_TASK_ROOT``,
``AWS_LAMBDA_FUNCTION_NAME``...), and the Runtime API it polls, served by aiohttp on loopback:

    GET  /2018-06-01/runtime/invocation/next             the next event, with its headers
    POST /2018-06-01/runtime/invocation/{id}/response    the handler's result
    POST /2018-06-01/runtime/invocation/{id}/error       the handler's error document
    POST /2018-06-01/runtime/init/error                  the module failed to load

``await invoke(event)`` hands one event to the process (one at a time, as a Lambda sandbox) and
returns the handler's result, or raises ``FunctionError`` with Lambda's error document. The
emulator enforces the function's timeout: past the deadline (the ``Lambda-Runtime-Deadline-Ms``
the handler's context counts down to) the process is killed and the invocation fails with
"Task timed out after N seconds"; the next invocation starts a new process (a cold start). A
process that dies is replaced the same way. Cold starts (process start → its first ``/next``)
and invocation durations are recorded.

Each process gets its own server (its own port): a killed process's pending ``/next`` can never
take an event meant for its successor.

With ``on_logs`` (``pyworkflow dev --iam``), the process's output is also handed over, as Lambda
hands it to CloudWatch Logs: after each invocation, its lines between Lambda's ``START`` and
``END``/``REPORT`` lines, with the log stream of the process (one per sandbox, named as
Lambda names them); the output still reaches this process's stdout and stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

logger = logging.getLogger("pyworkflow.dev")

API_VERSION = "2018-06-01"
INIT_TIMEOUT = 10.0  # Lambda's limit on a function's init phase
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # a synchronous invocation's response limit
_NEXT = f"/{API_VERSION}/runtime/invocation/next"
_RESPONSE = f"/{API_VERSION}/runtime/invocation/{{id}}/response"
_ERROR = f"/{API_VERSION}/runtime/invocation/{{id}}/error"
_INIT_ERROR = f"/{API_VERSION}/runtime/init/error"
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"


class FunctionError(Exception):
    """An invocation failed; ``payload`` is Lambda's error document (``errorType``,
    ``errorMessage``, and from the runtime ``stackTrace`` and ``requestId``)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = dict(payload)
        super().__init__(f"{self.error_type}: {self.error_message}")

    @property
    def error_type(self) -> str:
        return str(self.payload.get("errorType", "Unknown"))

    @property
    def error_message(self) -> str:
        return str(self.payload.get("errorMessage", ""))


class FunctionInitError(FunctionError):
    """The function's process failed before taking an invocation (its module raised on import,
    the handler is missing, the process exited or its init phase timed out)."""


class FunctionTimeout(FunctionError):
    """The invocation ran past the function's timeout; its process was killed."""


@dataclass
class _Invocation:
    request_id: str
    body: bytes
    deadline_ms: int  # epoch milliseconds, as Lambda-Runtime-Deadline-Ms
    future: asyncio.Future[Any]


@dataclass
class _Sandbox:
    """One process and the Runtime API server it polls."""

    address: str = ""  # host:port
    runner: web.AppRunner | None = None
    queue: asyncio.Queue[_Invocation] = field(default_factory=asyncio.Queue)
    ready: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    invocations: dict[str, _Invocation] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0  # monotonic, at the process's start
    init_error: dict[str, Any] | None = None
    killed: bool = False
    watcher: asyncio.Future[None] | None = None
    polls: set[asyncio.Task[Any]] = field(default_factory=set)  # /next requests waiting
    log_stream: str = ""  # with on_logs: the process's CloudWatch Logs stream
    output: list[str] = field(default_factory=list)  # with on_logs: lines not yet handed over
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None and not self.killed


def lambda_environment(
    *,
    name: str,
    handler: str,
    api_address: str,
    memory_size: int,
    region: str,
    task_root: str,
    base: Mapping[str, str],
) -> dict[str, str]:
    """The process's environment: ``base`` (the function's), then what Lambda itself sets. The
    parent's ``sys.path`` goes on ``PYTHONPATH`` after the task root, so the child imports the
    handler and workflow modules from where this process does."""
    now = datetime.now(UTC)
    path = [task_root, *(p for p in sys.path if p and os.path.isdir(p))]
    env = dict(base)
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": api_address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{now:%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0"


def _document(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message}


@dataclass
class RicFunction:
    """One function under ``awslambdaric``. ``await start()`` boots its process (optional: the
    first ``invoke`` does it), ``await invoke(event)`` runs one invocation, ``await stop()``
    kills the process and closes the server. Use it on one event loop."""

    name: str
    handler: str  # "package.module.function"
    timeout: float = 3.0  # seconds, the function's Timeout
    memory_size: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    arn: str = ""
    region: str = "us-east-1"
    task_root: str = field(default_factory=os.getcwd)
    init_timeout: float = INIT_TIMEOUT
    host: str = "127.0.0.1"
    python: str = sys.executable
    # one readable line per cold start, timeout or unexpected exit
    on_event: Callable[[str], None] | None = None
    # (log stream, lines) after each invocation, as Lambda delivers them to CloudWatch Logs;
    # called in a worker thread, its failures are its own (logged, never the invocation's)
    on_logs: Callable[[str, list[str]], None] | None = None

    cold_starts: list[float] = field(default_factory=list, init=False)  # seconds each
    durations: list[float] = field(default_factory=list, init=False)  # seconds per invocation
    pids: list[int] = field(default_factory=list, init=False)  # every process started, in order
    _sandbox: _Sandbox | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        """The running process's id (None: no process, the next invocation cold-starts)."""
        sandbox = self._sandbox
        if sandbox is None or not sandbox.alive or sandbox.process is None:
            return None
        return sandbox.process.pid

    async def start(self) -> None:
        """Boot the process now and wait for its first ``/next`` (raises
        ``FunctionInitError`` as the first invocation would)."""
        async with self._guard():
            await self._ready_sandbox()

    async def invoke(self, event: Any, context: Any = None) -> Any:
        """Run one invocation (``context`` is ignored: the runtime builds the real one).
        Invocations queue: a sandbox runs one at a time."""
        async with self._guard():
            sandbox = await self._ready_sandbox()
            loop = asyncio.get_running_loop()
            request_id = str(uuid.uuid4())
            deadline = time.time() + self.timeout
            invocation = _Invocation(
                request_id=request_id,
                body=json.dumps(event).encode(),
                deadline_ms=int(deadline * 1000),
                future=loop.create_future(),
            )
            sandbox.invocations[request_id] = invocation
            started = time.monotonic()
            sandbox.queue.put_nowait(invocation)
            try:
                return await asyncio.wait_for(
                    asyncio.shield(invocation.future), max(0.0, deadline - time.time())
                )
            except TimeoutError:
                if invocation.future.done():  # answered at the last moment
                    return invocation.future.result()
                await self._kill(sandbox)
                self._event(f"timed out after {self.timeout:g} s: process killed")
                raise FunctionTimeout(
                    _document(
                        "Sandbox.Timedout",
                        f"RequestId: {request_id} Error: Task timed out after "
                        f"{self.timeout:.2f} seconds",
                    )
                ) from None
            finally:
                duration = time.monotonic() - started
                self.durations.append(duration)
                sandbox.invocations.pop(request_id, None)
                await self._hand_over_logs(sandbox, request_id, duration)

    async def stop(self) -> None:
        """Kill the process (an invocation in progress fails) and close its server."""
        if self._sandbox is not None:
            await self._kill(self._sandbox)
            self._sandbox = None

    # --- the process -----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _guard(self) -> Any:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            yield

    async def _ready_sandbox(self) -> _Sandbox:
        sandbox = self._sandbox
        if sandbox is None or not sandbox.alive:
            if sandbox is not None:
                await self._kill(sandbox)  # closes the dead one's server
            sandbox = self._sandbox = await self._boot()
        try:
            await asyncio.wait_for(asyncio.shield(sandbox.ready), self.init_timeout)
        except TimeoutError:
            await self._kill(sandbox)
            raise FunctionInitError(
                _document(
                    "Sandbox.Timedout",
                    f"Error: Init timed out after {self.init_timeout:.2f} seconds",
                )
            ) from None
        except FunctionInitError:
            await self._kill(sandbox)
            raise
        return sandbox

    async def _boot(self) -> _Sandbox:
        sandbox = _Sandbox()
        app = web.Application(client_max_size=MAX_RESPONSE_BYTES + 1024 * 1024)
        self._routes(app, sandbox)
        sandbox.runner = runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        sandbox.address = f"{self.host}:{runner.addresses[0][1]}"
        env = lambda_environment(
            name=self.name,
            handler=self.handler,
            api_address=sandbox.address,
            memory_size=self.memory_size,
            region=self.region,
            task_root=self.task_root,
            base=self.environment,
        )
        sandbox.started = time.monotonic()
        piped = None if self.on_logs is None else asyncio.subprocess.PIPE
        try:
            sandbox.process = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "awslambdaric",
                self.handler,
                env=env,
                cwd=self.task_root,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=piped,
                stderr=piped,
                start_new_session=True,  # Ctrl-C reaches pyworkflow dev, which stops it
            )
        except BaseException:
            await runner.cleanup()
            raise
        self.pids.append(sandbox.process.pid)
        if self.on_logs is not None:
            day = datetime.now(UTC).strftime("%Y/%m/%d")
            sandbox.log_stream = f"{day}/[$LATEST]{secrets.token_hex(16)}"
            for stream, out in (
                (sandbox.process.stdout, sys.stdout),
                (sandbox.process.stderr, sys.stderr),
            ):
                if stream is not None:
                    sandbox.readers.append(asyncio.ensure_future(_read(stream, out, sandbox)))
        sandbox.watcher = asyncio.ensure_future(self._watch(sandbox))
        return sandbox

    async def _watch(self, sandbox: _Sandbox) -> None:
        """The process exited: fail what waits on it, as Lambda reports a runtime's exit."""
        process = sandbox.process
        if process is None:
            return
        code = await process.wait()
        status = f"signal {-code}" if code < 0 else f"exit status {code}"
        if not sandbox.ready.done():
            document = sandbox.init_error or _document(
                "Runtime.ExitError", f"Error: Runtime exited with error: {status}"
            )
            sandbox.ready.set_exception(FunctionInitError(document))
            sandbox.ready.exception()  # retrieved: no "never retrieved" warning if unused
        for invocation in list(sandbox.invocations.values()):
            if not invocation.future.done():
                invocation.future.set_exception(
                    FunctionError(
                        _document(
                            "Runtime.ExitError",
                            f"RequestId: {invocation.request_id} Error: Runtime exited with "
                            f"error: {status}",
                        )
                    )
                )
                invocation.future.exception()  # retrieved: after a timeout nobody waits
        if not sandbox.killed and sandbox.ready.done() and sandbox.init_error is None:
            self._event(f"process {process.pid} exited ({status})")

    async def _kill(self, sandbox: _Sandbox) -> None:
        sandbox.killed = True
        process = sandbox.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        if sandbox.watcher is not None:
            await asyncio.gather(sandbox.watcher, return_exceptions=True)
        elif process is not None:
            await process.wait()
        if sandbox.readers:  # its output ends with it (a child holding the pipe: cut short)
            _, pending = await asyncio.wait(sandbox.readers, timeout=1.0)
            for reader in pending:
                reader.cancel()
        for poll in list(sandbox.polls):  # a dead process's /next: never answered
            poll.cancel()
        await asyncio.gather(*sandbox.polls, return_exceptions=True)
        if sandbox.runner is not None:
            await sandbox.runner.cleanup()
        if self._sandbox is sandbox:
            self._sandbox = None

    async def _hand_over_logs(self, sandbox: _Sandbox, request_id: str, duration: float) -> None:
        """Lambda's lines around the invocation's output, to ``on_logs``."""
        if self.on_logs is None:
            return
        await asyncio.sleep(0)  # the readers take what the process wrote before answering
        lines = [
            f"START RequestId: {request_id} Version: $LATEST",
            *sandbox.output,
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: {duration * 1000:.2f} ms\t"
            f"Memory Size: {self.memory_size} MB",
        ]
        sandbox.output.clear()
        try:
            await asyncio.to_thread(self.on_logs, sandbox.log_stream, lines)
        except Exception:  # noqa: BLE001 - the logs are lost, the invocation stands
            logger.exception("%s: its logs were not delivered", self.name)

    def _event(self, what: str) -> None:
        if self.on_event is not None:
            try:
                self.on_event(f"Lambda     {self.name} {what}")
            except Exception:  # noqa: BLE001 - a console hiccup must not fail an invocation
                logger.exception("on_event failed")

    # --- the Runtime API -------------------------------------------------------------------
    def _routes(self, app: web.Application, sandbox: _Sandbox) -> None:
        async def next_invocation(request: web.Request) -> web.StreamResponse:
            if not sandbox.ready.done():
                seconds = time.monotonic() - sandbox.started
                self.cold_starts.append(seconds)
                sandbox.ready.set_result(None)
                pid = sandbox.process.pid if sandbox.process else "?"
                self._event(f"cold start {seconds * 1000:.0f} ms (pid {pid})")
            task = asyncio.current_task()
            if task is not None:
                sandbox.polls.add(task)
            try:
                invocation = await sandbox.queue.get()
            finally:
                sandbox.polls.discard(task)  # type: ignore[arg-type]
            return web.Response(
                body=invocation.body,
                content_type="application/json",
                headers={
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": self.arn,
                    "Lambda-Runtime-Trace-Id": _trace_id(),
                },
            )

        def pending(request: web.Request) -> _Invocation | web.Response:
            invocation = sandbox.invocations.get(request.match_info["id"])
            if invocation is None or invocation.future.done():
                return web.json_response(
                    _document("InvalidRequestID", "Invalid request ID"), status=400
                )
            return invocation

        async def response(request: web.Request) -> web.StreamResponse:
            invocation = pending(request)
            if isinstance(invocation, web.Response):
                return invocation
            body = await request.read()
            if len(body) > MAX_RESPONSE_BYTES:
                invocation.future.set_exception(
                    FunctionError(
                        _document(
                            "Function.ResponseSizeTooLarge",
                            f"Response payload size ({len(body)} bytes) exceeded maximum "
                            f"allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                        )
                    )
                )
                return web.json_response(
                    _document("RequestEntityTooLarge", "response too large"), status=413
                )
            try:
                invocation.future.set_result(json.loads(body) if body else None)
            except ValueError:
                invocation.future.set_result(body.decode(errors="replace"))
            return web.json_response({"status": "OK"}, status=202)

        async def error(request: web.Request) -> web.StreamResponse:
            invocation = pending(request)
            if isinstance(invocation, web.Response):
                return invocation
            invocation.future.set_exception(FunctionError(await _error_document(request)))
            return web.json_response({"status": "OK"}, status=202)

        async def init_error(request: web.Request) -> web.StreamResponse:
            sandbox.init_error = await _error_document(request)
            if not sandbox.ready.done():
                sandbox.ready.set_exception(FunctionInitError(sandbox.init_error))
                sandbox.ready.exception()
            return web.json_response({"status": "OK"}, status=202)

        app.router.add_get(_NEXT, next_invocation)
        app.router.add_post(_RESPONSE, response)
        app.router.add_post(_ERROR, error)
        app.router.add_post(_INIT_ERROR, init_error)


async def _read(stream: asyncio.StreamReader, out: Any, sandbox: _Sandbox) -> None:
    """Forward the process's output to ``out`` line by line, keeping each line for its logs."""
    while line := await stream.readline():
        text = line.decode("utf-8", "replace")
        sandbox.output.append(text.rstrip("\n"))
        out.write(text)
        out.flush()


async def _error_document(request: web.Request) -> dict[str, Any]:
    """The runtime's error document; a body that is not one keeps the error type header."""
    raw = await request.read()
    error_type = request.headers.get(_ERROR_TYPE_HEADER, "Unknown")
    try:
        document = json.loads(raw) if raw else {}
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return _document(error_type, raw.decode(errors="replace"))
    document.setdefault("errorType", error_type)
    return document
