"""``shield()``: code inside runs to completion even if the workflow is cancelled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pyworkflow.core import context as _ctx


@asynccontextmanager
async def shield() -> AsyncIterator[None]:
    """Protect cleanup from cancellation::

    except CancellationError:
        async with shield():
            await refund_payment(order_id)
        raise
    """
    ctx = _ctx.current()
    if ctx is None:
        yield
        return
    ctx.shield_depth += 1
    try:
        yield
    finally:
        ctx.shield_depth -= 1
