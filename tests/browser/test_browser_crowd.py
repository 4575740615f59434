"""The rating page as a paid crowd meets it, in a real headless Chromium (issue 16):
pixel-exact stimuli at devicePixelRatio 1, 1.25, 1.5, 2 and 3; a vote that survives a
lost connection; reloads that do not skip pairs; no form resubmission; phones and touch;
practice feedback that teaches. Screenshots go to test-artifacts/browser/."""

import io

import numpy as np
import pytest
from PIL import Image

from annotation.models import Assignment, ControlTrial, Judgment, Rater, ViewingReport
from annotation.studies import study_create
from tests.factories import DEMO, SCREENSHOTS, import_folder

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RATIOS = (1, 1.25, 1.5, 2, 3)


def crowd_study(slug="crowd", **options):
    settings = {"trials_per_rater": 6, "training_trials": 0, "gold_every": 0, "min_vote_interval_ms": 0}
    study = study_create(slug=slug, name="Crowd study", **{**settings, **options})
    import_folder(study, DEMO)
    return study


def console_errors(page) -> list[str]:
    errors = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def join(page, url, external_id):
    page.goto(f"{url}/study/crowd/?rater={external_id}")
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{url}/study/crowd/rate/")


def wait_for_trial(page):
    page.wait_for_selector("#choose-left:not([disabled])", timeout=20_000)


def shown_pixels(page, part: str) -> np.ndarray:
    """The device pixels the screen shows where the page drew ``part`` (a device-scale screenshot)."""
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(scale="device"))).convert("RGB"))
    slot = page.locator(f"#{part}-slot")
    x, y = int(slot.get_attribute("data-device-x")), int(slot.get_attribute("data-device-y"))
    return shot, x, y


def file_pixels(page, live_server, part: str) -> np.ndarray:
    url = page.locator(f"#{part}-slot").get_attribute("data-src")
    data = page.request.get(url if url.startswith("http") else live_server.url + url).body()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("ratio", RATIOS)
def test_each_stimulus_is_shown_pixel_for_pixel(browser, live_server, ratio):  # noqa: F811
    crowd_study()
    context = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=ratio)
    page = context.new_page()
    errors = console_errors(page)
    join(page, live_server.url, f"dpr-{ratio}")
    wait_for_trial(page)
    page.wait_for_timeout(300)
    for part in ("reference", "left", "right"):
        shot, x, y = shown_pixels(page, part)
        expected = file_pixels(page, live_server, part)
        height, width = expected.shape[:2]
        shown = shot[y : y + height, x : x + width]
        assert shown.shape == expected.shape, (part, shown.shape, expected.shape)
        equal = (shown == expected).all(axis=2).mean()
        assert equal == 1.0, f"{part} at devicePixelRatio {ratio}: {equal:.4f} of the pixels equal the file's"
    page.screenshot(path=SCREENSHOTS / f"crowd-native-{ratio}.png")
    # The rater's screen is recorded: the ratio and that every stimulus was native.
    page.wait_for_timeout(600)
    report = ViewingReport.objects.filter(rater__external_id=f"dpr-{ratio}").last()
    assert report.device_pixel_ratio == pytest.approx(ratio) and report.native and report.layout == "side_by_side"
    page.get_by_role("button", name="Choose the left image").click()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('1 of')")
    judgment = Judgment.objects.get(rater__external_id=f"dpr-{ratio}")
    assert judgment.native is True and judgment.viewing_id == report.pk and judgment.visible_ms > 0
    assert errors == []
    context.close()


def test_a_window_too_small_for_native_size_asks_for_a_larger_one(browser, live_server):  # noqa: F811
    crowd_study()
    context = browser.new_context(viewport={"width": 700, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    errors = console_errors(page)
    join(page, live_server.url, "small-window")
    page.wait_for_selector("#too-small:not([hidden])", timeout=20_000)
    assert page.locator("#choose-left").is_disabled()
    page.screenshot(path=SCREENSHOTS / "crowd-too-small.png", full_page=True)
    page.set_viewport_size({"width": 1300, "height": 800})  # the rater enlarges the window
    wait_for_trial(page)
    assert page.locator("#too-small").is_hidden()
    assert errors == []
    context.close()


def test_a_lost_connection_delays_the_vote_until_it_returns(browser, live_server):  # noqa: F811
    crowd_study()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors = console_errors(page)
    join(page, live_server.url, "flaky")
    wait_for_trial(page)
    context.set_offline(True)
    page.get_by_role("button", name="Choose the right image").click()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Connection lost')")
    page.screenshot(path=SCREENSHOTS / "crowd-offline.png")
    assert Judgment.objects.count() == 0
    page.wait_for_timeout(1500)
    context.set_offline(False)
    page.wait_for_function("document.getElementById('status').textContent.startsWith('1 of')", timeout=30_000)
    wait_for_trial(page)
    assert Judgment.objects.count() == 1
    # The page carries on by itself: the next vote lands too.
    page.get_by_role("button", name="Choose the left image").click()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('2 of')")
    assert Judgment.objects.count() == 2
    assert [error for error in errors if "ERR_INTERNET_DISCONNECTED" not in error] == []
    context.close()


def test_a_reload_shows_the_same_pair(browser, live_server):  # noqa: F811
    crowd_study()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    join(page, live_server.url, "reloader")
    wait_for_trial(page)
    before = [page.locator(f"#{part}-slot").get_attribute("data-src") for part in ("reference", "left", "right")]
    page.reload()
    wait_for_trial(page)
    after = [page.locator(f"#{part}-slot").get_attribute("data-src") for part in ("reference", "left", "right")]
    assert after == before and Assignment.objects.count() == 1
    page.close()


def test_back_after_a_form_error_does_not_resubmit(browser, live_server):  # noqa: F811
    crowd_study()
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server.url}/")
    page.goto(f"{live_server.url}/study/crowd/")
    page.get_by_label("Your participant id").fill("no-consent")
    page.get_by_role("button", name="Start").click()  # consent not given: refused
    page.wait_for_selector("text=Please give your consent")
    page.screenshot(path=SCREENSHOTS / "crowd-form-error.png", full_page=True)
    response = page.go_back()
    assert response is None or response.request.method == "GET"
    assert dialogs == [] and not Rater.objects.exists()
    page.close()


def test_a_new_browser_with_the_same_id_continues(browser, live_server):  # noqa: F811
    crowd_study()
    first = browser.new_context(viewport={"width": 1400, "height": 900})
    page = first.new_page()
    join(page, live_server.url, "worker-9")
    wait_for_trial(page)
    page.get_by_role("button", name="Choose the left image").click()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('1 of')")
    first.close()
    second = browser.new_context(viewport={"width": 1400, "height": 900})  # cookies cleared
    page = second.new_page()
    join(page, live_server.url, "worker-9")
    wait_for_trial(page)
    page.wait_for_function("document.getElementById('status').textContent.startsWith('1 of 6')")
    assert Rater.objects.filter(external_id="worker-9").count() == 1
    second.close()


def test_a_phone_is_told_to_use_a_larger_screen_by_default(browser, live_server):  # noqa: F811
    crowd_study()
    context = browser.new_context(
        viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    join(page, live_server.url, "phone-default")
    page.wait_for_selector("#too-small:not([hidden])", timeout=20_000)
    page.screenshot(path=SCREENSHOTS / "crowd-phone-refused.png", full_page=True)
    context.close()


def test_a_phone_in_a_study_that_allows_it_stacks_magnifies_and_forgets_taps(browser, live_server):  # noqa: F811
    crowd_study(narrow_layout=True)
    context = browser.new_context(
        viewport={"width": 375, "height": 667}, device_scale_factor=1, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    errors = console_errors(page)
    join(page, live_server.url, "phone-1")
    wait_for_trial(page)
    assert page.locator("#stage").get_attribute("data-layout") == "stacked"
    # 288-pixel images in a 375-pixel window: the reference, then one image under the other.
    assert page.locator("#choose-left .side-name").inner_text() == "Upper"
    assert page.locator("#choose-right .side-name").inner_text() == "Lower"
    page.screenshot(path=SCREENSHOTS / "crowd-phone-stacked.png")
    # Press and hold: the magnifier, on all three images, and no vote.
    slot = page.locator("#left-slot")
    box = slot.bounding_box()
    point = {
        "clientX": box["x"] + 60,
        "clientY": box["y"] + 60,
        "pointerType": "touch",
        "pointerId": 7,
        "isPrimary": True,
        "bubbles": True,
    }
    slot.dispatch_event("pointerdown", point)
    page.wait_for_timeout(600)
    assert page.locator(".loupe:not([hidden])").count() == 3
    page.screenshot(path=SCREENSHOTS / "crowd-phone-magnifier.png")
    slot.dispatch_event("pointerup", point)
    page.wait_for_timeout(100)
    assert page.locator(".loupe:not([hidden])").count() == 0 and Judgment.objects.count() == 0
    # A tap votes; nothing of it stays highlighted on the next pair.
    page.locator("#choose-left").tap()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('1 of')")
    wait_for_trial(page)
    assert Judgment.objects.count() == 1
    focused = page.evaluate("document.activeElement && document.activeElement.id")
    assert focused not in ("choose-left", "choose-right")
    border = page.evaluate("getComputedStyle(document.getElementById('choose-left')).borderTopColor")
    assert border == "rgba(0, 0, 0, 0)"
    assert errors == []
    context.close()


def test_practice_marks_the_closer_image_and_waits(browser, live_server):  # noqa: F811
    crowd_study(training_trials=2)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/study/crowd/")
    assert page.get_by_text("Hidden checks").is_visible()
    assert page.get_by_text("your session ends there").is_visible()
    join(page, live_server.url, "learner")
    wait_for_trial(page)
    assert page.locator("#phase-banner").is_visible()
    practice = ControlTrial.objects.get(kind="training", status="open")
    assert practice.construction == "sharp"
    wrong = "left" if practice.correct_side == "right" else "right"
    page.get_by_role("button", name=f"Choose the {wrong} image").click()
    page.wait_for_selector("#feedback:not([hidden])")
    page.wait_for_timeout(2500)  # it stays until the rater continues
    assert page.locator("#feedback").is_visible()
    assert "crisper" in page.locator("#feedback-text").inner_text()
    assert page.locator(f"#choose-{practice.correct_side}.correct").count() == 1
    assert page.locator(f"#choose-{wrong}.wrong").count() == 1
    page.screenshot(path=SCREENSHOTS / "crowd-practice-feedback.png", full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_selector("#feedback", state="hidden")
    wait_for_trial(page)
    assert page.locator(".candidate.correct").count() == 0
    page.close()


def test_a_study_with_screen_calibration_measures_pixels_per_degree_first(browser, live_server):  # noqa: F811
    crowd_study(screen_calibration=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1.25)
    page = context.new_page()
    errors = console_errors(page)
    join(page, live_server.url, "calibrated")
    page.get_by_role("heading", name="Screen size").wait_for(timeout=20_000)
    assert page.locator("#stage").is_hidden()
    page.screenshot(path=SCREENSHOTS / "crowd-calibration-card.png")
    page.get_by_role("button", name="Done").click()
    page.get_by_role("heading", name="Viewing distance").wait_for()
    page.keyboard.press(" ")  # start the ball
    for _ in range(5):
        page.wait_for_timeout(1500)
        page.keyboard.press(" ")
    page.get_by_text("Does that seem about right?").wait_for()
    page.get_by_role("button", name="Yes").click()
    wait_for_trial(page)
    # The page posts its viewing report beside the first trial: on a loaded machine that can land
    # after the trial shows, so wait for it (up to 10 s) rather than a fixed pause.
    reports = ViewingReport.objects.filter(rater__external_id="calibrated", px_per_mm__isnull=False)
    for _ in range(50):
        if reports.exists():
            break
        page.wait_for_timeout(200)
    report = reports.last()
    assert report is not None, "no calibrated viewing report was posted"
    assert report.px_per_mm == pytest.approx(250 / 85.6, abs=0.01)
    assert 100 < report.viewing_distance_mm < 3000 and report.px_per_degree > 1
    assert errors == []
    context.close()
