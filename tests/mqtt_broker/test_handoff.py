"""GroupHandoff: batches handed from the event loop to worker threads in groups, on a real executor."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from iotdb_mqtt.handoff import GroupHandoff


def test_every_item_gets_its_own_result_in_order() -> None:
    seen: list[int] = []

    def work(item: int) -> int:
        seen.append(item)
        return item * 10

    async def main() -> list[int]:
        with ThreadPoolExecutor(1) as executor:
            handoff: GroupHandoff[int, int] = GroupHandoff(executor, work)
            return list(await asyncio.gather(*(handoff.submit(i) for i in range(500))))

    assert asyncio.run(main()) == [i * 10 for i in range(500)]
    assert seen == list(range(500))


def test_a_failing_item_fails_only_its_own_future() -> None:
    def work(item: int) -> int:
        if item == 3:
            raise ValueError("item 3 is bad")
        return item

    async def main() -> list[object]:
        with ThreadPoolExecutor(1) as executor:
            handoff: GroupHandoff[int, int] = GroupHandoff(executor, work)
            return list(await asyncio.gather(*(handoff.submit(i) for i in range(6)), return_exceptions=True))

    results = asyncio.run(main())
    assert results[:3] == [0, 1, 2] and results[4:] == [4, 5]
    assert isinstance(results[3], ValueError) and str(results[3]) == "item 3 is bad"


def test_settle_each_resolves_an_item_before_a_slow_later_one_finishes() -> None:
    release = threading.Event()

    def work(item: int) -> int:
        if item == 1:
            assert release.wait(10), "the test never released item 1"
        return item

    async def main() -> None:
        with ThreadPoolExecutor(1) as executor:
            handoff: GroupHandoff[int, int] = GroupHandoff(executor, work, settle_each=True)
            first, second = handoff.submit(0), handoff.submit(1)
            assert await asyncio.wait_for(first, 10) == 0
            assert not second.done()
            release.set()
            assert await asyncio.wait_for(second, 10) == 1

    asyncio.run(main())


def test_other_jobs_of_the_executor_run_while_items_keep_coming() -> None:
    """A drain goes to the back of the executor's queue when more items wait, so a job queued meanwhile runs
    even though the handoff's queue never empties."""

    def work(item: int) -> int:
        threading.Event().wait(0.001)
        return item

    async def main() -> int:
        with ThreadPoolExecutor(1) as executor:
            loop = asyncio.get_running_loop()
            handoff: GroupHandoff[int, int] = GroupHandoff(executor, work)
            done: list[int] = []
            stopped = False

            def refill(finished: asyncio.Future[int]) -> None:
                done.append(finished.result())
                if not stopped and len(done) < 5000:
                    handoff.submit(len(done) + 5).add_done_callback(refill)

            for item in range(5):  # five items always queued or running
                handoff.submit(item).add_done_callback(refill)
            other = await asyncio.wait_for(loop.run_in_executor(executor, lambda: len(done)), 30)
            stopped = True
            assert other < 5000, "the other job waited until the items stopped coming"
            return other

    asyncio.run(main())


def test_workers_must_be_positive() -> None:
    with ThreadPoolExecutor(1) as executor, pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        GroupHandoff(executor, lambda item: item, workers=0)
