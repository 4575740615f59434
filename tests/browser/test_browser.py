"""A real headless Chromium (Debian's package, driven by Playwright) takes a
rater through the study. Screenshots of every page go to
test-artifacts/browser/."""

import os
import shutil
from pathlib import Path

import pytest

from annotation.models import Judgment
from annotation.studies import study_create

from .conftest import REQUIRE_SERVICES, import_folder

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DEMO = ROOT / "fixtures" / "demo"
CHROMIUM = os.environ.get("PIPAL_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# Flags for a closed network and a root user (see the machine notes): no
# sandbox, no background requests.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser(monkeypatch_module):
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message + "; PIPAL_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make here are still plain synchronous code.
    monkeypatch_module.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture
def web_study():
    study = study_create(
        slug="browser", name="Browser study", trials_per_rater=10, training_trials=2, gold_every=0
    )
    import_folder(study, DEMO)
    return study


def wait_for_trial(page):
    page.wait_for_selector("#choose-left:not([disabled])", timeout=15_000)


def wait_for_status(page, prefix):
    try:
        page.wait_for_function(f"document.getElementById('status').textContent.startsWith('{prefix}')", timeout=10_000)
    except Exception as error:
        raise AssertionError(f"status is {page.inner_text('#status')!r}, expected {prefix!r}…") from error


def test_a_rater_joins_trains_and_rates_ten_pairs(browser, live_server, web_study):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/study/browser/?rater=chromium-1")
    page.screenshot(path=ARTIFACTS / "1-welcome.png", full_page=True)
    assert page.get_by_text("Which of the two images is more similar to the reference?").first.is_visible()
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()

    # Training: two pairs with feedback, answered by keyboard; the feedback stays until Enter.
    for number in range(2):
        wait_for_trial(page)
        assert page.locator("#phase-banner").is_visible()
        if number == 0:
            page.screenshot(path=ARTIFACTS / "2-training.png", full_page=True)
        page.wait_for_timeout(400)  # the study refuses votes within 300 ms of the last
        page.keyboard.press("ArrowLeft")
        page.wait_for_selector("#feedback:not([hidden])")
        if number == 0:
            page.screenshot(path=ARTIFACTS / "3-feedback.png", full_page=True)
        page.keyboard.press("Enter")

    # Ten real comparisons, alternating keyboard and mouse.
    for number in range(10):
        wait_for_trial(page)
        assert not page.locator("#phase-banner").is_visible()
        for slot in ("reference-slot", "left-slot", "right-slot"):
            # Native resolution: each 288-pixel image takes 288 device pixels (tests/test_browser_crowd.py
            # compares the pixels themselves at five device pixel ratios).
            shown = page.evaluate(
                "(id) => document.getElementById(id).getBoundingClientRect().width * devicePixelRatio", slot
            )
            assert shown == 288
        if number == 0:
            page.screenshot(path=ARTIFACTS / "4-comparison.png", full_page=True)
            # The magnifier shows the pointer's spot on all three images.
            page.keyboard.press("z")
            box = page.locator("#reference-slot").bounding_box()
            page.mouse.move(box["x"] + 100, box["y"] + 140)
            assert page.locator(".loupe:not([hidden])").count() == 3
            page.screenshot(path=ARTIFACTS / "4b-magnifier.png", full_page=True)
            page.keyboard.press("z")
            assert page.locator(".loupe:not([hidden])").count() == 0
        page.wait_for_timeout(400)  # look at the pair: the study refuses votes within 300 ms of the last
        if number % 2:
            page.keyboard.press("ArrowRight")
        else:
            page.get_by_role("button", name="Choose the left image").click()
        if number < 9:
            wait_for_status(page, f"{number + 1} of 10")

    page.wait_for_url(f"{live_server.url}/study/browser/finish/", timeout=15_000)
    page.screenshot(path=ARTIFACTS / "5-finish.png", full_page=True)
    code = page.locator("#completion-code").inner_text()
    assert errors == []

    judgments = Judgment.objects.filter(rater__external_id="chromium-1").order_by("id")
    assert judgments.count() == 10 == Judgment.objects.count()
    assert all(j.response_ms is not None and 0 < j.response_ms < 60_000 for j in judgments)
    assert judgments.first().rater.completion_code == code
    choices = ["left" if j.winner_id == j.image_a_id else "right" for j in judgments]
    assert choices == ["left", "right"] * 5
