"""The whole AWS stack on one machine, built from ``template.yaml``: ``pyworkflow dev``.

``LocalStack`` starts DynamoDB Local and a moto server on loopback, creates the template's table,
queues, schedule groups (resolving its parameters, ``!Ref``, ``!GetAtt``, ``!Sub``...), sets the
functions' environment for the in-process handlers, and runs, on one background event loop: the HTTP
API (``pyworkflow.dev.http_api``) in front of the function that has HttpApi events, the SQS event
source of each function with an SQS event (``pyworkflow.dev.pumps.SqsEventSource``), and the
scheduler (``pyworkflow.dev.scheduler_pump``: Scheduler schedules, and the template's Schedule
events).

Each function module is one Lambda "container": its own single thread, so one invocation at a
time (its handler keeps one event loop, as in Lambda). All functions share this process's
environment, so it holds the union of their variables. With ``lambda_runtime=True`` each function
runs instead as Lambda runs it, in its own long-lived process under AWS's runtime interface
client, with its own environment (``pyworkflow.dev.runtime_api``).

    with LocalStack(port=0, module="myapp.workflows") as stack:
        print(stack.api_url)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from pyworkflow import config
from pyworkflow.dev import iam as iam_mode
from pyworkflow.dev import moto_server
from pyworkflow.dev.dynamodb_local import create_tables
from pyworkflow.dev.http_api import HttpApiServer, port_in_use
from pyworkflow.dev.pumps import FakeLambdaContext, SqsEventSource, delivery_reporter
from pyworkflow.dev.runtime_api import FunctionInitError, RicFunction
from pyworkflow.dev.scheduler_pump import RuleTimer, SchedulerPump
from pyworkflow.dev.template import (
    TEMPLATE_PATH,
    FunctionSpec,
    StackTemplate,
    load_template,
)

logger = logging.getLogger("pyworkflow.dev")

DEFAULT_PORT = 8787
DEFAULT_REGION = "us-east-1"
MODULE_PARAMETER = "WorkflowModule"
# Credentials and endpoints every AWS client in this process (handlers, CLI, SDK) picks up.
_LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}


class LocalStackError(RuntimeError):
    """The local stack could not start; the message says why."""


@dataclass
class Function:
    """A template function, bound to its imported handler and its container thread, or (in
    lambda_runtime mode) to its process under awslambdaric."""

    spec: FunctionSpec
    name: str
    arn: str
    module: ModuleType | None = None
    executor: ThreadPoolExecutor | None = None
    ric: RicFunction | None = None

    def context(self) -> FakeLambdaContext:
        deadline = time.monotonic() + self.spec.timeout
        return FakeLambdaContext(
            remaining=lambda: deadline - time.monotonic(),
            function_name=self.name,
            memory_limit_in_mb=self.spec.memory_size,
            aws_request_id=str(uuid.uuid4()),
            invoked_function_arn=self.arn,
            log_group_name=f"/aws/lambda/{self.name}",
        )

    def call(self, event: dict[str, Any], context: Any) -> Any:
        """The handler, looked up at each call (a test may patch the module)."""
        return getattr(self.module, self.spec.attribute)(event, context)

    async def invoke(self, event: dict[str, Any], context: Any = None) -> Any:
        if self.ric is not None:  # the runtime builds the real context from the deadline
            return await self.ric.invoke(event)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, self.call, event, context or self.context()
        )


@dataclass
class StackInfo:
    """What a user (or a test) points clients at."""

    api_url: str
    region: str
    dynamodb_endpoint: str
    moto_endpoint: str
    tables: dict[str, str]  # logical id -> table name
    queues: dict[str, str]  # logical id -> queue URL
    schedule_groups: dict[str, str]  # logical id -> group name
    outputs: dict[str, Any]
    environment: dict[str, str]  # what the functions see


@dataclass
class LocalStack:
    """Start with ``start()`` (or ``with``), stop with ``stop()``; ``run_forever()`` serves until
    Ctrl-C. ``dynamodb_endpoint`` reuses a running DynamoDB Local (tests) instead of starting
    one; ``env`` adds or overrides variables of the functions' environment."""

    template: Path | str = TEMPLATE_PATH
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # False lets tests go below the template's MinValue (a 2 s visibility timeout instead of
    # 60 s makes a redelivery test take seconds); the deployed stack always checks.
    check_parameter_ranges: bool = True
    module: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    stack_name: str = "pyworkflow-dev"
    region: str = DEFAULT_REGION
    dynamodb_endpoint: str | None = None
    # DynamoDB Local's data folder (kept across restarts); None: in memory, gone at stop()
    persist: Path | str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    tick_seconds: float = 0.5  # how often due schedules are looked for
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    on_progress: Callable[[str], None] = field(default=lambda message: None)
    on_request: Callable[[str, str, int, float], None] | None = None
    # one readable line per piece of machinery at work: an SQS delivery to a function (the
    # run, ok or failed, ms), a Scheduler schedule firing, the template's sweep
    on_event: Callable[[str], None] | None = None
    # each function in its own process under awslambdaric, as on Lambda (--lambda-runtime)
    lambda_runtime: bool = False
    # the template's roles enforced by moto's IAM, DynamoDB served by moto (--iam; implies
    # lambda_runtime: one environment, so one role's credentials, per function)
    iam: bool = False
    iam_binding: iam_mode.IamBinding | None = field(default=None, init=False)

    info: StackInfo | None = field(default=None, init=False)
    functions: dict[str, Function] = field(default_factory=dict, init=False)
    sources: list[SqsEventSource] = field(default_factory=list, init=False)
    scheduler_pump: SchedulerPump | None = field(default=None, init=False)
    _exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, init=False)
    _saved_env: dict[str, str | None] = field(default_factory=dict, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    _stop: asyncio.Event | None = field(default=None, init=False)
    _ready: threading.Event = field(default_factory=threading.Event, init=False)
    _failure: BaseException | None = field(default=None, init=False)
    _api: HttpApiServer | None = field(default=None, init=False)
    _function_env: dict[str, str] = field(default_factory=dict, init=False)
    _iam_log: Path = field(default=Path(), init=False)
    iam_decisions: list[dict[str, Any]] = field(default_factory=list, init=False)

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        if self.info is None:
            raise LocalStackError("the stack is not running")
        return self.info.api_url

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        busy = port_in_use(self.host, self.port)  # before Java and moto start, not mid-way
        if busy:
            raise LocalStackError(busy)
        parameters = dict(self.parameters)
        declared = load_template(self.template).get("Parameters") or {}
        if self.module and MODULE_PARAMETER in declared:
            parameters[MODULE_PARAMETER] = self.module
        tpl = StackTemplate.load(
            self.template,
            parameters=parameters,
            region=self.region,
            stack_name=self.stack_name,
            check_ranges=self.check_parameter_ranges,
        )
        self._set_env(
            {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region, **_LOCAL_AWS_ENV}
        )
        ddb_endpoint = self.dynamodb_endpoint
        if self.iam:  # DynamoDB Local checks no IAM: moto's DynamoDB, in the enforcing moto
            if ddb_endpoint is not None:
                raise LocalStackError("iam=True serves DynamoDB from moto: no dynamodb_endpoint")
            self.lambda_runtime = True
            moto, self._iam_log = self._exit.enter_context(iam_mode.start_server())
            ddb_endpoint = moto.endpoint_url
        elif ddb_endpoint is None:
            from pyworkflow.dev.dynamodb_local import DynamoDBLocalError
            from pyworkflow.dev.dynamodb_local import start as start_dynamodb

            self.on_progress("starting DynamoDB Local (Java)...")
            try:
                ddb = start_dynamodb(db_path=self.persist)
            except DynamoDBLocalError as exc:
                raise LocalStackError(str(exc)) from None
            self._exit.callback(ddb.stop)
            ddb_endpoint = ddb.endpoint_url
        if not self.iam:
            self.on_progress(f"DynamoDB Local at {ddb_endpoint}")
            moto = self._exit.enter_context(moto_server.start())
        self.on_progress(f"moto at {moto.endpoint_url}{' (IAM enforced)' if self.iam else ''}")
        tables = create_tables(tpl, ddb_endpoint, region=self.region, on_progress=self.on_progress)
        queues = moto_server.create_queues(tpl, moto.endpoint_url, region=self.region)
        groups = moto_server.create_schedule_groups(tpl, moto.endpoint_url, region=self.region)
        moto_server.create_buckets(tpl, moto.endpoint_url, region=self.region)
        moto_server.record_aws_only(tpl, self.region)
        if self.iam:
            self.iam_binding = iam_mode.bind(tpl, moto.endpoint_url, region=self.region)
            iam_mode.create_log_groups(tpl, moto.endpoint_url, region=self.region)
            self._set_env({**self.iam_binding.services.env(), "AWS_SESSION_TOKEN": None})
            iam_mode.forget_default_session()  # boto3.client() resolved "local" keys before
            self.iam_binding.enforce()
        specs = [tpl.function_spec(f) for f in tpl.function_ids()]
        environment = self._environment(specs, ddb_endpoint, moto.endpoint_url)
        self._set_env(environment)
        self._import_workflows(environment.get(config.ENV_MODULE))
        self._bind_functions(tpl, specs)
        self.info = StackInfo(
            api_url="",
            region=self.region,
            dynamodb_endpoint=ddb_endpoint,
            moto_endpoint=moto.endpoint_url,
            tables=tables,
            queues=queues,
            schedule_groups=groups,
            outputs={},
            environment=environment,
        )
        self._thread = threading.Thread(
            target=self._serve_thread,
            args=(tpl, moto.endpoint_url),
            name="pyworkflow-dev",
            daemon=True,
        )
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise LocalStackError(
                f"the local stack failed to start: {self._failure}"
            ) from self._failure
        api_url = self._api.url if self._api is not None else ""
        for logical_id in tpl.resources("AWS::Serverless::HttpApi"):
            tpl.set_physical(logical_id, ApiEndpoint=api_url)
        outputs = tpl.outputs()
        for name in list(outputs):
            if name.lower() in ("apiurl", "apiendpoint"):
                outputs[name] = api_url  # the deployed API's URL is meaningless here
        self.info.api_url = api_url
        self.info.outputs = outputs

    def stop(self) -> None:
        """Stop serving (an invocation in progress finishes), drop the handlers' runtimes,
        stop moto and DynamoDB Local, restore the environment. Idempotent, and whatever fails
        on the way, moto and DynamoDB Local are stopped (no orphaned JVM)."""
        try:
            self._stop_serving()
        finally:
            if self.iam_binding is not None:
                self.iam_decisions = iam_mode.decisions(self._iam_log)
            self._exit.close()
            self._restore_env()
            if self.iam_binding is not None:
                iam_mode.forget_default_session()

    def _stop_serving(self) -> None:
        if self._thread is not None:
            loop, stop = self._loop, self._stop
            # After a start-up failure the serving thread has already closed its loop:
            # call_soon_threadsafe would raise, and stop() would never reach the JVM.
            if loop is not None and stop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed in between
                    loop.call_soon_threadsafe(stop.set)
            self._thread.join(timeout=60)
            self._thread = None
        # (each awslambdaric process was stopped with the serving loop)
        imported = [f for f in self.functions.values() if f.module and f.executor]
        for function in {f.module.__name__: f for f in imported if f.module}.values():
            reset = getattr(function.module, "reset", None)
            if callable(reset) and function.executor is not None:
                try:
                    function.executor.submit(reset).result(timeout=30)
                except Exception as exc:  # noqa: BLE001 - stopping must go on
                    logger.warning("reset of %s failed: %s", function.spec.module, exc)
        for executor in {id(f.executor): f.executor for f in imported if f.executor}.values():
            executor.shutdown(wait=True)
        self.functions = {}

    def _import_workflows(self, modules: str | None) -> None:
        """Import the workflow module(s) now, as the functions will: an error fails start-up
        with its message and place, instead of a ready banner and a failed first request."""
        if not modules:
            return
        import traceback

        try:
            config.import_modules(modules)
        except Exception as exc:  # noqa: BLE001 - any import-time error is the user's to see
            frames = traceback.extract_tb(exc.__traceback__)
            package = str(Path(config.__file__).resolve().parent)
            user = [
                f
                for f in frames
                if "importlib" not in f.filename and not f.filename.startswith(package)
            ]
            where = f" ({user[-1].filename}:{user[-1].lineno})" if user else ""
            raise LocalStackError(
                f"the workflow module(s) {modules!r} failed to import: "
                f"{type(exc).__name__}: {exc}{where}"
            ) from exc

    def run_forever(self) -> None:
        """Serve until Ctrl-C (or SIGTERM), then stop cleanly."""
        import signal

        stopped = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        try:
            while not stopped.is_set():
                if self._thread is None or not self._thread.is_alive():
                    raise LocalStackError("the local stack stopped unexpectedly")
                stopped.wait(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    # --- environment -----------------------------------------------------------------------
    def _set_env(self, values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            if name not in self._saved_env:
                self._saved_env[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def _overrides(self, ddb: str, moto: str) -> dict[str, str]:
        """What every function's environment gets on top of its template variables."""
        overrides = {
            config.ENV_DYNAMODB_ENDPOINT: ddb,
            "AWS_ENDPOINT_URL_DYNAMODB": ddb,
            "AWS_ENDPOINT_URL_SQS": moto,
            "AWS_ENDPOINT_URL_SCHEDULER": moto,
            "AWS_ENDPOINT_URL_S3": moto,
        }
        if self.module:
            overrides[config.ENV_MODULE] = self.module  # also when the template has no parameter
        return {**overrides, **self.env}

    def _environment(self, specs: list[FunctionSpec], ddb: str, moto: str) -> dict[str, str]:
        merged: dict[str, str] = {}
        for spec in specs:
            for name, value in spec.environment.items():
                if name in merged and merged[name] != value:
                    # One process holds one environment. Only pyworkflow's own variables
                    # matter for behaviour (POWERTOOLS_SERVICE_NAME only names log lines).
                    log = logger.warning if name.startswith("PYWORKFLOW_") else logger.debug
                    log(
                        "%s differs between functions (%r, %r): one process holds one "
                        "value; using %r",
                        name,
                        merged[name],
                        value,
                        value,
                    )
                merged[name] = value
        self._function_env = self._overrides(ddb, moto)
        return {**merged, **self._function_env}

    # --- resources -------------------------------------------------------------------------
    def _role_env(self, function: str) -> dict[str, str]:
        """With iam: the credentials of the function's role (Lambda's AWS_* variables)."""
        return {} if self.iam_binding is None else self.iam_binding.function_env(function)

    def _log_delivery(
        self, tpl: StackTemplate, function: str, name: str
    ) -> iam_mode.LogDelivery | None:
        """With iam: the function's output to CloudWatch Logs, signed as its role."""
        binding = self.iam_binding
        if binding is None:
            return None
        return iam_mode.LogDelivery(
            function=function,
            group=iam_mode.function_log_group(tpl, function, name),
            credentials=binding.roles[binding.function_roles[function]],
            endpoint=binding.endpoint,
            region=self.region,
            warn=self._warn,
        )

    def _warn(self, line: str) -> None:
        logger.warning("%s", line)
        self._event(f"WARNING    {line}")

    def iam_report(self) -> str:
        """With iam: per role, the granted actions used, denied and never used."""
        if self.iam_binding is None:
            return ""
        seen = self.iam_decisions or iam_mode.decisions(self._iam_log)
        return iam_mode.report(self.iam_binding, seen)

    def _bind_functions(self, tpl: StackTemplate, specs: list[FunctionSpec]) -> None:
        executors: dict[str, ThreadPoolExecutor] = {}
        for spec in specs:
            physical = tpl.resolver.physical[spec.logical_id]
            if self.lambda_runtime:  # its own environment: this process's, then its own
                self.functions[spec.logical_id] = Function(
                    spec=spec,
                    name=physical["Ref"],
                    arn=physical["Arn"],
                    ric=RicFunction(
                        name=physical["Ref"],
                        handler=spec.handler,
                        timeout=spec.timeout,
                        memory_size=spec.memory_size,
                        environment={
                            **os.environ,
                            **spec.environment,
                            **self._function_env,
                            **self._role_env(spec.logical_id),
                        },
                        arn=physical["Arn"],
                        region=self.region,
                        on_event=self._event,
                        on_logs=self._log_delivery(tpl, spec.logical_id, physical["Ref"]),
                    ),
                )
                continue
            try:
                module = importlib.import_module(spec.module)
            except ImportError as exc:
                raise LocalStackError(
                    f"{spec.logical_id}: cannot import its handler module {spec.module}: {exc}"
                ) from exc
            if not callable(getattr(module, spec.attribute, None)):
                raise LocalStackError(f"{spec.logical_id}: {spec.handler} is not a function")
            if spec.module not in executors:
                executors[spec.module] = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"lambda-{spec.logical_id}"
                )
                reset = getattr(module, "reset", None)
                if callable(reset):
                    # A fresh container: its runtime is rebuilt from this stack's environment.
                    executors[spec.module].submit(reset).result()
            self.functions[spec.logical_id] = Function(
                spec=spec,
                name=physical["Ref"],
                arn=physical["Arn"],
                module=module,
                executor=executors[spec.module],
            )

    # --- the background loop ---------------------------------------------------------------
    def _serve_thread(self, tpl: StackTemplate, moto_endpoint: str) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(tpl, moto_endpoint))
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged
            if not self._ready.is_set():
                self._failure = exc
            else:
                logger.exception("the local stack's event loop failed")
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, tpl: StackTemplate, moto_endpoint: str) -> None:
        import aioboto3

        self._stop = stop = asyncio.Event()
        session = aioboto3.Session()
        async with contextlib.AsyncExitStack() as stack:
            sqs = await stack.enter_async_context(
                session.client("sqs", endpoint_url=moto_endpoint, region_name=self.region)
            )
            scheduler = await stack.enter_async_context(
                session.client("scheduler", endpoint_url=moto_endpoint, region_name=self.region)
            )
            roles = await iam_mode.role_clients(stack, session, self.iam_binding, self.region)
            rics = [f.ric for f in self.functions.values() if f.ric is not None]
            for ric in rics:
                stack.push_async_callback(ric.stop)
            try:  # their cold starts now: a handler that cannot load fails start-up
                await asyncio.gather(*(ric.start() for ric in rics))
            except FunctionInitError as exc:
                raise LocalStackError(f"a function failed to initialise: {exc}") from exc
            api_functions = [f for f in self.functions.values() if f.spec.http_routes]
            if len(api_functions) > 1:
                raise LocalStackError(
                    "more than one function has HttpApi events: "
                    + ", ".join(f.spec.logical_id for f in api_functions)
                )
            if api_functions:
                function = api_functions[0]
                self._api = HttpApiServer(
                    handler=function.call,
                    invoke=function.invoke,
                    routes=function.spec.http_routes,
                    host=self.host,
                    port=self.port,
                    context_factory=function.context,
                    on_request=self.on_request,
                )
                try:
                    await self._api.start()
                except OSError as exc:
                    raise LocalStackError(
                        f"cannot listen on {self.host}:{self.port}: {exc}"
                        " (--port 0 picks a free port)"
                    ) from None
                stack.push_async_callback(self._api.stop)
            tasks = []
            for function in self.functions.values():
                for event in function.spec.sqs_events:
                    if not event.enabled:
                        continue
                    url = tpl.resolver.physical[event.queue]["Ref"]
                    source = SqsEventSource(
                        invoke=function.invoke,
                        # Lambda polls with the function's role
                        sqs=roles.functions.get(function.spec.logical_id, sqs),
                        queue_url=url,
                        queue_arn=tpl.resolver.physical[event.queue]["Arn"],
                        region=self.region,
                        batch_size=event.batch_size,
                        batching_window=event.batching_window_seconds,
                        report_batch_item_failures=event.report_batch_item_failures,
                        context_factory=function.context,
                        on_delivery=None
                        if self.on_event is None
                        else delivery_reporter(function.spec.logical_id, self._event),
                    )
                    self.sources.append(source)
                    tasks.append(asyncio.ensure_future(source.run(stop)))
            # The template's groups and "default" only: moto's state is per process, so other
            # stacks' schedules (tests) are visible from here too.
            groups = [*tpl.schedule_groups().values(), "default"]
            self.scheduler_pump = SchedulerPump(
                scheduler=scheduler,
                sqs=sqs,
                groups=groups,
                invoke_lambda=self._invoke_arn,
                senders=roles.senders,
            )
            tasks.append(asyncio.ensure_future(self._timers(stop)))
            self._ready.set()
            try:
                await stop.wait()
            finally:
                stop.set()
                results = await asyncio.gather(*tasks, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException) and not isinstance(
                        result, asyncio.CancelledError
                    ):
                        logger.error("a local stack task failed: %r", result)

    async def _invoke_arn(self, arn: str, event: Any) -> Any:
        for function in self.functions.values():
            if function.arn == arn or arn.startswith(function.arn + ":"):
                return await function.invoke(event)
        logger.warning("no local function has the ARN %s", arn)
        return None

    async def _timers(self, stop: asyncio.Event) -> None:
        """Fire Scheduler schedules and the template's Schedule events, every tick."""
        if self.scheduler_pump is None:
            raise LocalStackError("the scheduler pump is started before its timers")
        started = self.clock()
        rules = [
            RuleTimer(function=logical_id, event=event, started=started)
            for logical_id, function in self.functions.items()
            for event in function.spec.schedule_events
        ]
        running: set[asyncio.Future[None]] = set()
        while not stop.is_set():
            now = self.clock()
            try:
                for fired in await self.scheduler_pump.tick(now):
                    logger.info("schedule %s/%s fired", fired.group, fired.name)
                    self._event(f"Scheduler  {fired.group}/{fired.name} fired → {fired.target}")
                for rule in rules:
                    if rule.take(now):
                        self._event(f"Schedule   {rule.event.name} → {rule.function}")
                        running.add(asyncio.ensure_future(self._invoke_rule(rule)))
            except Exception:  # noqa: BLE001 - keep ticking; moto may be restarting
                logger.exception("scheduler tick failed")
            running = {task for task in running if not task.done()}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_seconds)
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def _event(self, line: str) -> None:
        if self.on_event is not None:
            try:
                self.on_event(line)
            except Exception:  # noqa: BLE001 - a console hiccup must not stop the stack
                logger.exception("on_event failed")

    async def _invoke_rule(self, rule: RuleTimer) -> None:
        """An EventBridge rule invokes asynchronously: a failure is logged, nothing retried
        (the next occurrence comes soon enough for the sweep)."""
        try:
            await self.functions[rule.function].invoke(
                rule.event.input if rule.event.input is not None else {}
            )
        except Exception:  # noqa: BLE001 - an asynchronous invoke's error only gets logged
            logger.exception("%s: scheduled invoke %s failed", rule.function, rule.event.name)

    # --- conveniences ----------------------------------------------------------------------
    def describe(self) -> Iterator[tuple[str, str]]:
        """(label, value) lines for humans: the URLs and names to point clients at."""
        if self.info is None:
            return
        info = self.info
        if info.api_url:
            yield "API", info.api_url
        yield "DynamoDB", info.dynamodb_endpoint
        for logical_id, name in info.tables.items():
            yield f"  {logical_id}", name
        yield "moto (SQS, Scheduler)", info.moto_endpoint
        for logical_id, url in info.queues.items():
            yield f"  {logical_id}", url
        for logical_id, name in info.schedule_groups.items():
            yield f"  {logical_id}", name
