"""The screen calibration (annotation/static/annotation/calibration.js) in a
real headless Chromium (Debian's package, driven by Playwright), without
Django: the script and its style sheet are injected into a blank page.

The page's clock is Playwright's fake one, paused, so the test decides when
the ball has moved and where it is when the rater "presses". Screenshots of
every step go to test-artifacts/browser/calibration-*.png."""

import math

import pytest

from tests.factories import ROOT, SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATIC = ROOT / "annotation" / "static" / "annotation"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Calibration</title></head>
<body><main id="host"></main></body></html>"""

CARD_WIDTH_MM = 85.6
BLINDSPOT_ANGLE_DEG = 13.5

# Where the ball is on the stage: its centre, from the bounding boxes, and the
# number the script keeps for it.
BALL_POSITION = """() => {
  const stage = document.querySelector('.calib-stage').getBoundingClientRect();
  const ball = document.querySelector('.calib-ball');
  const box = ball.getBoundingClientRect();
  return { seen: box.left + box.width / 2 - stage.left, kept: Number(ball.dataset.x) };
}"""
SQUARE_POSITION = """() => {
  const stage = document.querySelector('.calib-stage').getBoundingClientRect();
  const box = document.querySelector('.calib-square').getBoundingClientRect();
  return box.left + box.width / 2 - stage.left;
}"""


class Calibration:
    """A blank page with calibration.js and .css, its console watched."""

    def __init__(self, browser, **context_options):
        self.context = browser.new_context(**context_options)
        self.page = self.context.new_page()
        self.problems = []
        self.page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        self.page.on(
            "console",
            lambda message: message.type in ("error", "warning") and self.problems.append(message.text),
        )
        # Any request would be a bug: the module must be self-contained.
        self.page.on("request", lambda request: self.problems.append(f"request: {request.url}"))
        self.page.clock.install(time=0)
        self.page.set_content(PAGE)
        self.page.add_style_tag(content=(STATIC / "calibration.css").read_text())
        self.page.add_script_tag(content=(STATIC / "calibration.js").read_text())
        self.page.clock.pause_at(1000)
        self.cdp = self.context.new_cdp_session(self.page)

    def close(self):
        self.context.close()

    def start(self, options):
        self.page.evaluate(
            "(options) => { window.calibration = PipalCalibration.run(document.getElementById('host'), options); }",
            options,
        )

    def result(self):
        return self.page.evaluate("() => window.calibration")

    def compute(self, inputs, exact=False):
        return self.page.evaluate("([i, exact]) => PipalCalibration.compute(i, { round: !exact })", [inputs, exact])

    def listener_count(self):
        """Event listeners on document and window, as DevTools sees them."""
        total = 0
        for expression in ("document", "window"):
            target = self.cdp.send("Runtime.evaluate", {"expression": expression})["result"]["objectId"]
            total += len(self.cdp.send("DOMDebugger.getEventListeners", {"objectId": target})["listeners"])
        return total

    def card_width(self):
        return self.page.evaluate("() => document.querySelector('.calib-card').getBoundingClientRect().width")

    def handle_centre(self):
        handle = self.page.locator(".calib-handle")
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def tap(self, name):
        # Synthetic touches come faster than any finger: a tap within a few
        # hundred ms of the last touch is not turned into a click by
        # Chromium's gesture detection, so leave a human pause first.
        self.page.wait_for_timeout(400)
        self.page.get_by_role("button", name=name).tap()

    def shot(self, name):
        self.page.screenshot(path=SCREENSHOTS / f"calibration-{name}.png", full_page=True)


@pytest.fixture
def calibration(browser):
    pages = []

    def open_page(**context_options):
        page = Calibration(browser, **context_options)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()


def expected(card_width_px, square_x_px, ball_xs_px, device_pixel_ratio):
    """SPEC §7.3, in Python."""
    px_per_mm = card_width_px / CARD_WIDTH_MM
    mean_ball = sum(ball_xs_px) / len(ball_xs_px)
    distance = ((square_x_px - mean_ball) / px_per_mm) / math.tan(math.radians(BLINDSPOT_ANGLE_DEG))
    card_deg = 2 * math.atan(CARD_WIDTH_MM / 2 / distance) * 180 / math.pi
    px_per_degree = card_width_px / card_deg
    return {
        "card_width_px": card_width_px,
        "px_per_mm": px_per_mm,
        "device_px_per_mm": px_per_mm * device_pixel_ratio,
        "square_x_px": square_x_px,
        "viewing_distance_mm": distance,
        "px_per_degree": px_per_degree,
        "device_px_per_degree": px_per_degree * device_pixel_ratio,
        "blindspot_positions_px": list(ball_xs_px),
        "device_pixel_ratio": device_pixel_ratio,
    }


def inputs_of(result):
    return {
        "cardWidthPx": result["card_width_px"],
        "squareXPx": result["square_x_px"],
        "ballXsPx": result["blindspot_positions_px"],
        "devicePixelRatio": result["device_pixel_ratio"],
    }


def measure(calib, delays_ms, press):
    """Let the ball run for each delay, note where it is, then press."""
    seen = []
    for number, delay in enumerate(delays_ms):
        calib.page.clock.run_for(delay)
        position = calib.page.evaluate(BALL_POSITION)
        assert position["seen"] == pytest.approx(position["kept"], abs=0.01)
        seen.append(position["kept"])
        if number == 0:
            calib.shot(f"{calib.prefix}ball-moving")
        press()
    return seen


@pytest.mark.parametrize(
    ("card", "square", "balls", "ratio"),
    [
        (323, 679.21, [400.5, 410.25, 395, 402.75, 398], 1),
        (250, 525.7, [300], 2),
        (414.37, 871.35, [520.1, 530.9, 505.4], 2.625),
        (180, 378.5, [250, 260, 240, 255, 245, 252, 248], 1.25),
    ],
)
def test_compute_follows_the_formulas(calibration, card, square, balls, ratio):
    calib = calibration()
    inputs = {"cardWidthPx": card, "squareXPx": square, "ballXsPx": balls, "devicePixelRatio": ratio}
    want = expected(card, square, balls, ratio)

    exact = calib.compute(inputs, exact=True)
    assert exact.keys() == want.keys()
    for key, value in want.items():
        assert exact[key] == pytest.approx(value, rel=1e-12), key

    rounded = calib.compute(inputs)
    assert rounded.keys() == want.keys()
    digits = {"px_per_mm": 4, "device_px_per_mm": 4, "viewing_distance_mm": 1, "px_per_degree": 3}
    digits |= {"device_px_per_degree": 3, "card_width_px": 2, "square_x_px": 2, "device_pixel_ratio": 4}
    for key, places in digits.items():
        assert rounded[key] == pytest.approx(want[key], abs=0.51 * 10**-places), key
    assert rounded["blindspot_positions_px"] == pytest.approx(balls, abs=0.005)
    # Bad input is refused, not turned into NaN.
    for bad in (
        {**inputs, "ballXsPx": [square + 1]},
        {**inputs, "ballXsPx": []},
        {**inputs, "cardWidthPx": 0},
        {**inputs, "devicePixelRatio": -1},
    ):
        error = calib.page.evaluate(
            "(i) => { try { PipalCalibration.compute(i); return null; } catch (e) { return e.name; } }", bad
        )
        assert error == "RangeError"
    assert calib.problems == []


def test_keyboard_and_mouse_calibration(calibration):
    calib = calibration(viewport={"width": 1280, "height": 800}, device_scale_factor=2)
    calib.prefix = "4-"
    page = calib.page
    listeners_before = calib.listener_count()
    calib.start({"reps": 5})

    # 1. The card, 250 CSS px wide to begin with.
    page.get_by_role("heading", name="Screen size").wait_for()
    assert calib.card_width() == 250
    calib.shot("1-card")

    # Drag the corner 30 px right: the centred card grows by twice that.
    x, y = calib.handle_centre()
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 7):
        page.mouse.move(x + 5 * step, y)
    page.mouse.up()
    assert calib.card_width() == 310

    # Fine-tune by keyboard: arrows on the slider, then the − key, then the
    # + button: 310 + 5 − 2 + 1.
    slider = page.get_by_role("slider", name="Card width")
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("-")
    page.keyboard.press("-")
    page.get_by_role("button", name="Larger").click()
    assert calib.card_width() == 314
    assert slider.input_value() == "314"
    calib.shot("2-card-sized")
    page.get_by_role("button", name="Done").click()

    # 2. The blind spot: the square 180 mm from the stage's left edge.
    page.get_by_role("heading", name="Viewing distance").wait_for()
    square_x = round(314 / CARD_WIDTH_MM * 180, 2)
    assert page.evaluate(SQUARE_POSITION) == pytest.approx(square_x, abs=0.01)
    start = page.evaluate(BALL_POSITION)["kept"]
    assert start == pytest.approx(0.6 * square_x)
    calib.shot("3-blindspot")

    page.keyboard.press(" ")  # start the ball
    assert page.get_by_text("Remaining measurements: 5").is_visible()
    # The default speed crosses from the start to the left edge in 7 s.
    speed = (start - 15) / 7
    delays = [2600, 3100, 2850, 3300, 2950]
    seen = measure(calib, delays, lambda: page.keyboard.press(" "))
    for delay, position in zip(delays, seen, strict=True):
        # Frames come every 16 ms of the fake clock: the ball is where the
        # last one put it.
        assert start - speed * delay / 1000 <= position <= start - speed * (delay - 17) / 1000

    # 3. The report, then the result.
    page.get_by_text("Does that seem about right?").wait_for()
    calib.shot("5-report")
    page.get_by_role("button", name="Yes").click()
    result = calib.result()

    assert result["card_width_px"] == 314
    assert result["square_x_px"] == square_x
    assert result["blindspot_positions_px"] == pytest.approx(seen, abs=0.005)
    assert result["device_pixel_ratio"] == 2
    assert result == calib.compute(inputs_of(result))
    want = expected(314, square_x, result["blindspot_positions_px"], 2)
    assert result["viewing_distance_mm"] == pytest.approx(want["viewing_distance_mm"], abs=0.051)
    assert result["device_px_per_degree"] == pytest.approx(2 * result["px_per_degree"], abs=0.002)

    # Everything it built or listened to is gone.
    assert page.evaluate("() => document.getElementById('host').childElementCount") == 0
    assert page.locator("[class^=calib-]").count() == 0
    assert calib.listener_count() == listeners_before
    page.keyboard.press(" ")
    page.keyboard.press("+")
    assert calib.problems == []


def test_touch_calibration_with_the_now_button(calibration):
    # A phone on its side: narrow, dense, and touch only.
    calib = calibration(viewport={"width": 740, "height": 360}, device_scale_factor=3, is_mobile=True, has_touch=True)
    calib.prefix = "touch-2-"
    page = calib.page
    listeners_before = calib.listener_count()
    calib.start({"reps": 3, "ballSpeedPxPerSecond": 60})
    page.get_by_role("heading", name="Screen size").wait_for()
    calib.shot("touch-1-card")

    # Drag the corner with a finger, 40 px right: the card grows by 80.
    x, y = calib.handle_centre()
    touch = [{"x": x, "y": y}]
    calib.cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": touch})
    for step in range(1, 9):
        touch = [{"x": x + 5 * step, "y": y}]
        calib.cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": touch})
    calib.cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert calib.card_width() == 330
    calib.tap("Done")

    # 180 mm would be 694 px: more than this screen has, so the square goes
    # as far right as fits, and the numbers use where it really is.
    page.get_by_role("heading", name="Viewing distance").wait_for()
    square_x = page.evaluate(SQUARE_POSITION)
    assert 600 < square_x < 330 / CARD_WIDTH_MM * 180
    start = page.evaluate(BALL_POSITION)["kept"]
    assert start == pytest.approx(0.6 * square_x, abs=0.01)
    calib.tap("Start")
    now = page.get_by_role("button", name="Now: the ball has disappeared")
    assert now.bounding_box()["height"] >= 60  # big enough to hit without looking
    page.evaluate(
        "() => { window.nowTouches = 0; document.addEventListener('pointerdown', (e) =>"
        " { if (e.pointerType === 'touch' && e.target.closest('.calib-now')) window.nowTouches += 1; }, true); }"
    )

    def tap_now():
        # Straight to the touchscreen: no actionability waits, which would
        # need the page's (paused) animation frames.
        box = now.bounding_box()
        page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    first = measure(calib, [3000, 3500, 2500], tap_now)
    for delay, position in zip([3000, 3500, 2500], first, strict=True):
        assert start - 60 * delay / 1000 <= position <= start - 60 * (delay - 17) / 1000

    # "No, measure again" throws the first series away.
    page.get_by_text("Does that seem about right?").wait_for()
    calib.shot("touch-3-report")
    calib.tap("No, measure again")
    calib.tap("Start")
    # A tap right after Start (a double tap) does not count as a measurement.
    tap_now()
    assert page.evaluate("() => window.nowTouches") == 4
    assert page.get_by_text("Remaining measurements: 3").is_visible()
    calib.prefix = "touch-4-again-"
    second = measure(calib, [4000, 3800, 4200], tap_now)
    assert page.evaluate("() => window.nowTouches") == 7
    calib.tap("Yes")
    result = calib.result()

    assert result["card_width_px"] == 330
    assert result["square_x_px"] == pytest.approx(square_x, abs=0.01)
    assert result["blindspot_positions_px"] == pytest.approx(second, abs=0.005)
    assert result["device_pixel_ratio"] == 3
    assert result == calib.compute(inputs_of(result))
    assert page.evaluate("() => document.getElementById('host').childElementCount") == 0
    assert calib.listener_count() == listeners_before + 1  # the test's own pointerdown counter
    assert calib.problems == []


def test_a_zoom_change_after_the_card_step_asks_for_the_card_again(calibration):
    calib = calibration(viewport={"width": 1024, "height": 700})
    page = calib.page
    calib.start({"reps": 2})
    page.get_by_role("button", name="Done").click()
    page.keyboard.press(" ")
    page.clock.run_for(2000)
    # Browser zoom shows up as a new devicePixelRatio.
    metrics = {"width": 1024, "height": 700, "deviceScaleFactor": 1.5, "mobile": False}
    calib.cdp.send("Emulation.setDeviceMetricsOverride", metrics)
    assert page.evaluate("() => devicePixelRatio") == 1.5
    page.keyboard.press(" ")
    page.get_by_text("The page zoom changed, so please size the card again.").wait_for()
    assert page.get_by_role("heading", name="Screen size").is_visible()
    # The card keeps the width it had; measured again, the ratio is the new one.
    assert calib.card_width() == 250
    page.get_by_role("button", name="Done").click()
    page.keyboard.press(" ")
    for delay in (3000, 3000):
        page.clock.run_for(delay)
        page.keyboard.press(" ")
    page.get_by_role("button", name="Yes").click()
    result = calib.result()
    assert result["device_pixel_ratio"] == 1.5
    assert len(result["blindspot_positions_px"]) == 2
    assert result == calib.compute(inputs_of(result))
    assert calib.problems == []


def test_abort_cleans_up(calibration):
    calib = calibration(viewport={"width": 1024, "height": 700})
    page = calib.page
    listeners_before = calib.listener_count()
    outcome = page.evaluate(
        """async () => {
          const controller = new AbortController();
          const running = PipalCalibration.run(document.getElementById('host'), { signal: controller.signal });
          const shown = document.querySelectorAll('.calib-card').length;
          controller.abort();
          try { await running; return ['resolved', shown]; } catch (e) { return [e.name, shown]; }
        }"""
    )
    assert outcome == ["AbortError", 1]
    assert page.evaluate("() => document.getElementById('host').childElementCount") == 0
    assert calib.listener_count() == listeners_before
    # Bad options are refused up front.
    for options in ({"reps": 0}, {"reps": 2.5}, {"ballSpeedPxPerSecond": -3}):
        name = page.evaluate(
            "(o) => PipalCalibration.run(document.getElementById('host'), o).then(() => 'ok', (e) => e.name)", options
        )
        assert name == "RangeError"
    assert page.evaluate("() => document.getElementById('host').childElementCount") == 0
    assert calib.problems == []
