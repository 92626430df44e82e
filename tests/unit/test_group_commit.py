"""Group commit: concurrent submissions share a write; each gets its own outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from gasbill.service.group_commit import GroupCommit


class Recorder:
    """A write that records its batches; items named 'bad' fail alone, 'boom' fails the batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: Sequence[str]) -> list[str | Exception]:
        self.gate.wait(5)
        self.batches.append(list(items))
        if "boom" in items:
            raise RuntimeError("the database went away")
        return [ValueError(f"cannot store {i}") if i == "bad" else i.upper() for i in items]


def run(coro):
    return asyncio.run(coro)


def test_one_submission_alone_is_written_at_once():
    write = Recorder()
    commit = GroupCommit(write)
    assert run(commit.submit("a")) == "A"
    assert write.batches == [["a"]]


def test_submissions_that_arrive_while_a_write_runs_share_the_next_one():
    write = Recorder()
    commit = GroupCommit(write)

    async def scenario():
        write.gate.clear()  # hold the first write until the others are waiting
        first = asyncio.create_task(commit.submit("a"))
        await asyncio.sleep(0.01)
        rest = [asyncio.create_task(commit.submit(x)) for x in "bcdef"]
        await asyncio.sleep(0.01)
        write.gate.set()
        return await asyncio.gather(first, *rest)

    assert run(scenario()) == ["A", "B", "C", "D", "E", "F"]
    assert write.batches == [["a"], ["b", "c", "d", "e", "f"]]
    assert (commit.batches, commit.items) == (2, 6)


def test_batches_are_at_most_max_batch():
    write = Recorder()
    commit = GroupCommit(write, max_batch=2)

    async def scenario():
        return await asyncio.gather(*(commit.submit(x) for x in "abcde"))

    assert run(scenario()) == list("ABCDE")
    assert [len(b) for b in write.batches] == [2, 2, 1]


def test_an_item_that_fails_fails_only_its_own_submission():
    write = Recorder()
    commit = GroupCommit(write)

    async def scenario():
        return await asyncio.gather(
            *(commit.submit(x) for x in ["a", "bad", "c"]), return_exceptions=True
        )

    a, bad, c = run(scenario())
    assert (a, c) == ("A", "C")
    assert isinstance(bad, ValueError)
    assert str(bad) == "cannot store bad"


def test_a_write_that_breaks_fails_every_submission_of_its_batch_and_the_next_batch_runs():
    write = Recorder()
    commit = GroupCommit(write)

    async def scenario():
        write.gate.clear()
        first = asyncio.create_task(commit.submit("boom"))
        await asyncio.sleep(0.01)
        same_batch = [asyncio.create_task(commit.submit(x)) for x in "xy"]
        await asyncio.sleep(0.01)
        write.gate.set()
        results = await asyncio.gather(first, *same_batch, return_exceptions=True)
        return results, await commit.submit("z")

    (boom, x, y), z = run(scenario())
    assert isinstance(boom, RuntimeError)
    assert (x, y) == ("X", "Y")  # they were in the next batch, which succeeded
    assert z == "Z"


def test_a_write_answering_the_wrong_number_of_outcomes_fails_its_batch():
    commit: GroupCommit[str, str] = GroupCommit(lambda items: [])
    with pytest.raises(RuntimeError, match="0 outcomes for 1 items"):
        run(commit.submit("a"))


def test_a_cancelled_submission_does_not_stop_the_others():
    write = Recorder()
    commit = GroupCommit(write)

    async def scenario():
        write.gate.clear()
        first = asyncio.create_task(commit.submit("a"))
        await asyncio.sleep(0.01)
        gone = asyncio.create_task(commit.submit("b"))
        kept = asyncio.create_task(commit.submit("c"))
        await asyncio.sleep(0.01)
        gone.cancel()
        write.gate.set()
        return await first, await kept

    assert run(scenario()) == ("A", "C")
    assert write.batches == [["a"], ["b", "c"]]  # b was still written: its re-push is a duplicate


def test_each_event_loop_gets_its_own_batches():
    write = Recorder()
    commit = GroupCommit(write)
    assert run(commit.submit("a")) == "A"
    assert run(commit.submit("b")) == "B"  # a new loop, as a test client makes per request
    assert write.batches == [["a"], ["b"]]


def test_several_writers_write_batches_side_by_side():
    write = Recorder()
    commit = GroupCommit(write, writers=2, max_batch=1)

    async def scenario():
        return await asyncio.gather(*(commit.submit(x) for x in "abcd"))

    assert run(scenario()) == list("ABCD")
    assert sorted(item for batch in write.batches for item in batch) == list("abcd")


def test_settings_are_checked():
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Recorder(), max_batch=0)


def test_a_submission_right_after_a_write_ends_is_written_too():
    """The writer leaves as it finds nothing waiting: a submission made the moment its
    last batch is answered (before the loop got round to the finished task) starts a new
    writer instead of waiting for one that is gone."""
    write = Recorder()
    commit = GroupCommit(write)

    async def scenario():
        first = await commit.submit("a")
        async with asyncio.timeout(5):  # in this task: no loop turn before it submits
            second = await commit.submit("b")
        return first, second

    assert run(scenario()) == ("A", "B")
    assert write.batches == [["a"], ["b"]]
