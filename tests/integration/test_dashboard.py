"""The live dashboard in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium): the page loads without a console error, and its charts and tables show the requests
this test sent to a real gateway, updating while the page stays open. With an admin key the
figures need the key, which the page asks for once.

`DASHBOARD_SCREENSHOT=docs/dashboard.png pytest tests/integration/test_dashboard.py -k screenshot`
refreshes the screenshot in the docs from a minute of mixed traffic."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.fixtures.servers import Process, run_gateway

T = TypeVar("T")

CONFIG = """
[server]
default_model = "fake-echo"
preload_default = false

[routing]
slo_min_samples = 5
breaker_failures = 3

[models.fake-fixed]
backend = "fake"
upstream_model = "fixed"

[models.fake-slow]
backend = "fake"
upstream_model = "slow-15"

[models.fake-tokens]
backend = "fake"
upstream_model = "tokens-48"

[models.fake-broken]
backend = "fake"
upstream_model = "error-502"

[tasks.chat]
route = ["fake-echo"]

[tasks.refactor]
route = ["fake-slow"]
cacheable = true
slo_p95_ms = 4000

[tasks.tests]
route = ["fake-tokens"]

[tasks.review]
route = ["fake-slow"]
slo_p95_ms = 50
"""

ADMIN_KEY = "dashboard-admin-key"
WAIT_S = 20


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(browser) and os.path.exists(driver)):
        pytest.fail("chromium and chromedriver are not installed: run `make test`, which installs them (scripts/system_deps.sh)")
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    # An empty variable is no key: the dashboard is open.
    with run_gateway(CONFIG, tmp_path_factory.mktemp("dashboard"), env={"SEEKGATE_ADMIN_KEY": ""}) as server:
        yield server


@pytest.fixture(scope="module")
def keyed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with run_gateway(CONFIG, tmp_path_factory.mktemp("dashboard-keyed"), env={"SEEKGATE_ADMIN_KEY": ADMIN_KEY}) as server:
        yield server


def _client(server: Process) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=30)


def _send(
    client: openai.OpenAI, task: str, text: str = "rename foo to bar", *, model: str = "auto", stream: bool = False
) -> tuple[str, int]:
    """One chat request; returns its request id and HTTP status."""
    create = client.chat.completions.with_raw_response.create
    try:
        raw = create(
            model=model,
            messages=[{"role": "user", "content": text}],
            temperature=0,
            stream=stream,
            extra_headers={"X-Task-Type": task},
        )
    except openai.APIStatusError as exc:
        return exc.response.headers["x-request-id"], exc.status_code
    parsed = raw.parse()
    if stream:
        for _ in parsed:  # type: ignore[union-attr]
            pass
    return raw.headers["x-request-id"], raw.status_code


def _wait(chrome: webdriver.Chrome, what: str, check: Callable[[webdriver.Chrome], T]) -> T:
    try:
        return WebDriverWait(chrome, WAIT_S, poll_frequency=0.2).until(check)
    except TimeoutException as exc:
        raise AssertionError(f"the dashboard never showed {what}; last data: {_page_state(chrome)}") from exc


def _page_state(chrome: webdriver.Chrome) -> dict[str, Any]:
    """What the page shows, read in one go (the tables are redrawn on every poll)."""
    return chrome.execute_script(
        """
        const rows = (id) => [...document.querySelectorAll('#' + id + ' tbody tr')];
        const texts = (tr) => [...tr.cells].map((td) => td.textContent);
        const rps = document.getElementById('rps-chart');
        return {
          status: document.getElementById('status').textContent,
          recent: rows('recent').filter((tr) => tr.dataset.id).map((tr) => ({
            id: tr.dataset.id, status: Number(tr.dataset.status), task: tr.cells[2].textContent, model: tr.cells[3].textContent})),
          rpsPoints: Number(rps.dataset.points || 0),
          rpsLines: [...rps.querySelectorAll('polyline.series')].map((p) => p.getAttribute('points').split(' ').length),
          latencyTask: Object.fromEntries(rows('latency-task').filter((tr) => tr.dataset.name).map((tr) => [tr.dataset.name, texts(tr)])),
          latencyModel: Object.fromEntries(rows('latency-model').filter((tr) => tr.dataset.name).map((tr) => [tr.dataset.name, texts(tr)])),
          backends: Object.fromEntries(rows('backends').filter((tr) => tr.dataset.model).map((tr) => [tr.dataset.model, texts(tr)])),
          slo: Object.fromEntries(rows('slo').filter((tr) => tr.dataset.task).map((tr) => [tr.dataset.task, texts(tr)])),
          guards: document.getElementById('guards').textContent,
          cache: document.querySelector('[data-testid=cache-hit-rate]').textContent,
          statuses: document.getElementById('statuses').textContent,
        };
        """
    )


def _severe(chrome: webdriver.Chrome) -> list[dict[str, Any]]:
    return [entry for entry in chrome.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_dashboard_shows_the_requests_sent_and_keeps_updating(gateway: Process, browser: webdriver.Chrome):
    client = _client(gateway)
    sent = [
        _send(client, "chat"),
        _send(client, "chat", "mail ann@example.com about the release"),  # the guards redact the address
        _send(client, "refactor", "extract a function"),
        _send(client, "refactor", "extract a function"),  # the same deterministic request: a cache hit
        _send(client, "tests", stream=True),
        _send(client, "tests"),
        _send(client, "chat", model="fake-broken"),  # 502
    ]
    assert [status for _, status in sent] == [200] * 6 + [502]

    browser.get(gateway.base_url + "/dashboard")
    assert browser.title == "seekgate dashboard"

    def shows_all_sent(chrome: webdriver.Chrome) -> dict[str, Any] | None:
        state = _page_state(chrome)
        return state if {r["id"] for r in state["recent"]} == {rid for rid, _ in sent} else None

    state = _wait(browser, "the requests sent in its table", shows_all_sent)
    rows = {r["id"]: r for r in state["recent"]}
    assert [rows[rid]["task"] for rid, _ in sent] == ["chat", "chat", "refactor", "refactor", "tests", "tests", "chat"]
    assert [rows[rid]["model"] for rid, _ in sent[:6]] == ["fake-echo"] * 2 + ["fake-slow"] * 2 + ["fake-tokens"] * 2
    assert [rows[rid]["status"] for rid, _ in sent] == [200] * 6 + [502]
    assert [r["id"] for r in state["recent"]] == [rid for rid, _ in reversed(sent)]  # newest first

    state = _wait(browser, "points on the request-rate chart", lambda c: (s := _page_state(c))["rpsPoints"] > 0 and s)
    assert state["rpsLines"] == [60, 60]  # requests and errors, one point per bin
    assert {"chat", "refactor", "tests"} <= set(state["latencyTask"])
    assert {"fake-echo", "fake-slow", "fake-tokens"} <= set(state["latencyModel"])
    assert state["latencyTask"]["refactor"][1] == "2"  # requests in the window
    assert state["latencyTask"]["chat"][2] == "1"  # the 502 counts as an error of its task
    assert state["backends"]["fake-broken"][3] == "closed" and "ready" in state["backends"]["fake-echo"][2]
    assert state["slo"]["refactor"][4] == "ok"
    assert "pii:redact" in state["guards"] and "502" in state["statuses"]
    assert state["cache"] == "50.0%"  # one hit, one miss

    # More traffic while the page stays open: a new task, and a circuit that opens.
    more = [_send(client, "review"), _send(client, "review", stream=True)]
    more += [_send(client, "chat", model="fake-broken") for _ in range(3)]

    def shows_more(chrome: webdriver.Chrome) -> dict[str, Any] | None:
        state = _page_state(chrome)
        ids = [r["id"] for r in state["recent"]]
        return state if ids[: len(more)] == [rid for rid, _ in reversed(more)] and "review" in state["latencyTask"] else None

    state = _wait(browser, "the later requests", shows_more)
    assert len(state["recent"]) == len(sent) + len(more)
    assert state["latencyTask"]["review"][1] == "2"
    state = _wait(browser, "the open circuit", lambda c: (s := _page_state(c))["backends"]["fake-broken"][3] == "open" and s)
    assert state["status"].startswith("live")
    assert _severe(browser) == []


def test_the_chart_range_can_be_changed(gateway: Process, browser: webdriver.Chrome):
    browser.get(gateway.base_url + "/dashboard")
    _wait(browser, "data", lambda c: _page_state(c)["status"].startswith("live"))
    browser.find_element(By.CSS_SELECTOR, 'button[data-range="60"]').click()
    assert browser.find_element(By.CSS_SELECTOR, 'button[data-range="60"]').get_attribute("aria-pressed") == "true"
    assert browser.find_element(By.CSS_SELECTOR, "#rps-chart text.x-start").text == "−60 s"
    assert _severe(browser) == []


def test_with_an_admin_key_the_data_needs_the_key(keyed_gateway: Process, browser: webdriver.Chrome):
    url = keyed_gateway.base_url + "/dashboard/data"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
    answer = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert answer.status_code == 200 and "recent" in answer.json()
    page = httpx.get(keyed_gateway.base_url + "/dashboard")
    assert page.status_code == 200 and 'data-auth="key"' in page.text and ADMIN_KEY not in page.text

    rid, status = _send(_client(keyed_gateway), "chat")
    assert status == 200
    browser.get(keyed_gateway.base_url + "/dashboard")
    form = browser.find_element(By.ID, "login")
    _wait(browser, "the key form", lambda c: form.is_displayed())
    browser.find_element(By.ID, "login-key").send_keys(ADMIN_KEY)
    form.find_element(By.TAG_NAME, "button").click()
    state = _wait(browser, "data once given the key", lambda c: (s := _page_state(c))["recent"] and s)
    assert [r["id"] for r in state["recent"]] == [rid]
    assert browser.execute_script("return sessionStorage.getItem('seekgate-admin-key')") == ADMIN_KEY
    browser.refresh()  # kept for the tab: no second prompt
    _wait(browser, "data after a reload", lambda c: _page_state(c)["recent"])
    assert not browser.find_element(By.ID, "login").is_displayed()
    assert _severe(browser) == []


def test_a_screenshot_of_a_busy_dashboard(tmp_path_factory: pytest.TempPathFactory, browser: webdriver.Chrome):
    """A mix of traffic like a team's: five tasks, streams, cache hits, redactions, failures, a
    circuit that opens. With DASHBOARD_SCREENSHOT set, a minute of it, saved there."""
    target = os.environ.get("DASHBOARD_SCREENSHOT")
    seconds = 60.0 if target else 4.0
    with run_gateway(CONFIG, tmp_path_factory.mktemp("dashboard-shot"), env={"SEEKGATE_ADMIN_KEY": ""}) as server:
        browser.get(server.base_url + "/dashboard")
        browser.find_element(By.CSS_SELECTOR, 'button[data-range="60"]').click()
        sent = _mixed_traffic(_client(server), seconds)
        _wait(browser, "the mixed traffic", lambda c: len(_page_state(c)["recent"]) == min(sent, 200))
        done = time.time()
        updated = "return Number(document.documentElement.dataset.updated)"
        _wait(browser, "a poll after the last second", lambda c: c.execute_script(updated) > done + 1)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1440, height)
        path = Path(target) if target else tmp_path_factory.mktemp("shot") / "dashboard.png"
        assert browser.save_screenshot(str(path))
    assert path.stat().st_size > 50_000  # a drawn page, not a blank one
    assert _severe(browser) == []


def _mixed_traffic(client: openai.OpenAI, seconds: float) -> int:
    rng = random.Random(7)
    prompts = [
        "rename foo to bar", "why does parse() fail on empty input", "extract the retry loop",
        "mail ann@example.com the summary", "the token is ghp_" + "a1B2c3D4" * 4 + "e5F6",
    ]  # fmt: skip
    tasks = ["chat", "chat", "refactor", "refactor", "tests", "review"]
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        task = rng.choice(tasks)
        broken = rng.random() < 0.04
        # Most prompts are new; some repeat, and those of cacheable tasks come from the cache.
        text = rng.choice(prompts) + ("" if rng.random() < 0.35 else f" (#{rng.randrange(10**6)})")
        _send(client, task, text, model="fake-broken" if broken else "auto", stream=rng.random() < 0.3)
        sent += 1
        time.sleep(rng.random() * 0.25)
    return sent
