"""The owner pages in a real Chromium: an owner signs in, reads the dashboard, follows the
navigation to the benchmark run, the raters page and back home; an anonymous visitor's home
page lists no study. Screenshots go to test-artifacts/browser/."""

import io

import pytest
from django.core.management import call_command

from annotation.analysis import bt_fit
from tests.factories import SCREENSHOTS, graded_study

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

NAV_BACKGROUND = "rgb(246, 248, 250)"  # reports.css's --panel: the stylesheet was loaded and applied


@pytest.fixture
def benchmarked_study(tmp_path, django_user_model):
    study = graded_study(tmp_path, references=2)
    call_command("compute_scores", study.slug, "--metrics", "psnr,gmsd", "--device", "cpu", stdout=io.StringIO())
    call_command(
        "run_benchmark", study.slug, "--metrics", "psnr,gmsd", "--resamples", "50", "--min-images", "3",
        "--type-pair", "01,02", stdout=io.StringIO(),
    )  # fmt: skip
    study.bt_rounds = 100
    study.save()
    bt_fit.study_fit_bradley_terry(study=study)  # the dashboard then draws Bradley–Terry beside Elo
    owner = django_user_model.objects.create_user("owner", password="an-owner-password-1")
    study.owners.add(owner)
    return study


def assert_styled(page):
    background = page.evaluate("getComputedStyle(document.querySelector('nav.site-nav')).backgroundColor")
    assert background == NAV_BACKGROUND


def assert_images_loaded(page):
    broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)")
    assert broken == [] and page.locator("img").count() > 0


def assert_inside_viewport_width(page):
    """Nothing on the page is wider than the window (no sideways scrolling of the page itself)."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_an_owner_reads_the_reports_and_moves_between_them(browser, live_server, benchmarked_study):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/study/graded/dashboard/")
    # Sent to sign in first, on the same stylesheet.
    assert "/accounts/login/" in page.url
    assert_styled(page)
    page.get_by_label("User name").fill("owner")
    page.get_by_label("Password").fill("an-owner-password-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/study/graded/dashboard/")
    assert_styled(page)
    assert_images_loaded(page)
    assert_inside_viewport_width(page)
    page.screenshot(path=SCREENSHOTS / "reports-1-dashboard.png", full_page=True)

    # Every chart has its downloads; the SVG one is an SVG.
    svg_link = page.locator("#chart-mos_by_subtype a[data-format='svg']")
    response = page.request.get(live_server.url + svg_link.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "image/svg+xml"
    assert response.body().lstrip().startswith(b"<?xml") and b"<svg" in response.body()
    assert page.locator("figure.chart a[data-format='png']").count() == page.locator("figure.chart").count() == 8
    page.locator("#chart-bt_intervals").screenshot(path=SCREENSHOTS / "reports-1b-bradley-terry-and-elo.png")

    # Dashboard -> benchmark runs.
    page.locator("nav.site-nav a[data-nav='benchmark']").click()
    page.wait_for_url("**/study/graded/benchmark/")
    assert_styled(page)
    assert page.get_by_role("heading", name="SRCC per distortion group (PIPAL Table 3 layout)").is_visible()
    page.locator("img").last.scroll_into_view_if_needed()
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert_images_loaded(page)
    assert page.locator("figure.chart a[data-format='svg']").count() == page.locator("figure.chart img").count() >= 5
    assert_inside_viewport_width(page)
    page.screenshot(path=SCREENSHOTS / "reports-2-benchmark.png", full_page=True)
    plot = page.request.get(
        live_server.url + page.locator("figure.chart a[data-format='svg']").first.get_attribute("href")
    )
    assert plot.status == 200 and plot.headers["content-type"] == "image/svg+xml"

    # Benchmark -> raters -> dashboard -> home.
    page.locator("nav.site-nav a[data-nav='raters']").click()
    page.wait_for_url("**/study/graded/raters/")
    assert_styled(page)
    assert page.get_by_role("heading", name="Raters and payments").is_visible()
    page.screenshot(path=SCREENSHOTS / "reports-3-raters.png", full_page=True)
    page.locator("nav.site-nav a[data-nav='dashboard']").click()
    page.wait_for_url("**/study/graded/dashboard/")
    page.locator("nav.site-nav a.brand").click()
    page.wait_for_url(f"{live_server.url}/")
    assert_styled(page)
    assert page.locator("#studies code", has_text="graded").is_visible()
    page.screenshot(path=SCREENSHOTS / "reports-4-home-owner.png", full_page=True)
    # Home -> the study's dashboard through its row.
    page.locator("#studies").get_by_role("link", name="dashboard").click()
    page.wait_for_url("**/study/graded/dashboard/")
    assert errors == []
    page.close()


def test_an_anonymous_visitor_sees_no_study_on_the_home_page(browser, live_server, benchmarked_study):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server.url}/")
    assert_styled(page)
    assert page.locator("#studies").count() == 0 and "graded" not in page.content()
    assert page.locator("#welcome").is_visible()
    page.screenshot(path=SCREENSHOTS / "reports-5-home-anonymous.png", full_page=True)
    page.locator("#welcome").get_by_role("link", name="sign in").click()
    page.wait_for_url("**/accounts/login/")
    assert_styled(page)
    context.close()
