"""Random workflow *programs*: plain JSON data drawn from one ``random.Random``.

A program is the argument of the one interpreter workflow (``interpreter.sim_program``), so it
is recorded in ``workflow.started`` and replayed exactly. Every instruction has an ``id`` that
is unique in the seed ("p0.3", "p0.5.1.0" for an op inside a fan-out branch); step calls use it
as their key, so the world can count executions per (run, key, attempt).

Each instruction's outcome is a function of the program alone (a step fails by its *attempt*
number, not by how often the world ran it; hooks are resumed relative to their creation, before
any timeout), so one seed gives one result whatever the environment does. ``Features`` switches
off instruction kinds that run into known engine bugs (see ``CI_FEATURES``).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

Instr = dict[str, Any]
Program = dict[str, Any]

# The generic steps of ``interpreter`` and their retry policies (max_retries, delays):
#   fast: 3 retries, 1 s; exp: 2 retries, exponential (1 s, 2 s); list: 3 retries, [2, 30] s;
#   none: no retry. ``fail`` (failures before success) never exceeds a policy's retries.
STEP_RETRIES = {"fast": 3, "exp": 2, "list": 3, "none": 0}
SHORT_SLEEP = (1, 30)  # rides on an SQS DelaySeconds on AWS
LONG_SLEEP = (1000, 200_000)  # past 900 s: an EventBridge one-time schedule on AWS
MAX_DEPTH = 2  # children of children; the engine allows 3 levels


@dataclass(frozen=True)
class Features:
    """Which instruction kinds a generator may emit. All on by default."""

    plain_gather_failing: bool = True  # asyncio.gather (no return_exceptions) whose step fails
    gather: bool = True
    fan_out: bool = True
    children: bool = True
    hooks: bool = True
    cancel: bool = True
    continue_as_new: bool = True
    bad_result: bool = True  # a step returning text that cannot be stored
    slow_steps: bool = True  # a step running longer than the run's lease
    branch_children: bool = True  # a child workflow awaited inside a fan-out branch
    early_stop: bool = True  # fan-outs with min_successful / tolerated_failures
    early_stop_waits: bool = True  # waits inside a fan-out that may stop early
    catch_all: bool = True  # `except Exception` around instructions, as users do
    # environment switches
    concurrent_passes: bool = True  # worker passes of several workers at the same time
    faults_after_ending: bool = True  # faults in a drive after it wrote a run's ending

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


ALL_FEATURES = Features()
# What CI runs until the engine fixes land (see tests/simulation/test_simulation.py): each
# switch names the known bug its instructions run into.
CI_FEATURES = Features()


class Generator:
    """Draws a program with every feature; ``restrict`` then takes out what ``Features`` turns
    off. The random stream does not depend on the features, so one seed's program with a
    feature off is the same program minus that feature's instructions."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # --- instructions --------------------------------------------------------------------------
    def step(self, iid: str) -> Instr:
        r = self.rng
        fn = r.choice(list(STEP_RETRIES))
        mode = r.choices(["ok", "exhaust", "fatal", "retry_after", "bad_result"], [10, 2, 2, 2, 1])[
            0
        ]
        # ok/retry_after: ``fail`` transient failures, then success; fatal/bad_result: that
        # many transient failures, then the final one; exhaust: every attempt fails.
        fail = r.randint(0, STEP_RETRIES[fn])
        slow = r.randint(90, 300)
        slow = slow if r.random() < 0.04 else 0
        return {
            "id": iid,
            "kind": "step",
            "fn": fn,
            "fail": fail,
            "mode": mode,
            "value": r.randint(0, 999),
            "retry_after": r.choice([2, 45, 1200]),
            "yields": r.randint(0, 3),
            "slow": slow,
        }

    def sleep(self, iid: str) -> Instr:
        lo, hi = LONG_SLEEP if self.rng.random() < 0.25 else SHORT_SLEEP
        return {"id": iid, "kind": "sleep", "seconds": self.rng.randint(lo, hi)}

    def hook(self, iid: str, *, may_block: bool) -> Instr:
        """A hook and the environment's plan for it: deliveries at ``after`` seconds past the
        hook's creation, each good or bad (a bad one fails the typed hook's schema)."""
        r = self.rng
        typed = r.random() < 0.5
        timeout = r.choice([None, None, 600, 7200])
        fate = r.choice(["resume", "resume", "resume", "late", "never"])
        if not may_block:
            fate = "resume"
        deliveries: list[dict[str, Any]] = []
        bad_after, good_after = r.randint(0, 100), r.randint(0, 300)
        if typed and r.random() < 0.3:
            deliveries.append({"after": bad_after, "good": False})
        if fate == "resume" or (fate == "late" and timeout is None):
            deliveries.append({"after": good_after, "good": True})
        elif fate == "late" and timeout is not None:  # after the timeout: refused
            deliveries.append({"after": timeout + 1 + good_after, "good": True, "late": True})
        cancel = r.random() < 0.4 and fate == "never" and timeout is None
        return {
            "id": iid,
            "kind": "hook",
            "name": "h_" + iid.replace(".", "_"),
            "typed": typed,
            "timeout": timeout,
            "deliveries": deliveries,
            "by_name": r.random() < 0.3,
            "cancel_when_waiting": cancel,
        }

    def child(self, iid: str, depth: int) -> Instr:
        r = self.rng
        wait = r.random() < 0.65
        sub = self.program(iid, depth + 1, size=r.randint(1, 4))
        return {
            "id": iid,
            "kind": "child",
            "wait": wait,
            "policy": r.choice(["abandon", "cancel"]),
            "program": sub,
        }

    def fan_out(self, iid: str, depth: int) -> Instr:
        r = self.rng
        n = r.randint(1, 4)
        limit = r.choice(["none", "none", "min", "tol"])
        bound = r.randint(1, n)
        items = []
        for i in range(n):
            ops: list[Instr] = []
            for j in range(r.randint(1, 3)):
                op_id = f"{iid}.{i}.{j}"
                kind = r.choices(
                    ["step", "sleep", "hook", "child"], [8, 2, 1, 1 if depth < MAX_DEPTH else 0]
                )[0]
                if kind == "step":
                    ops.append(self.step(op_id))
                elif kind == "sleep":
                    ops.append(self.sleep(op_id))
                elif kind == "hook":
                    ops.append(self.hook(op_id, may_block=False))
                else:
                    ops.append({**self.child(op_id, depth), "wait": True})
            items.append({"ops": ops, "strict": r.random() < 0.5})
        out = {
            "id": iid,
            "kind": "fan_out",
            "api": r.choice(["map", "parallel"]),
            "items": items,
            "max_concurrency": r.choice([None, 1, 2]),
            "min_successful": bound if limit == "min" else None,
            "tolerated_failures": bound - 1 if limit == "tol" else None,
        }
        # The completion options added later draw from their own generator (seeded by this
        # one's state, which reading does not advance): the programs of earlier seeds stay
        # the same, with these options on top.
        extra = random.Random(f"{iid}/{r.getstate()[1][:8]}")
        out["on_completion"] = extra.choice(["cancel", "wait"])
        if limit == "none" and extra.random() < 0.3:
            out["tolerated_percentage"] = extra.choice([0, 25, 50])
        else:
            out["tolerated_percentage"] = None
        return out

    def gather(self, iid: str) -> Instr:
        r = self.rng
        plain = r.random() < 0.5
        steps = [self.step(f"{iid}.{i}") for i in range(r.randint(2, 3))]
        return {"id": iid, "kind": "gather", "steps": steps, "return_exceptions": not plain}

    # --- programs ------------------------------------------------------------------------------
    def program(self, pid: str, depth: int, *, size: int) -> Program:
        r = self.rng
        ops: list[Instr] = []
        weights = {
            "step": 10,
            "sleep": 3,
            "hook": 3,
            "child": 2 if depth < MAX_DEPTH else 0,
            "fan_out": 2,
            "gather": 2,
            "patch": 1,
            "continue_as_new": 1,
            "cancel": 1,
        }
        kinds = list(weights)
        for i in range(size):
            iid = f"{pid}.{i}"
            kind = r.choices(kinds, [weights[k] for k in kinds])[0]
            if kind == "step":
                ops.append(self.step(iid))
            elif kind == "sleep":
                ops.append(self.sleep(iid))
            elif kind == "hook":
                ops.append(self.hook(iid, may_block=True))
            elif kind == "child":
                ops.append(self.child(iid, depth))
            elif kind == "fan_out":
                ops.append(self.fan_out(iid, depth))
            elif kind == "gather":
                ops.append(self.gather(iid))
            elif kind == "patch":
                ops.append({"id": iid, "kind": "patch", "change": f"change-{r.randint(0, 2)}"})
            elif kind == "continue_as_new":
                ops.append({"id": iid, "kind": "continue_as_new"})
            else:
                ops.append({"id": iid, "kind": "cancel"})
                weights["cancel"] = 0  # once per program: the run ends there
        if r.random() < 0.08:
            ops.append({"id": f"{pid}.{size}", "kind": "fail"})
        cleanup = {
            "id": f"{pid}.cleanup",
            "kind": "step",
            "fn": "fast",
            "fail": r.randint(0, 2),
            "mode": "ok",
            "value": 0,
            "retry_after": 2,
            "yields": 1,
            "slow": 0,
        }
        return {"id": pid, "ops": ops, "catch_all": True, "cleanup": cleanup}


# --- features ------------------------------------------------------------------------------------
def _plain_step(instr: Instr, *, fails: bool = True) -> Instr:
    """A step standing in for a switched-off instruction (same id): it succeeds at once, or
    (``fails``, kept from a step) fails at once without retry."""
    mode = instr.get("mode", "ok")
    mode = "fatal" if fails and mode in ("exhaust", "retry_after", "fatal", "bad_result") else "ok"
    return {
        "id": instr["id"],
        "kind": "step",
        "fn": instr.get("fn", "fast"),
        "fail": 0,
        "mode": mode,
        "value": instr.get("value", 1),
        "retry_after": 2,
        "yields": instr.get("yields", 0),
        "slow": 0,
    }


def _waits(instr: Instr) -> bool:
    return (
        instr["kind"] in ("sleep", "hook", "child")
        or instr["kind"] == "step"
        and (instr["fail"] > 0 or instr["mode"] == "exhaust" or instr["slow"] > 0)
    )


def restrict(program: Program, f: Features) -> Program:
    """``program`` without what ``f`` switches off (instructions become plain steps)."""

    def one(instr: Instr, in_branch: bool) -> Instr:
        kind = instr["kind"]
        if kind == "step":
            out = dict(instr)
            if not f.slow_steps:
                out["slow"] = 0
            if not f.bad_result and out["mode"] == "bad_result":
                out["mode"] = "ok"
            return out
        off = {
            "hook": not f.hooks,
            "child": not f.children or (in_branch and not f.branch_children),
            "fan_out": not f.fan_out,
            "gather": not f.gather,
            "cancel": not f.cancel,
            "continue_as_new": not f.continue_as_new,
        }
        if off.get(kind):
            return _plain_step(instr, fails=False)
        if kind == "child":
            return {**instr, "program": restrict(instr["program"], f)}
        if kind == "gather":
            steps = [one(s, in_branch) for s in instr["steps"]]
            if not instr["return_exceptions"] and not f.plain_gather_failing:
                # known bug 5: a plain gather holds steps that succeed at their first attempt
                steps = [_plain_step(s, fails=False) for s in steps]
            return {**instr, "steps": steps}
        if kind == "fan_out":
            out = {**instr}
            if not f.early_stop:
                out.update(min_successful=None, tolerated_failures=None, tolerated_percentage=None)
            early = (
                out["min_successful"] is not None
                or out["tolerated_failures"] is not None
                or out.get("tolerated_percentage") is not None
            )
            items = []
            for item in instr["items"]:
                ops = [one(op, True) for op in item["ops"]]
                if early and not f.early_stop_waits:
                    ops = [_plain_step(op) if _waits(op) else op for op in ops]
                items.append({**item, "ops": ops})
            out["items"] = items
            return out
        return dict(instr)

    return {**program, "ops": [one(i, False) for i in program["ops"]], "catch_all": f.catch_all}


def generate(seed: int, features: Features = ALL_FEATURES) -> list[Program]:
    """The top-level programs of ``seed`` (1 to 3), each started as its own run."""
    rng = random.Random(f"program:{seed}")
    gen = Generator(rng)
    programs = [gen.program(f"p{i}", 0, size=rng.randint(2, 8)) for i in range(rng.randint(1, 3))]
    return [restrict(p, features) for p in programs]


def walk(program: Program) -> list[Instr]:
    """Every instruction of ``program``, children's and branches' included."""
    out: list[Instr] = []

    def visit(ops: list[Instr]) -> None:
        for op in ops:
            out.append(op)
            if op["kind"] == "child":
                visit(op["program"]["ops"])
                out.append(op["program"]["cleanup"])
            elif op["kind"] == "fan_out":
                for item in op["items"]:
                    visit(item["ops"])
            elif op["kind"] == "gather":
                out.extend(op["steps"])

    visit(program["ops"])
    out.append(program["cleanup"])
    return out


def hooks_of(programs: list[Program]) -> dict[str, Instr]:
    """Hook instructions by hook name."""
    return {i["name"]: i for p in programs for i in walk(p) if i["kind"] == "hook"}
