"""`ChangeWatchers` callback waiters (the HTTP fast path's parked requests): woken once, in
one loop callback per change, only by their own tables; `forget` takes them out."""

import asyncio
import threading

from yurt.state.watch import CallbackWaiter, ChangeWatchers


class Recorder(CallbackWaiter):
    __slots__ = ("woken", "log")

    def __init__(self, loop, log):
        self.loop, self.log, self.woken = loop, log, 0

    def wake(self) -> None:
        self.woken += 1
        self.log.append(self)


async def test_a_change_wakes_its_tables_waiters_once_in_one_batch():
    loop = asyncio.get_running_loop()
    watchers, log = ChangeWatchers(), []
    a, b, both, other = (Recorder(loop, log) for _ in range(4))
    watchers.watch(("t1",), a)
    watchers.watch(("t1",), b)
    watchers.watch(("t1", "t2"), both)
    watchers.watch(("t3",), other)
    watchers.notify({"t1", "t2"})
    assert log == []  # called back after the writer's own work, not inside notify
    await asyncio.sleep(0)
    assert sorted(map(id, log)) == sorted(map(id, (a, b, both))) and both.woken == 1
    assert other.woken == 0 and watchers.waiting() == 1
    watchers.forget(other)
    watchers.notify({"t3"})
    await asyncio.sleep(0)
    assert other.woken == 0 and watchers.waiting() == 0


async def test_a_change_from_another_thread_wakes_on_the_waiters_loop():
    loop = asyncio.get_running_loop()
    watchers, threads = ChangeWatchers(), []

    class ThreadRecorder(Recorder):
        def wake(self) -> None:
            threads.append(threading.current_thread())

    watchers.watch(("t",), ThreadRecorder(loop, []))
    thread = threading.Thread(target=watchers.notify, args=({"t"},))
    thread.start()
    thread.join()
    for _ in range(10):
        await asyncio.sleep(0)
    assert threads == [threading.current_thread()]
