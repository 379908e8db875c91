"""``continue_as_new``: end this run and start a fresh one (empty history) with new arguments."""

from __future__ import annotations

from typing import Any, NoReturn

from pyworkflow.core import context as _ctx
from pyworkflow.exceptions import ContinueAsNewSignal


def continue_as_new(*args: Any, **kwargs: Any) -> NoReturn:
    """Never returns. The new run is linked both ways (``continued_from_run_id`` /
    ``continued_to_run_id``); ``get_workflow_chain`` walks the links. A pending cancellation wins:
    the run is cancelled instead of continuing."""
    ctx = _ctx.current()
    if ctx is None:
        raise RuntimeError("continue_as_new() can only be called inside a workflow")
    _ctx.refuse_in_step("continue_as_new()")
    if not args and not kwargs:
        raise ValueError(
            "continue_as_new() needs the arguments of the next run: pass at least one, "
            "e.g. continue_as_new(cursor=next_cursor)"
        )
    ctx.check_cancellation()
    raise ContinueAsNewSignal(args, kwargs)
