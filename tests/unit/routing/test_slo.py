from seekgate.routing.slo import SloTracker, Window


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_window_percentiles_forget_old_samples():
    clock = Clock()
    window = Window(60, clock=clock)
    for ms in range(1, 101):
        window.add(float(ms))
    assert window.percentile(0.95) == 95 and window.percentile(0.5) == 50
    clock.now = 61
    window.add(7.0)
    assert window.count() == 1 and window.percentile(0.95) == 7


def test_a_model_breaks_its_slo_only_on_enough_samples():
    tracker = SloTracker(window_s=60, min_samples=3, clock=Clock())
    tracker.record("m", "chat", 900)
    tracker.record("m", "chat", 900)
    assert tracker.breaching("m", 500) is None  # two samples are not evidence
    tracker.record("m", "chat", 900, ttft_ms=100)
    assert tracker.breaching("m", 500) == 900 and tracker.breaching("m", 1000) is None
    snap = tracker.snapshot()
    assert snap["model"]["m"]["samples"] == 3 and snap["task"]["chat"]["ttft_p95_ms"] == 100
