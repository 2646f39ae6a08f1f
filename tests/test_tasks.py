"""cancel_and_wait: every task is cancelled and has *finished* when it returns, even one that swallows a
cancellation (as 3.11's wait_for can); failed tasks have their exception retrieved (asyncio never logs
"exception was never retrieved"); a task that ignores every cancellation is reported by name, not waited for
forever."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from loguru import logger

from agent import tasks as tasks_module
from agent.tasks import cancel_and_wait


@pytest.fixture
async def release() -> AsyncIterator[Callable[[asyncio.Task[Any]], None]]:
    """Stop the stubborn tasks a test registers once it ends, so a red test does not hang the loop's teardown
    (which cancels only once)."""
    registered: list[asyncio.Task[Any]] = []
    yield registered.append
    for task in registered:
        for _ in range(100):
            if task.done():
                break
            task.cancel()
            await asyncio.wait([task], timeout=0.01)


async def test_a_cooperative_task_has_finished_its_cleanup_when_the_call_returns() -> None:
    cleaned: list[str] = []

    async def worker() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.05)  # cleanup that itself awaits: a cancel without a wait would miss it
            cleaned.append("done")

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task]), 2)
    assert (task.cancelled(), cleaned) == (True, ["done"])


async def test_a_task_that_swallows_the_first_cancel_is_cancelled_again(
    release: Callable[[asyncio.Task[Any]], None],
) -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed == 0:  # what a lost cancellation looks like from outside: the loop goes on
                    swallowed += 1
                    current = asyncio.current_task()
                    assert current is not None
                    current.uncancel()
                    continue
                raise

    task = asyncio.create_task(stubborn())
    release(task)
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], retry_s=0.05), 2)
    assert (task.cancelled(), swallowed) == (True, 1)


async def test_a_task_that_ignores_every_cancel_is_named_in_an_error_after_the_last_attempt(
    release: Callable[[asyncio.Task[Any]], None],
) -> None:
    seen = 0

    async def deaf() -> None:
        nonlocal seen
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen += 1
                current = asyncio.current_task()
                assert current is not None
                current.uncancel()
                if seen > tasks_module.ATTEMPTS:  # the release fixture's cancels, after the call gave up
                    raise

    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m).rstrip("\n")), level="ERROR", format="{level}|{message}")
    task = asyncio.create_task(deaf(), name="deaf-task")
    release(task)
    await asyncio.sleep(0)
    try:
        await asyncio.wait_for(cancel_and_wait([task], retry_s=0.005), 2)
    finally:
        logger.remove(sink)
    assert not task.done() and seen == tasks_module.ATTEMPTS
    assert lines == [f"ERROR|tasks ignored {tasks_module.ATTEMPTS} cancellations: deaf-task"]


async def test_failed_and_finished_tasks_are_collected_without_raising_or_an_unretrieved_exception_log() -> None:
    """asyncio logs 'Task exception was never retrieved' when a failed task is garbage-collected unread: at
    shutdown that would read as a second, unexplained crash."""
    reported: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(str(context.get("message"))))

    async def boom() -> None:
        raise RuntimeError("boom")

    try:
        failed = asyncio.create_task(boom())
        finished = asyncio.create_task(asyncio.sleep(0))
        await asyncio.sleep(0.01)
        await cancel_and_wait([failed, finished])
        assert failed.done() and finished.done() and not finished.cancelled()
        del failed, finished
        gc.collect()  # a failed task whose exception nobody read reports it when it is collected
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
