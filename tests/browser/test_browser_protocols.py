"""Every protocol's rating page in a real headless Chromium (issue 19): a rater joins, does the
practice trials and all rated trials with mouse and keyboard, and the database holds what they
answered. Screenshots go to test-artifacts/browser/, and the README's to docs/images/."""

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from annotation.models import Judgment, Ranking, Rating, StimulusTrial
from annotation.rating import scales
from annotation.studies import study_create
from tests.factories import ROOT, SCREENSHOTS, import_folder, make_pipal_folder

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

README_IMAGES = ROOT / "docs" / "images"
IMAGE_SIDE = 96  # small random images: four fit side by side in any test window


def protocol_study(tmp_path, slug: str, protocol: str, *, trials: int, practice: int, **fields):
    """2 references x 3 versions, no hidden checks and no vote interval (the timing rules are
    tested with the pairwise page)."""
    study = study_create(
        slug=slug,
        name=f"{protocol} study",
        trials_per_rater=trials,
        training_trials=practice,
        gold_every=0,
        min_vote_interval_ms=0,
    )
    study.protocol = protocol
    for name, value in fields.items():
        setattr(study, name, value)
    study.full_clean()
    study.save()
    folder = make_pipal_folder(tmp_path / slug, types=("01", "02", "03"), levels=(1,), size=(IMAGE_SIDE, IMAGE_SIDE))
    import_folder(study, folder)
    return study


def open_page(browser, **context):
    page = browser.new_context(viewport={"width": 1280, "height": 800}, **context).new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return page, errors


def join(page, url: str, slug: str, external_id: str, question: str):
    page.goto(f"{url}/study/{slug}/?rater={external_id}")
    assert page.get_by_text(question).first.is_visible()
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{url}/study/{slug}/rate/")
    assert page.locator("#question").inner_text() == question


def wait_until_ready(page, selector: str):
    page.wait_for_selector(f"{selector}:not([disabled])", timeout=20_000)


def wait_for_status(page, prefix: str):
    try:
        page.wait_for_function(f"document.getElementById('status').textContent.startsWith('{prefix}')", timeout=15_000)
    except Exception as error:
        raise AssertionError(f"status is {page.inner_text('#status')!r}, expected {prefix!r}…") from error


def after_vote(page, number: int, quota: int, slug: str, url: str):
    """Wait for the vote to land: the next trial's progress, or the finish page after the last."""
    if number < quota:
        wait_for_status(page, f"{number} of {quota}")
    else:
        page.wait_for_url(f"{url}/study/{slug}/finish/", timeout=20_000)


def practise(page, answer, screenshot: str | None = None) -> str:
    """Answer a practice trial; its feedback (returned) stays until the rater continues with Enter."""
    assert page.locator("#phase-banner").is_visible()
    answer()
    page.wait_for_selector("#feedback:not([hidden])")
    message = page.locator("#feedback-text").inner_text()
    assert message
    if screenshot:
        page.screenshot(path=SCREENSHOTS / screenshot, full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_selector("#feedback", state="hidden")
    return message


def keep_screenshot(page, name: str):
    """A screenshot for the test artifacts, copied to docs/images/ for the README."""
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    README_IMAGES.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, README_IMAGES / path.name)


def assert_native(page, parts):
    """Each image takes one device pixel per image pixel (its slot; the pixels are compared for the zoom)."""
    for part in parts:
        shown = page.evaluate(
            "(id) => document.getElementById(id).getBoundingClientRect().width * devicePixelRatio", f"{part}-slot"
        )
        assert shown == pytest.approx(IMAGE_SIDE, abs=0.02), part  # layout units are 1/64 CSS px


def screen_pixels(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.screenshot(scale="device"))).convert("RGB"))


def served_pixels(page, url: str, path: str) -> np.ndarray:
    data = page.request.get(path if path.startswith("http") else url + path).body()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def assert_drawn(page, url: str, parts):
    """The screen shows each image's own pixels where its slot is now (drawn, and drawn again
    whenever the page moved the slot)."""
    shot = screen_pixels(page)
    for part in parts:
        x, y = page.evaluate(
            """(id) => {
                const box = document.getElementById(id).getBoundingClientRect();
                return [Math.round(box.left * devicePixelRatio), Math.round(box.top * devicePixelRatio)];
            }""",
            f"{part}-slot",
        )
        expected = served_pixels(page, url, page.locator(f"#{part}-slot").get_attribute("data-src"))
        shown = shot[y : y + expected.shape[0], x : x + expected.shape[1]]
        assert shown.shape == expected.shape and (shown == expected).all(axis=2).mean() == 1.0, part


def assert_timed(entries):
    for entry in entries:
        assert entry.response_ms is not None and 0 < entry.response_ms < 60_000
        assert entry.visible_ms is not None and entry.visible_ms > 0
        assert entry.native is True and entry.viewing_id is not None


def test_pairwise_no_reference_with_a_zoomed_patch(browser, live_server, tmp_path):
    protocol_study(tmp_path, "natural", "pairwise-nr", trials=3, practice=1, zoom_patch=24)
    page, errors = open_page(browser, device_scale_factor=1.25)
    join(page, live_server.url, "natural", "nr-1", "Which image is more natural and realistic?")
    wait_until_ready(page, "#choose-left")
    assert page.locator("#reference-slot").count() == 0
    practise(page, lambda: page.keyboard.press("ArrowLeft"), "protocol-pairwise-nr-practice.png")

    for number in range(1, 4):
        wait_until_ready(page, "#choose-left")
        assert not page.locator("#phase-banner").is_visible()
        assert_native(page, ("left", "right"))
        if number == 1:
            page.wait_for_timeout(300)
            # The same patch of both images, enlarged by a whole factor: each image pixel a square of
            # device pixels, compared with the files' own pixels.
            zoom = page.request.get(f"{live_server.url}/api/studies/natural/pairs/next/").json()["zoom"]
            assert zoom["size"] == 24
            shot = screen_pixels(page)
            for side in ("left", "right"):
                box = page.locator(f"#{side}-zoom")
                assert box.is_visible()
                factor = int(box.get_attribute("data-factor"))
                assert factor == IMAGE_SIDE // 24
                source = served_pixels(page, live_server.url, page.locator(f"#{side}-slot").get_attribute("data-src"))
                patch = source[zoom["y"] : zoom["y"] + 24, zoom["x"] : zoom["x"] + 24]
                expected = np.kron(patch, np.ones((factor, factor, 1), dtype=np.uint8))
                x, y = int(box.get_attribute("data-device-x")), int(box.get_attribute("data-device-y"))
                shown = shot[y : y + expected.shape[0], x : x + expected.shape[1]]
                assert (shown == expected).all(axis=2).mean() == 1.0, side
            assert_drawn(page, live_server.url, ("left", "right"))
            keep_screenshot(page, "protocol-pairwise-nr")
        if number % 2:
            page.get_by_role("button", name="Choose the left image").click()
        else:
            page.keyboard.press("ArrowRight")
        after_vote(page, number, 3, "natural", live_server.url)

    judgments = Judgment.objects.filter(rater__external_id="nr-1").order_by("id")
    assert ["left" if j.winner_id == j.image_a_id else "right" for j in judgments] == ["left", "right", "left"]
    assert all(0 < j.response_ms < 60_000 and j.visible_ms > 0 and j.native for j in judgments)
    assert errors == []


def rate_on_buttons(page, live_server, slug: str, external_id: str, answers, parts, screenshot: str):
    """Two practice trials, then one rated trial per answer: ("click", label) or ("key", key)."""
    practise(page, lambda: page.keyboard.press("5"), f"{screenshot}-practice.png")
    wait_until_ready(page, ".category")
    practise(page, lambda: page.locator(".category").first.click())
    for number, (how, what) in enumerate(answers, start=1):
        wait_until_ready(page, ".category")
        assert not page.locator("#phase-banner").is_visible()
        assert_native(page, parts)
        if number == 1:
            page.wait_for_timeout(300)
            assert_drawn(page, live_server.url, parts)
            keep_screenshot(page, screenshot)
        if how == "click":
            page.get_by_role("button", name=what).click()
        else:
            page.keyboard.press(what)
        after_vote(page, number, len(answers), slug, live_server.url)


def test_acr_on_category_buttons_with_mouse_and_keys(browser, live_server, tmp_path):
    protocol_study(tmp_path, "acr", "acr", trials=3, practice=2)
    scale = scales.built_in("acr-5")
    page, errors = open_page(browser)
    join(page, live_server.url, "acr", "acr-1", scale.question)
    wait_until_ready(page, ".category")
    assert [b.inner_text() for b in page.locator(".category").all()] == [
        f"{category.label} {category.key}" for category in scale.categories
    ]
    answers = [("click", "Good"), ("key", "2"), ("click", "Excellent")]
    rate_on_buttons(page, live_server, "acr", "acr-1", answers, ["item-1"], "protocol-acr")
    ratings = Rating.objects.filter(rater__external_id="acr-1").order_by("id")
    assert [r.score for r in ratings] == [4, 2, 5]
    assert [r.image_id for r in ratings] == [r.trial.images[0] for r in ratings]
    assert_timed(ratings)
    practice = StimulusTrial.objects.filter(kind="training", rater__external_id="acr-1").order_by("id")
    assert [t.answer for t in practice] == [5, 1]
    assert errors == []


def test_acr_on_a_continuous_slider_with_mouse_and_keys(browser, live_server, tmp_path):
    scale = scales.built_in("acr-5", continuous=True)
    protocol_study(tmp_path, "slider", "acr", trials=3, practice=1, scale=scale.to_json())
    page, errors = open_page(browser)
    join(page, live_server.url, "slider", "slider-1", scale.question)
    wait_until_ready(page, "#scale-slider")
    assert page.locator("#scale-low").inner_text() == "Bad" and page.locator("#scale-high").inner_text() == "Excellent"
    # An untouched slider is no answer: Submit waits for a move, Enter does nothing.
    assert page.locator("#scale-submit").is_disabled()
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert page.locator("#feedback").is_hidden()

    def practice_answer():
        for _ in range(25):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")

    practise(page, practice_answer, "protocol-acr-continuous-practice.png")
    scores = []
    for number in range(1, 4):
        wait_until_ready(page, "#scale-slider")
        assert page.locator("#scale-slider").input_value() == "3"  # back at the middle for each image
        assert page.locator("#scale-submit").is_disabled()
        assert_native(page, ["item-1"])
        if number == 1:  # the mouse: a click on the slider's track, then Submit
            box = page.locator("#scale-slider").bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)
            scores.append(float(page.locator("#scale-slider").input_value()))
            assert_drawn(page, live_server.url, ["item-1"])
            keep_screenshot(page, "protocol-acr-continuous")
            page.get_by_role("button", name="Submit").click()
        elif number == 2:  # the keyboard: ten steps of a hundredth of the range down, Enter
            for _ in range(10):
                page.keyboard.press("ArrowLeft")
            scores.append(2.6)
            page.keyboard.press("Enter")
        else:
            for _ in range(25):
                page.keyboard.press("ArrowUp")
            scores.append(4.0)
            page.keyboard.press("Enter")
        after_vote(page, number, 3, "slider", live_server.url)

    ratings = Rating.objects.filter(rater__external_id="slider-1").order_by("id")
    assert 3.5 < scores[0] < 5
    assert [r.score for r in ratings] == pytest.approx(scores)
    assert_timed(ratings)
    assert StimulusTrial.objects.get(kind="training", rater__external_id="slider-1").answer == pytest.approx(4.0)
    assert errors == []


def test_dcr_beside_its_reference_with_mouse_and_keys(browser, live_server, tmp_path):
    protocol_study(tmp_path, "dcr", "dcr", trials=3, practice=2)
    scale = scales.built_in("dcr-5")
    page, errors = open_page(browser)
    join(page, live_server.url, "dcr", "dcr-1", scale.question)
    wait_until_ready(page, ".category")
    reference, image = page.locator("#reference-slot").bounding_box(), page.locator("#item-1-slot").bounding_box()
    assert reference["x"] + reference["width"] <= image["x"] and reference["y"] == image["y"]
    answers = [("key", "3"), ("click", "Degradation is imperceptible"), ("key", "1")]
    rate_on_buttons(page, live_server, "dcr", "dcr-1", answers, ["reference", "item-1"], "protocol-dcr")
    ratings = Rating.objects.filter(rater__external_id="dcr-1").order_by("id")
    assert [r.score for r in ratings] == [3, 5, 1]
    assert [r.image_id for r in ratings] == [r.trial.images[0] for r in ratings]
    assert_timed(ratings)
    assert errors == []


def badges(page) -> list[str]:
    return [page.locator(f"#rank-item-{n} .rank-badge").inner_text() for n in (1, 2, 3)]


def listed(page) -> list[str]:
    return page.locator("#ranking-list li").all_inner_texts()


def test_rank_k_with_clicks_keys_and_a_drag(browser, live_server, tmp_path):
    protocol_study(tmp_path, "rank", "rank-k", trials=2, practice=1, rank_k=3)
    page, errors = open_page(browser)
    join(page, live_server.url, "rank", "rank-1", "Rank these images from best to worst visual quality")
    wait_until_ready(page, "#rank-item-1")

    # Practice: a ladder of ever stronger degradations, ranked as it should be by keys.
    practice = StimulusTrial.objects.get(kind="training", rater__external_id="rank-1")

    def rank_the_ladder():
        for index in practice.expected["order"]:
            page.keyboard.press(str(index + 1))
        page.keyboard.press("Enter")

    assert practise(page, rank_the_ladder, "protocol-rank-k-practice.png").startswith("Correct")
    assert StimulusTrial.objects.get(pk=practice.pk).answer == practice.expected["order"]

    # First set, with the mouse: click 3, 1, 2; clicking 1 again un-ranks it and those after it.
    wait_until_ready(page, "#rank-item-1")
    assert_native(page, ["item-1", "item-2", "item-3"])
    assert page.locator("#rank-submit").is_disabled()
    for number in (3, 1, 2):
        page.locator(f"#rank-item-{number}").click()
    assert badges(page) == ["2", "3", "1"]
    page.locator("#rank-item-1").click()
    assert badges(page) == ["", "", "1"] and listed(page) == ["1. Image 3"]
    page.locator("#rank-item-2").click()
    page.locator("#rank-item-1").click()
    assert listed(page) == ["1. Image 3", "2. Image 2", "3. Image 1"]
    page.wait_for_timeout(300)
    assert_drawn(page, live_server.url, ["item-1", "item-2", "item-3"])  # the badges moved nothing out of place
    keep_screenshot(page, "protocol-rank-k")
    # A narrow window: the images wrap to rows, still at native size and drawn where they are.
    page.set_viewport_size({"width": 400, "height": 800})
    page.wait_for_function("document.getElementById('stage').dataset.layout === 'stacked'")
    rows = {round(page.locator(f"#item-{n}-slot").bounding_box()["y"]) for n in (1, 2, 3)}
    assert len(rows) > 1 and page.locator("#too-small").is_hidden()
    assert_native(page, ["item-1", "item-2", "item-3"])
    assert_drawn(page, live_server.url, ["item-1", "item-2", "item-3"])
    page.screenshot(path=SCREENSHOTS / "protocol-rank-k-narrow.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_function("document.getElementById('stage').dataset.layout === 'side_by_side'")
    # A drag: Image 3's entry dropped on the last one goes last.
    page.locator("#ranking-list li").nth(0).drag_to(page.locator("#ranking-list li").nth(2))
    assert listed(page) == ["1. Image 2", "2. Image 1", "3. Image 3"]
    assert badges(page) == ["2", "1", "3"]
    page.wait_for_timeout(300)
    assert_drawn(page, live_server.url, ["item-1", "item-2", "item-3"])
    page.get_by_role("button", name="Submit").click()
    after_vote(page, 1, 2, "rank", live_server.url)

    # Second set, by keys: 2, 3, 1; Backspace twice; then 1, 3; Enter.
    wait_until_ready(page, "#rank-item-1")
    for key in ("2", "3", "1", "Backspace", "Backspace", "1"):
        page.keyboard.press(key)
    assert listed(page) == ["1. Image 2", "2. Image 1"]
    page.keyboard.press("Enter")  # not all ranked: nothing is sent
    page.wait_for_timeout(300)
    assert Ranking.objects.count() == 1
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    after_vote(page, 2, 2, "rank", live_server.url)

    rankings = list(Ranking.objects.filter(rater__external_id="rank-1").order_by("id"))
    for ranking in rankings:  # both orders were Image 2, Image 1, Image 3 (display order)
        shown = ranking.trial.images
        assert ranking.order == [shown[1], shown[0], shown[2]]
    assert len(rankings) == 2
    assert_timed(rankings)
    assert errors == []
