"""Event ids: unique, shaped like ``new_id("evt")``, and never the same sequence in a forked
child as in its parent (the generator is seeded again at fork)."""

from __future__ import annotations

import os
import re

from pyworkflow.core.clock import new_event_id, new_id


def test_event_ids_are_unique_and_shaped_like_new_ids() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    shape = re.compile(r"^evt_[0-9a-f]{16}$")
    assert all(shape.match(i) for i in ids)
    assert shape.match(new_id("evt"))


def test_a_forked_child_draws_other_event_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, " ".join(new_event_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    parent = [new_event_id() for _ in range(5)]
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    assert len(child) == 5 and not set(child) & set(parent)
