"""Fan-out: resize a batch of images concurrently with ``pyworkflow.map`` and ``parallel``.

    python examples/fan_out.py [--db PATH]

What to notice:

* ``map(resize, images, max_concurrency=3, tolerated_failures=1)`` runs at most 3 items at once
  inside the one execution; each finished item is one ``step.completed`` event, nothing more;
* one image is corrupt: its failure is collected in ``result.failed`` (the exception per index),
  the other items go on;
* ``parallel(publish(...), notify(...))`` runs two branches of several durable calls each;
* after the ``sleep``, the run is resumed by its timer: it replays every item from its history,
  in whatever order the items had finished, and no step runs a second time (see the counts).

Runs on the embedded SQLite storage (a fresh file under .pyworkflow/ unless --db is given).
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import Counter
from pathlib import Path

import pyworkflow
from pyworkflow import (
    FatalError,
    SQLiteStorageBackend,
    get_workflow_events,
    get_workflow_run,
    resume,
    sleep,
    start,
    step,
    workflow,
)

DEFAULT_DB = Path(".pyworkflow/examples/fan_out.db")
ran: Counter[str] = Counter()
in_flight = {"now": 0, "peak": 0}


@step(max_retries=0)
async def resize(image: str) -> str:
    ran[f"resize {image}"] += 1
    in_flight["now"] += 1
    in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
    try:
        await asyncio.sleep(random.uniform(0.001, 0.02))  # items finish in any order
        if "corrupt" in image:
            raise FatalError(f"cannot decode {image}")
        return image.replace(".png", "-small.png")
    finally:
        in_flight["now"] -= 1


@step
async def upload(name: str) -> str:
    ran[f"upload {name}"] += 1
    return f"s3://thumbs/{name}"


@step
async def send(message: str) -> str:
    ran[f"send {message}"] += 1
    return message


async def publish(thumbs: list[str]) -> list[str]:
    """A branch of several durable calls: each keeps its own place in the history."""
    return [await upload(t) for t in thumbs]


async def notify(count: int) -> str:
    await send(f"{count} thumbnails ready")
    return await send("done")


@workflow
async def thumbnails(images: list[str]) -> dict:
    res = await pyworkflow.map(resize, images, max_concurrency=3, tolerated_failures=1)
    print(f"  workflow: map -> {len(res.succeeded)} succeeded, failed: "
          + ", ".join(f"#{i} {type(e).__name__}: {e}" for i, e in res.failed.items())
          + f" (completion: {res.completion_reason})")
    thumbs = [t for t in res.results if t is not None]
    both = await pyworkflow.parallel(publish(thumbs), notify(len(thumbs)))
    urls, note = both.raise_if_failed()
    await sleep("1s")
    return {"thumbnails": len(thumbs), "urls": urls, "note": note, "failed": sorted(res.failed)}


async def main(db: Path) -> None:
    pyworkflow.configure(storage=SQLiteStorageBackend(db))
    images = [f"img{i}.png" for i in range(6)] + ["corrupt7.png", "img8.png"]
    print(f"script: start(thumbnails, {len(images)} images) on {db}")
    run_id = await start(thumbnails, images)
    print(f"script: run {run_id} is {(await get_workflow_run(run_id)).status} at the sleep; "
          f"at most {in_flight['peak']} resize steps ran at once")
    print("script: waiting for the 1s sleep; the embedded runtime's timer then resumes the "
          "run, whose workflow function runs again and replays")
    run = await get_workflow_run(run_id)
    while not run.status.is_terminal:
        await asyncio.sleep(0.1)
        run = await get_workflow_run(run_id)
    await resume(run_id)  # a no-op now: the run already ended

    print()
    print("How often each step ran (replay ran none of them again):")
    for name, count in sorted(ran.items()):
        print(f"  {name:<32} ran {count} time(s)")
    events = await get_workflow_events(run_id)
    items = [e for e in events if e.data.get("name") == "resize"]
    print(f"{len(images)} items -> {len(items)} events for them "
          f"(finish order: {', '.join(e.data['path'].split('.')[1] for e in items)})")
    print()
    print(f"Run {run_id}: status {run.status}")
    print(f"Result: {run.get_result()}")
    print(f"Inspect it: pyworkflow --db {db} runs logs {run_id}")


def parse_db(default: Path) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None,
                        help=f"SQLite file to use (default: a fresh {default})")
    args = parser.parse_args()
    if args.db is not None:
        return args.db
    default.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{default}{suffix}").unlink(missing_ok=True)
    return default


if __name__ == "__main__":
    asyncio.run(main(parse_db(DEFAULT_DB)))
