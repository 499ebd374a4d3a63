"""Session keys and replica affinity."""

import asyncio

from seekgate.backends.balanced import SPILL, Balanced
from seekgate.backends.fake import FakeBackend
from seekgate.core.types import ChatRequest, Message, Role, TextPart
from seekgate.routing.sessions import AUTO_MIN_CHARS, Affinity, session_key


def _chat(*texts: tuple[Role, str], metadata: dict[str, str] | None = None, session: str | None = None) -> ChatRequest:
    messages = tuple(Message(role=r, content=(TextPart(t),)) for r, t in texts)
    return ChatRequest(model="m", messages=messages, metadata=metadata or {}, session=session)


LONG = "You are a careful coding agent. " * 100


def test_explicit_keys_win_in_order():
    request = _chat((Role.USER, "hi"), metadata={"user_id": "user_1_session_abc", "user": "bob"})
    assert session_key(request, " s-42 ") == "s-42"
    assert session_key(request, None) == "user_1_session_abc"
    assert session_key(_chat((Role.USER, "hi"), metadata={"user": "bob"}), "") == "bob"


def test_the_automatic_key_follows_a_conversation_and_ignores_short_ones():
    turn1 = _chat((Role.SYSTEM, LONG), (Role.USER, "fix the bug in parser.py"))
    turn2 = _chat((Role.SYSTEM, LONG), (Role.USER, "fix the bug in parser.py"), (Role.ASSISTANT, "done"), (Role.USER, "now add a test"))
    other = _chat((Role.SYSTEM, LONG), (Role.USER, "rename the module"))
    assert len(LONG) >= AUTO_MIN_CHARS
    key = session_key(turn1, None)
    assert key is not None and key.startswith("auto-")
    assert session_key(turn2, None) == key and session_key(other, None) != key
    assert session_key(_chat((Role.USER, "hello")), None) is None


def test_affinity_forgets_the_oldest():
    affinity = Affinity(limit=2)
    affinity.set("a", 0)
    affinity.set("b", 1)
    assert affinity.get("a") == 0  # a is now the most recent
    affinity.set("c", 1)
    assert affinity.get("b") is None and affinity.get("a") == 0 and affinity.get("c") == 1


def test_a_session_stays_on_its_replica_until_it_is_much_busier():
    async def scenario() -> None:
        balanced = Balanced([FakeBackend("r0", "slow-100"), FakeBackend("r1", "slow-100")])
        s1 = _chat((Role.USER, "x"), session="s1")
        s2 = _chat((Role.USER, "y"), session="s2")
        # s1 is running on r0, so s2 goes to r1 and is remembered there.
        first = asyncio.create_task(balanced.chat(s1))
        await asyncio.sleep(0.01)
        assert (await balanced.chat(s2)).backend == "r1"
        await first
        # Nothing in flight: without affinity r0 would win the tie; s2 goes back to r1.
        assert (await balanced.chat(s2)).backend == "r1"
        assert (await balanced.chat(_chat((Role.USER, "z")))).backend == "r0"
        # r1 more than SPILL requests busier than r0: s2 spills over to r0, and stays there.
        busy = [asyncio.create_task(balanced.chat(s2)) for _ in range(SPILL + 2)]
        answers = await asyncio.gather(*busy)
        assert [a.backend for a in answers] == ["r1"] * (SPILL + 1) + ["r0"]
        assert (await balanced.chat(s2)).backend == "r0"

    asyncio.run(scenario())
