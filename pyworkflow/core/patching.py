"""``patched`` and ``deprecate_patch``: change workflow code without breaking runs in flight.

A run replays its history against the code deployed *now*. To add, remove or reorder durable
calls, branch on ``patched("change-id")``::

    if pyworkflow.patched("send-receipt"):
        await send_receipt(order_id)      # new behaviour
    else:
        await send_email(order_id)        # what runs recorded before the change did

At its position in the run, ``patched`` looks at the history:

* nothing recorded there (a new run, or an old run reaching this point only now): it records a
  ``patch.applied`` marker (riding along with the next write) and returns True;
* that marker: True again, on every replay;
* some other operation (the run recorded the old code's calls there): False, and the position is
  left as it is, so the old branch's calls replay onto their recorded events.

Once no run recorded before the change is left, replace the check by
``deprecate_patch("change-id")`` (it records nothing and steps over an old marker), and later
remove that too. Both are plain functions (no ``await``): a forgotten ``await`` on an async
``patched`` would be a coroutine, always true.
"""

from __future__ import annotations

from pyworkflow.core import context as _ctx
from pyworkflow.core.events import EventType


def _check_id(change_id: str) -> None:
    if not isinstance(change_id, str) or not change_id:
        raise ValueError('a patch needs a non-empty change id, e.g. patched("send-receipt")')


def patched(change_id: str) -> bool:
    """True if this run follows the code after change ``change_id`` (see the module doc)."""
    _check_id(change_id)
    ctx = _ctx.current()
    if ctx is None or ctx.in_step:
        return True  # outside a workflow, or in a step: there is no history to stay true to
    rec = ctx.peek()
    if rec is not None and not (rec.kind == "patch" and rec.name == change_id):
        return False  # the run recorded the old code's operation here: leave it for it
    if rec is None and ctx.position_settled():
        return False  # a branch the recorded run had already finished, under the old code
    op, rec = ctx.allocate("patch", change_id)
    if rec is None:
        ctx.record_later(EventType.PATCH_APPLIED, {"op": op, "name": change_id})
    return True


def deprecate_patch(change_id: str) -> None:
    """Mark the end of a patch's life: the code now always takes the new branch. Records
    nothing; steps over the marker of runs that recorded ``patched(change_id)``."""
    _check_id(change_id)
    ctx = _ctx.current()
    if ctx is None or ctx.in_step:
        return
    rec = ctx.peek()
    if rec is not None and rec.kind == "patch" and rec.name == change_id:
        ctx.allocate("patch", change_id)


__all__ = ["patched", "deprecate_patch"]
