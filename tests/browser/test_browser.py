"""A real headless Chromium (Debian's package, driven by Playwright) takes a
rater through the study. Screenshots of every page go to
test-artifacts/browser/."""


import pytest

from annotation.models import Judgment
from annotation.studies import study_create
from tests.factories import DEMO, SCREENSHOTS, import_folder

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


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
    page.screenshot(path=SCREENSHOTS / "1-welcome.png", full_page=True)
    assert page.get_by_text("Which of the two images is more similar to the reference?").first.is_visible()
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()

    # Training: two pairs with feedback, answered by keyboard; the feedback stays until Enter.
    for number in range(2):
        wait_for_trial(page)
        assert page.locator("#phase-banner").is_visible()
        if number == 0:
            page.screenshot(path=SCREENSHOTS / "2-training.png", full_page=True)
        page.wait_for_timeout(400)  # the study refuses votes within 300 ms of the last
        page.keyboard.press("ArrowLeft")
        page.wait_for_selector("#feedback:not([hidden])")
        if number == 0:
            page.screenshot(path=SCREENSHOTS / "3-feedback.png", full_page=True)
        page.keyboard.press("Enter")

    # Ten real comparisons, alternating keyboard and mouse.
    for number in range(10):
        wait_for_trial(page)
        assert not page.locator("#phase-banner").is_visible()
        for slot in ("reference-slot", "left-slot", "right-slot"):
            # Native resolution: each 288-pixel image takes 288 device pixels (tests/browser/test_browser_crowd.py
            # compares the pixels themselves at five device pixel ratios).
            shown = page.evaluate(
                "(id) => document.getElementById(id).getBoundingClientRect().width * devicePixelRatio", slot
            )
            assert shown == 288
        if number == 0:
            page.screenshot(path=SCREENSHOTS / "4-comparison.png", full_page=True)
            # The magnifier shows the pointer's spot on all three images.
            page.keyboard.press("z")
            box = page.locator("#reference-slot").bounding_box()
            page.mouse.move(box["x"] + 100, box["y"] + 140)
            assert page.locator(".loupe:not([hidden])").count() == 3
            page.screenshot(path=SCREENSHOTS / "4b-magnifier.png", full_page=True)
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
    page.screenshot(path=SCREENSHOTS / "5-finish.png", full_page=True)
    code = page.locator("#completion-code").inner_text()
    assert errors == []

    judgments = Judgment.objects.filter(rater__external_id="chromium-1").order_by("id")
    assert judgments.count() == 10 == Judgment.objects.count()
    assert all(j.response_ms is not None and 0 < j.response_ms < 60_000 for j in judgments)
    assert judgments.first().rater.completion_code == code
    choices = ["left" if j.winner_id == j.image_a_id else "right" for j in judgments]
    assert choices == ["left", "right"] * 5
