"""cancel_and_wait: a task that swallows a cancellation (as 3.11's wait_for can) is still stopped."""

from __future__ import annotations

import asyncio

from agent.tasks import cancel_and_wait


async def test_a_task_that_swallows_the_first_cancel_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed == 0:  # what a lost cancellation looks like from outside: the loop goes on
                    swallowed += 1
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], retry_s=0.05), 2)
    assert task.cancelled() and swallowed == 1


async def test_failed_and_finished_tasks_are_collected_without_raising() -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    failed = asyncio.create_task(boom())
    done = asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(0.01)
    await cancel_and_wait([failed, done])
    assert failed.done() and done.done()
