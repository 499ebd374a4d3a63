import hashlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from seekgate import errors
from seekgate.guards.keys import ApiKey, KeyStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "seekgate.db"


@pytest.fixture
def store(db: Path) -> Iterator[KeyStore]:
    s = KeyStore(db)
    yield s
    s.close()


def test_a_new_key_has_the_documented_shape_and_verifies(store: KeyStore):
    record, key = store.create("ci-bot", tasks=("chat", "review"), requests_per_minute=60, tokens_per_minute=10_000)
    assert re.fullmatch(r"sgk_[A-Za-z0-9_-]{43}", key)
    assert re.fullmatch(r"key_[0-9a-f]{8}", record.id)
    assert record.hint == key[-4:] and record.revoked_at is None and record.created_at > 0
    assert (record.name, record.tasks, record.requests_per_minute, record.tokens_per_minute) == ("ci-bot", ("chat", "review"), 60, 10_000)
    assert store.verify(key) == record


def test_only_a_digest_of_the_key_is_stored(store: KeyStore, db: Path):
    _, key = store.create("ci-bot")
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert key not in dump and key[4:] not in dump
    (digest,) = sqlite3.connect(db).execute("SELECT digest FROM api_keys").fetchone()
    assert digest == hashlib.sha256(key.encode()).digest()


def test_the_record_shown_to_people_carries_neither_key_nor_digest(store: KeyStore):
    record, key = store.create("ci-bot")
    shown = msgspec.json.encode(record).decode()
    assert key not in shown and key[-4:] in shown
    assert hashlib.sha256(key.encode()).hexdigest() not in shown and "digest" not in shown


def test_every_key_is_different(store: KeyStore):
    made = [store.create(f"k{i}") for i in range(20)]
    assert len({key for _, key in made}) == 20 and len({r.id for r, _ in made}) == 20


@pytest.mark.parametrize("token", ["", "sgk_", "sgk_" + "x" * 43, "sk-" + "x" * 44, "sgk_" + "x" * 4000])
def test_unknown_and_malformed_keys_do_not_verify(store: KeyStore, token: str):
    store.create("ci-bot")
    assert store.verify(token) is None


def test_a_key_with_one_character_changed_does_not_verify(store: KeyStore):
    _, key = store.create("ci-bot")
    assert store.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None


def test_a_revoked_key_no_longer_verifies_here_at_once(store: KeyStore):
    record, key = store.create("ci-bot")
    assert store.verify(key) == record  # now cached
    revoked = store.revoke(record.id)
    assert revoked.revoked_at is not None and revoked.id == record.id
    assert store.verify(key) is None


def test_revocation_by_another_process_takes_effect_within_the_cache_ttl(db: Path):
    clock = Clock()
    gateway = KeyStore(db, cache_ttl=5.0, now=clock)
    cli = KeyStore(db)
    record, key = cli.create("ci-bot")
    assert gateway.verify(key) == record
    cli.revoke(record.id)
    clock.now += 4.9
    assert gateway.verify(key) == record  # the cached answer, as documented
    clock.now += 0.2
    assert gateway.verify(key) is None
    gateway.close()
    cli.close()


def test_a_key_created_by_another_process_verifies_at_once(db: Path):
    gateway, cli = KeyStore(db), KeyStore(db)
    record, key = cli.create("ci-bot")
    assert gateway.verify(key) == record
    gateway.close()
    cli.close()


def test_revoking_twice_keeps_the_first_time(store: KeyStore):
    record, _ = store.create("ci-bot")
    first = store.revoke(record.id)
    assert store.revoke(record.id) == first


def test_revoking_an_unknown_id_names_it(store: KeyStore):
    with pytest.raises(errors.NotFound, match="key_00000000"):
        store.revoke("key_00000000")


def test_list_shows_every_key_oldest_first_with_its_state(store: KeyStore):
    a, _ = store.create("a")
    b, _ = store.create("b", tasks=("chat",))
    store.revoke(a.id)
    listed = store.list()
    assert [k.id for k in listed] == [a.id, b.id]
    assert listed[0].revoked_at is not None and listed[1] == b


def test_keys_survive_a_restart(db: Path):
    first = KeyStore(db)
    record, key = first.create("ci-bot", tasks=("chat",))
    first.close()
    again = KeyStore(db)
    assert again.verify(key) == record and again.list() == [record]
    again.close()


def test_the_table_shares_the_database_with_other_stores(db: Path):
    from seekgate.reviews.store import ReviewStore

    reviews = ReviewStore(db)
    keys = KeyStore(db)
    _, key = keys.create("ci-bot")
    assert keys.verify(key) is not None
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"api_keys", "reviews"} <= tables
    keys.close()
    reviews.close()


@pytest.mark.parametrize("name", ["", "   "])
def test_a_key_needs_a_name(store: KeyStore, name: str):
    with pytest.raises(errors.InvalidRequest, match="name"):
        store.create(name)
    assert store.list() == []


def test_negative_limits_are_refused(store: KeyStore):
    with pytest.raises(errors.InvalidRequest, match="negative"):
        store.create("ci-bot", requests_per_minute=-1)


def test_an_allowlist_limits_tasks_and_an_empty_one_allows_all():
    limited = ApiKey(id="key_1", name="n", hint="abcd", tasks=("chat", "review"))
    assert limited.allows("chat") and limited.allows("review") and not limited.allows("tests")
    assert ApiKey(id="key_2", name="n", hint="abcd").allows("anything")
