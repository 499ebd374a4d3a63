"""The review store: decisions, ordering, and nothing lost across a new store or a SIGKILL."""

import asyncio
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from seekgate import errors
from seekgate.reviews.store import Review, ReviewStore

REQUEST = {"messages": [{"role": "user", "content": "drop the production table"}], "max_tokens": 64}
USAGE = {"prompt_tokens": 12, "completion_tokens": 5}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "data" / "seekgate.db"


def _submit(store: ReviewStore, candidate: str = "DROP TABLE users;", task: str = "ops") -> Review:
    return asyncio.run(store.submit(task, "fake-echo", REQUEST, candidate, USAGE))


def test_submit_creates_the_folder_and_a_pending_review_that_get_returns(db):
    store = ReviewStore(db)
    review = _submit(store)
    assert db.is_file()
    assert re.fullmatch(r"rev_[0-9a-f]{24}", review.id)
    assert (review.status, review.answer, review.reason, review.decided) == ("pending", None, None, None)
    got = asyncio.run(store.get(review.id))
    assert got == review
    assert got.request == REQUEST and got.usage == USAGE and got.task == "ops" and got.model == "fake-echo"


def test_the_database_runs_in_wal_mode(db):
    ReviewStore(db).close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_get_of_an_unknown_id_is_not_found_and_names_the_id(db):
    with pytest.raises(errors.NotFound, match="rev_nope"):
        asyncio.run(ReviewStore(db).get("rev_nope"))


def test_list_is_newest_first_filters_by_status_and_honours_the_limit(db):
    store = ReviewStore(db)
    first, second, third = (_submit(store, candidate=c) for c in ("one", "two", "three"))
    asyncio.run(store.reject(second.id, "no"))
    assert [r.id for r in asyncio.run(store.list())] == [third.id, second.id, first.id]
    assert [r.id for r in asyncio.run(store.list("pending"))] == [third.id, first.id]
    assert [r.id for r in asyncio.run(store.list("rejected"))] == [second.id]
    assert asyncio.run(store.list("approved")) == []
    assert [r.id for r in asyncio.run(store.list(limit=2))] == [third.id, second.id]


def test_approve_without_an_edit_sends_the_candidate(db):
    store = ReviewStore(db)
    review = _submit(store, candidate="the candidate")
    before = time.time()
    approved = asyncio.run(store.approve(review.id))
    assert approved.status == "approved" and approved.answer == "the candidate" and approved.reason is None
    assert approved.decided is not None and approved.decided >= before
    assert asyncio.run(store.get(review.id)) == approved


def test_approve_with_an_edit_keeps_the_candidate_and_stores_the_edit(db):
    store = ReviewStore(db)
    review = _submit(store, candidate="DROP TABLE users;")
    approved = asyncio.run(store.approve(review.id, "No: take a backup first."))
    stored = asyncio.run(store.get(review.id))
    assert stored == approved
    assert stored.answer == "No: take a backup first." and stored.candidate == "DROP TABLE users;"


def test_approve_with_an_empty_edit_stores_the_empty_answer_not_the_candidate(db):
    store = ReviewStore(db)
    review = _submit(store, candidate="something")
    assert asyncio.run(store.approve(review.id, "")).answer == ""


def test_reject_stores_the_reason_and_no_answer(db):
    store = ReviewStore(db)
    review = _submit(store)
    rejected = asyncio.run(store.reject(review.id, "destructive"))
    assert rejected.status == "rejected" and rejected.reason == "destructive" and rejected.answer is None
    assert asyncio.run(store.get(review.id)) == rejected


@pytest.mark.parametrize("first", ["approve", "reject"])
@pytest.mark.parametrize("second", ["approve", "reject"])
def test_a_decided_review_cannot_be_decided_again(db, first, second):
    store = ReviewStore(db)
    review = _submit(store)
    decide = {"approve": lambda: store.approve(review.id, "edit"), "reject": lambda: store.reject(review.id, "why")}
    decided = asyncio.run(decide[first]())
    with pytest.raises(errors.InvalidRequest, match=review.id) as caught:
        asyncio.run(decide[second]())
    assert caught.value.code == "review_already_decided"
    assert asyncio.run(store.get(review.id)) == decided  # the first decision stands


def test_deciding_an_unknown_review_is_not_found(db):
    store = ReviewStore(db)
    with pytest.raises(errors.NotFound):
        asyncio.run(store.approve("rev_000000000000000000000000"))
    with pytest.raises(errors.NotFound):
        asyncio.run(store.reject("rev_000000000000000000000000", "why"))


def test_two_reviewers_deciding_at_once_get_exactly_one_decision(db):
    store = ReviewStore(db)
    review = _submit(store)

    async def race() -> list[object]:
        return await asyncio.gather(*(store.approve(review.id, f"edit {i}") for i in range(8)), store.reject(review.id, "no"),
                                    return_exceptions=True)  # fmt: skip

    results = asyncio.run(race())
    winners = [r for r in results if isinstance(r, Review)]
    assert len(winners) == 1
    assert all(isinstance(r, errors.InvalidRequest) for r in results if r is not winners[0])
    assert asyncio.run(store.get(review.id)) == winners[0]


def test_concurrent_submits_all_land_with_distinct_ids(db):
    store = ReviewStore(db)

    async def many() -> list[Review]:
        return await asyncio.gather(*(store.submit("ops", "m", {"n": i}, f"answer {i}", USAGE) for i in range(50)))

    submitted = asyncio.run(many())
    assert len({r.id for r in submitted}) == 50
    assert {r.id for r in asyncio.run(store.list(limit=100))} == {r.id for r in submitted}


def test_a_store_waiting_on_a_locked_database_does_not_block_the_event_loop(db):
    store = ReviewStore(db)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database

    async def main() -> tuple[int, Review]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        submit = asyncio.ensure_future(store.submit("ops", "m", REQUEST, "waited", USAGE))
        await asyncio.sleep(0.5)
        assert not submit.done()  # still waiting for the lock...
        blocker.execute("COMMIT")  # ...and the loop kept running meanwhile
        review = await submit
        ticker.cancel()
        return ticks, review

    try:
        ticks, review = asyncio.run(main())
    finally:
        blocker.close()
    assert ticks >= 20
    assert asyncio.run(store.get(review.id)).candidate == "waited"


def test_a_new_store_on_the_same_file_sees_every_review_and_decision(db):
    first = ReviewStore(db)
    pending, approved, rejected = _submit(first, "a"), _submit(first, "b"), _submit(first, "c")
    asyncio.run(first.approve(approved.id, "edited b"))
    asyncio.run(first.reject(rejected.id, "bad c"))
    first.close()
    second = ReviewStore(db)
    assert asyncio.run(second.get(pending.id)).status == "pending"
    assert asyncio.run(second.get(approved.id)).answer == "edited b"
    assert asyncio.run(second.get(rejected.id)).reason == "bad c"


_CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from seekgate.reviews.store import ReviewStore

    store = ReviewStore(Path(sys.argv[1]))
    old = asyncio.run(store.submit("ops", "m", {"n": 0}, "decided before the kill", {}))
    asyncio.run(store.approve(old.id, "approved before the kill"))
    review = asyncio.run(store.submit("ops", "m", {"n": 1}, "submitted before the kill", {"prompt_tokens": 3}))
    print(old.id, review.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close(), no atexit, no interpreter shutdown
    """
)


def test_a_review_survives_the_process_being_killed_right_after_submit_returns(db):
    child = subprocess.run([sys.executable, "-c", _CHILD, str(db)], capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    old_id, review_id = child.stdout.split()
    store = ReviewStore(db)
    review = asyncio.run(store.get(review_id))
    assert review.status == "pending" and review.candidate == "submitted before the kill" and review.usage == {"prompt_tokens": 3}
    assert asyncio.run(store.get(old_id)).answer == "approved before the kill"
    assert asyncio.run(store.approve(review_id)).answer == "submitted before the kill"
