from seekgate.routing.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_failures_in_a_row_and_probes_once_after_the_cooldown():
    clock = Clock()
    breaker = Breaker(failures=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        breaker.failure("m")
    assert breaker.allow("m") and breaker.state("m") == "closed"
    breaker.failure("m")
    assert breaker.state("m") == "open" and not breaker.allow("m")
    clock.now = 9.9
    assert not breaker.allow("m")
    clock.now = 10.0
    assert breaker.state("m") == "half-open"
    assert breaker.allow("m")  # the probe
    assert not breaker.allow("m")  # only one at a time


def test_a_successful_probe_closes_the_circuit():
    clock = Clock()
    breaker = Breaker(failures=1, cooldown_s=5, clock=clock)
    breaker.failure("m")
    clock.now = 5
    assert breaker.allow("m")
    breaker.success("m")
    assert breaker.state("m") == "closed" and breaker.allow("m") and breaker.allow("m")


def test_a_failed_probe_reopens_for_another_cooldown():
    clock = Clock()
    breaker = Breaker(failures=2, cooldown_s=5, clock=clock)
    breaker.failure("m")
    breaker.failure("m")
    clock.now = 5
    assert breaker.allow("m")
    breaker.failure("m")
    assert breaker.state("m") == "open"
    clock.now = 9
    assert not breaker.allow("m")
    clock.now = 10
    assert breaker.allow("m")


def test_success_resets_the_count_and_models_are_independent():
    breaker = Breaker(failures=2, cooldown_s=5, clock=Clock())
    breaker.failure("a")
    breaker.success("a")
    breaker.failure("a")
    assert breaker.state("a") == "closed"
    breaker.failure("b")
    breaker.failure("b")
    assert breaker.state("b") == "open" and breaker.state("a") == "closed"


def test_an_abandoned_probe_frees_the_probe_slot():
    clock = Clock()
    breaker = Breaker(failures=1, cooldown_s=1, clock=clock)
    breaker.failure("m")
    clock.now = 1
    assert breaker.allow("m") and not breaker.allow("m")
    breaker.release("m")
    assert breaker.allow("m")
