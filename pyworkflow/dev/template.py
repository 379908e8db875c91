"""Read ``template.yaml`` and describe the resources a local stack needs, so the local stack is
built from the template itself and never from a second hand-written list.

Three layers:

1. ``load_template`` parses YAML with CloudFormation's short tags (``!Ref``, ``!GetAtt``,
   ``!Sub``, ``!If``...), which become their long ``{"Fn::...": ...}`` forms.
2. ``Resolver`` evaluates intrinsic functions against parameter values, conditions, pseudo
   parameters and the *physical* values of the resources created so far (a queue's URL and
   ARN, a table's name...). A reference to something it cannot know raises
   ``UnresolvedError`` naming it, instead of passing a dict where a string belongs.
3. ``StackTemplate`` gives typed descriptions: ``table_args``, ``queue_specs``,
   ``function_specs`` (handler, environment, SQS / Schedule / HttpApi events), ``http_api``.

Only what a local stack can reproduce is described: IAM policies, alarms, KMS keys and
point-in-time recovery have no local counterpart and are left out.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

# pyworkflow's own stack, shipped as package data (pyworkflow/scaffold/template.yaml; in a
# checkout, a link to the repository's template.yaml), so an installed package finds it too.
TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "scaffold" / "template.yaml"
ACCOUNT_ID = "123456789012"  # moto's default account

# Short tag -> long form. ``!GetAtt A.B`` is the one whose scalar form needs splitting.
_INTRINSICS = (
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Cidr",
    "Length",
    "ToJsonString",
)


class CfnLoader(yaml.SafeLoader):
    """A safe loader that understands CloudFormation's short-form intrinsic tags."""


def _construct(tag: str) -> Any:
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


for _tag in _INTRINSICS:
    CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data, intrinsic functions in their long form."""
    with open(path, encoding="utf-8") as handle:
        # what yaml.load does, spelt out with the safe loader itself: no yaml.load call
        # anywhere in the package to audit (tests/security checks there is none)
        loader = CfnLoader(handle)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return data


class TemplateError(ValueError):
    """The template does not describe what the local stack needs."""


class UnresolvedError(TemplateError):
    """An intrinsic function refers to something this resolver has no value for."""


class _NoValue:
    """``AWS::NoValue``: the property it stands in is dropped."""


NO_VALUE = _NoValue()
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    """Evaluates intrinsic functions. ``physical[logical_id]`` holds a created resource's
    ``Ref`` value under ``"Ref"`` and its attributes under their names (``"Arn"``...)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        *,
        region: str,
        stack_name: str,
        physical: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.template = template
        self.parameters = dict(parameters)
        self.physical: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (physical or {}).items()}
        self.pseudo: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/"
                f"{stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
            "AWS::NotificationARNs": [],
        }

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name!r}")
        return bool(self.resolve(conditions[name]))

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical and "Ref" in self.physical[name]:
            return self.physical[name]["Ref"]
        raise UnresolvedError(f"!Ref {name}: no local value (not a parameter, or not created)")

    def get_att(self, name: str, attribute: str) -> Any:
        try:
            return self.physical[name][attribute]
        except KeyError:
            raise UnresolvedError(f"!GetAtt {name}.{attribute}: no local value") from None

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated; ``AWS::NoValue`` entries dropped."""
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        out = {}
        for key, item in value.items():
            resolved = self.resolve(item)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def _function(self, name: str, arg: Any) -> Any:  # noqa: C901 - one branch per function
        if name == "GetAtt":
            logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(logical, self.resolve(attribute))
        if name == "Sub":
            return self._sub(arg)
        if name == "If":
            cond, then, other = arg
            return self.resolve(then if self.condition(cond) else other)
        if name == "Equals":
            left, right = (self.resolve(v) for v in arg)
            return str(left) == str(right)
        if name == "Not":
            return not self.resolve(arg[0])
        if name == "And":
            return all(self.resolve(v) for v in arg)
        if name == "Or":
            return any(self.resolve(v) for v in arg)
        if name == "Join":
            sep, items = arg
            return str(sep).join(str(v) for v in self.resolve(items))
        if name == "Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Split":
            sep, text = arg
            return str(self.resolve(text)).split(sep)
        if name == "FindInMap":
            table, key, attr = (self.resolve(v) for v in arg)
            return self.template["Mappings"][table][key][attr]
        if name == "Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if name == "Length":
            return len(self.resolve(arg))
        if name == "ToJsonString":
            return json.dumps(self.resolve(arg))
        raise UnresolvedError(f"Fn::{name} is not supported by the local stack")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {k: self.resolve(v) for k, v in variables.items()}

        def value(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] not in self.parameters:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return _SUB_VAR.sub(value, text).replace("${!", "${")


def references(value: Any) -> set[str]:
    """Logical ids (and parameter names) that ``value`` refers to, to order creation."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item.split(".", 1)[0] if isinstance(item, str) else item[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found |= {v.split(".", 1)[0].strip() for v in _SUB_VAR.findall(text)}
                if not isinstance(item, str):
                    found |= references(item[1])
            else:
                found |= references(item)
    return found


# --- typed descriptions -----------------------------------------------------------------------
class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QueueSpec(_Spec):
    """An ``AWS::SQS::Queue``: its name and the attributes CreateQueue takes."""

    logical_id: str
    name: str
    attributes: dict[str, str]
    dead_letter_target: str | None = None  # logical id of the redrive target
    max_receive_count: int | None = None

    @property
    def visibility_timeout(self) -> int:
        return int(self.attributes.get("VisibilityTimeout", "30"))


class SqsEventSpec(_Spec):
    """A function's SQS event source mapping."""

    name: str
    queue: str  # logical id
    batch_size: int = 10
    batching_window_seconds: int = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None
    enabled: bool = True


class ScheduleEventSpec(_Spec):
    """A function's ``Schedule`` (EventBridge rule) or ``ScheduleV2`` (Scheduler) event: the
    function is invoked directly with ``input`` as its event."""

    name: str
    expression: str
    input: Any = None
    timezone: str = "UTC"
    enabled: bool = True


class HttpRouteSpec(_Spec):
    """One HttpApi route and the authorizer API Gateway would apply to it."""

    name: str
    method: str  # upper case; "ANY" matches every method
    path: str  # "/runs/{run_id}", "/{proxy+}", "$default"
    api: str | None  # logical id of the AWS::Serverless::HttpApi
    authorizer: str  # "NONE", "AWS_IAM" or a JWT authorizer's name


class FunctionSpec(_Spec):
    logical_id: str
    handler: str  # "pyworkflow.handlers.worker.handler"
    timeout: int = 3
    memory_size: int = 128
    environment: dict[str, str] = Field(default_factory=dict)
    sqs_events: list[SqsEventSpec] = Field(default_factory=list)
    schedule_events: list[ScheduleEventSpec] = Field(default_factory=list)
    http_routes: list[HttpRouteSpec] = Field(default_factory=list)

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


def _flatten_env(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in values.items()}


class StackTemplate:
    """A template with its parameter values: what to create locally, in typed form."""

    def __init__(
        self,
        data: dict[str, Any],
        *,
        parameters: Mapping[str, Any] | None = None,
        region: str = "us-east-1",
        stack_name: str = "pyworkflow-dev",
        check_ranges: bool = True,
    ) -> None:
        self.data = data
        self.stack_name = stack_name
        self.region = region
        self.check_ranges = check_ranges
        self.parameters = self._parameter_values(parameters or {})
        self.resolver = Resolver(data, self.parameters, region=region, stack_name=stack_name)

    @classmethod
    def load(cls, path: Path | str = TEMPLATE_PATH, **kwargs: Any) -> StackTemplate:
        return cls(load_template(path), **kwargs)

    # --- parameters and resources ----------------------------------------------------------
    def _parameter_values(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        declared: dict[str, Any] = self.data.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(
                f"unknown parameter(s) {', '.join(unknown)}; the template "
                f"declares {', '.join(sorted(declared)) or 'none'}"
            )
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            raw = overrides.get(name, spec.get("Default"))
            if raw is None:
                raise TemplateError(f"parameter {name} has no default: pass a value for it")
            kind = spec.get("Type", "String")
            if kind == "Number":
                number = float(raw)
                low, high = spec.get("MinValue"), spec.get("MaxValue")
                too_low = low is not None and number < float(low)
                too_high = high is not None and number > float(high)
                if self.check_ranges and (too_low or too_high):
                    raise TemplateError(f"parameter {name}={raw} outside [{low}, {high}]")
                values[name] = int(number) if number.is_integer() else number
            elif kind.startswith("List<") or kind == "CommaDelimitedList":
                values[name] = raw if isinstance(raw, list) else str(raw).split(",")
            else:
                allowed = spec.get("AllowedValues")
                if allowed and str(raw) not in [str(a) for a in allowed]:
                    raise TemplateError(f"parameter {name}={raw!r} not in {allowed}")
                values[name] = str(raw)
        return values

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        """The resources of a type whose Condition (if any) holds, by logical id."""
        found = {}
        for logical_id, resource in self.data["Resources"].items():
            if resource.get("Type") != kind:
                continue
            condition = resource.get("Condition")
            if condition and not self.resolver.condition(condition):
                continue
            found[logical_id] = resource
        return found

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.data["Resources"][logical_id].get("Properties") or {})

    def set_physical(self, logical_id: str, **values: Any) -> None:
        """Record what a created resource's ``Ref`` and attributes resolve to."""
        self.resolver.physical.setdefault(logical_id, {}).update(values)

    def physical_name(self, logical_id: str, given: Any = None) -> str:
        """The name CloudFormation would generate when the template names none: the stack
        name and the logical id (CloudFormation adds a random suffix; locally stable is
        better, since nothing else shares the emulators)."""
        return str(given) if given else f"{self.stack_name}-{logical_id}"

    # --- the table -------------------------------------------------------------------------
    def table_ids(self) -> list[str]:
        return list(self.resources("AWS::DynamoDB::Table"))

    def table_args(self, logical_id: str) -> dict[str, Any]:
        """CreateTable arguments (TTL is a separate call: see ``table_ttl``)."""
        props = self.resolver.resolve(self.properties(logical_id))
        args: dict[str, Any] = {
            "TableName": self.physical_name(logical_id, props.get("TableName")),
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in (
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "StreamSpecification",
            "ProvisionedThroughput",
        ):
            if key in props:
                args[key] = props[key]
        if args["BillingMode"] == "PROVISIONED" and "ProvisionedThroughput" not in args:
            args["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        return args

    def table_ttl(self, logical_id: str) -> dict[str, Any] | None:
        spec = self.resolver.resolve(self.properties(logical_id)).get("TimeToLiveSpecification")
        if not spec or not _bool(spec.get("Enabled", False)):
            return None
        return {"Enabled": True, "AttributeName": spec["AttributeName"]}

    # --- queues ----------------------------------------------------------------------------
    def queue_ids(self) -> list[str]:
        """Queue logical ids, redrive targets first (a queue's RedrivePolicy needs its DLQ's
        ARN)."""
        queues = self.resources("AWS::SQS::Queue")
        ordered: list[str] = []

        def visit(logical_id: str, path: tuple[str, ...]) -> None:
            if logical_id in ordered:
                return
            if logical_id in path:
                raise TemplateError(f"queues refer to each other: {' -> '.join(path)}")
            for dep in sorted(references(queues[logical_id].get("Properties") or {})):
                if dep in queues:
                    visit(dep, (*path, logical_id))
            ordered.append(logical_id)

        for logical_id in queues:
            visit(logical_id, ())
        return ordered

    def queue_spec(self, logical_id: str) -> QueueSpec:
        """Resolve a queue's properties; its redrive target must have been created (its ARN
        recorded with ``set_physical``) first."""
        raw = self.properties(logical_id)
        props = self.resolver.resolve(raw)
        attributes: dict[str, str] = {}
        for key in (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
            "SqsManagedSseEnabled",
            "FifoQueue",
            "ContentBasedDeduplication",
        ):
            if key in props:
                value = props[key]
                attributes[key] = str(value).lower() if isinstance(value, bool) else str(value)
        target, max_receives = None, None
        redrive = props.get("RedrivePolicy")
        if redrive:
            if isinstance(redrive, str):
                redrive = json.loads(redrive)
            target_refs = references((raw.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
            target = next(iter(target_refs), None) if target_refs else None
            max_receives = int(redrive["maxReceiveCount"])
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                    "maxReceiveCount": max_receives,
                }
            )
        return QueueSpec(
            logical_id=logical_id,
            name=self.physical_name(logical_id, props.get("QueueName")),
            attributes=attributes,
            dead_letter_target=target,
            max_receive_count=max_receives,
        )

    # --- schedule groups -------------------------------------------------------------------
    def schedule_groups(self) -> dict[str, str]:
        """Logical id -> group name."""
        return {
            logical_id: self.physical_name(
                logical_id, self.resolver.resolve(self.properties(logical_id)).get("Name")
            )
            for logical_id in self.resources("AWS::Scheduler::ScheduleGroup")
        }

    # --- buckets ---------------------------------------------------------------------------
    def buckets(self) -> dict[str, str]:
        """Logical id -> bucket name (S3 wants 3-63 characters of ``[a-z0-9.-]``)."""
        found = {}
        for logical_id in self.resources("AWS::S3::Bucket"):
            given = self.resolver.resolve(self.properties(logical_id)).get("BucketName")
            name = re.sub(r"[^a-z0-9.-]", "-", self.physical_name(logical_id, given).lower())
            found[logical_id] = name.strip(".-")[:63]
        return found

    def role_ids(self) -> list[str]:
        return list(self.resources("AWS::IAM::Role"))

    # --- functions -------------------------------------------------------------------------
    def function_ids(self) -> list[str]:
        return list(self.resources("AWS::Serverless::Function"))

    def function_spec(self, logical_id: str) -> FunctionSpec:
        """A function with Globals merged in and its environment resolved (every resource it
        refers to must have been recorded with ``set_physical``)."""
        globals_ = dict((self.data.get("Globals") or {}).get("Function") or {})
        props = self.properties(logical_id)
        env = dict(((globals_.get("Environment") or {}).get("Variables")) or {})
        env.update(((props.get("Environment") or {}).get("Variables")) or {})
        merged = {**globals_, **props}
        handler = self.resolver.resolve(merged.get("Handler"))
        if not handler or "." not in str(handler):
            raise TemplateError(f"{logical_id}: Handler must be 'module.function'")
        sqs, schedules, routes = [], [], []
        for name, event in (props.get("Events") or {}).items():
            kind, eprops = event.get("Type"), event.get("Properties") or {}
            if kind == "SQS":
                sqs.append(self._sqs_event(name, eprops))
            elif kind in ("Schedule", "ScheduleV2"):
                schedules.append(self._schedule_event(name, kind, eprops))
            elif kind == "HttpApi":
                routes.append(self._http_route(name, eprops))
        return FunctionSpec(
            logical_id=logical_id,
            handler=str(handler),
            timeout=int(self.resolver.resolve(merged.get("Timeout", 3))),
            memory_size=int(self.resolver.resolve(merged.get("MemorySize", 128))),
            environment=_flatten_env(self.resolver.resolve(env)),
            sqs_events=sqs,
            schedule_events=schedules,
            http_routes=routes,
        )

    def _sqs_event(self, name: str, raw: dict[str, Any]) -> SqsEventSpec:
        queue_refs = references(raw.get("Queue"))
        if len(queue_refs) != 1:
            raise TemplateError(f"SQS event {name}: Queue must be !GetAtt <Queue>.Arn")
        props = self.resolver.resolve({k: v for k, v in raw.items() if k != "Queue"})
        scaling = props.get("ScalingConfig") or {}
        return SqsEventSpec(
            name=name,
            queue=next(iter(queue_refs)),
            batch_size=int(props.get("BatchSize", 10)),
            batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures"
            in (props.get("FunctionResponseTypes") or []),
            maximum_concurrency=(
                int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None
            ),
            enabled=_bool(props.get("Enabled", True)),
        )

    def _schedule_event(self, name: str, kind: str, raw: dict[str, Any]) -> ScheduleEventSpec:
        props = self.resolver.resolve(raw)
        expression = props.get("Schedule" if kind == "Schedule" else "ScheduleExpression")
        if not expression:
            raise TemplateError(f"{kind} event {name} has no schedule expression")
        payload = props.get("Input")
        if isinstance(payload, str):
            payload = json.loads(payload)
        state = props.get("State")
        enabled = _bool(props.get("Enabled", True)) if state is None else state == "ENABLED"
        return ScheduleEventSpec(
            name=name,
            expression=str(expression),
            input=payload,
            timezone=str(props.get("ScheduleExpressionTimezone") or "UTC"),
            enabled=enabled,
        )

    def _http_route(self, name: str, raw: dict[str, Any]) -> HttpRouteSpec:
        api_refs = references(raw.get("ApiId")) if "ApiId" in raw else set()
        api = next(iter(api_refs), None)
        props = self.resolver.resolve({k: v for k, v in raw.items() if k != "ApiId"})
        path = str(props.get("Path", "$default"))
        method = str(props.get("Method", "ANY")).upper()
        authorizer = (props.get("Auth") or {}).get("Authorizer")
        if authorizer is None:
            authorizer = self._definition_security(api, path, method)
        if authorizer is None:
            authorizer = self.default_authorizer(api)
        return HttpRouteSpec(
            name=name, method=method, path=path, api=api, authorizer=str(authorizer)
        )

    def _definition_security(self, api: str | None, path: str, method: str) -> str | None:
        """The authorizer an OpenAPI ``DefinitionBody`` sets on this route (``security``),
        which SAM lets override the DefaultAuthorizer."""
        apis = self.resources("AWS::Serverless::HttpApi")
        if api is None or api not in apis:
            return None
        body = (apis[api].get("Properties") or {}).get("DefinitionBody")
        if not isinstance(body, dict):
            return None
        operations = ((body.get("paths") or {}).get(path)) or {}
        operation = operations.get(method.lower()) or operations.get(
            "x-amazon-apigateway-any-method"
        )
        if not isinstance(operation, dict) or "security" not in operation:
            return None
        security = self.resolver.resolve(operation["security"])
        if not security:
            return "NONE"
        return str(next(iter(security[0])))

    def default_authorizer(self, api: str | None) -> str:
        """The HttpApi's DefaultAuthorizer ("NONE" when it sets none)."""
        apis = self.resources("AWS::Serverless::HttpApi")
        if api is None:
            return "NONE"  # SAM's implicit API: no authorizer unless the route names one
        if api not in apis:
            raise TemplateError(f"HttpApi event refers to {api}, not an AWS::Serverless::HttpApi")
        auth = self.resolver.resolve(apis[api].get("Properties") or {}).get("Auth") or {}
        return str(auth.get("DefaultAuthorizer") or "NONE")

    # --- outputs ---------------------------------------------------------------------------
    def outputs(self) -> dict[str, Any]:
        """The outputs that resolve locally (the others are left out)."""
        found = {}
        for name, output in (self.data.get("Outputs") or {}).items():
            condition = output.get("Condition")
            if condition and not self.resolver.condition(condition):
                continue
            try:
                found[name] = self.resolver.resolve(output.get("Value"))
            except UnresolvedError:
                continue
        return found
