"""A study owner adds catalogue types to the demo study in the admin, in a real headless
Chromium: the picker's previews, three ticked types generated (one under a free code, since
the demo uses its catalogue code), and a clash that cannot be resolved shown as a message.
Screenshots go to test-artifacts/browser/."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotation.models import DistortedImage, DistortionType, Study
from annotation.studies import study_create
from tests.factories import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-test-password"
TICKED = {"01": 5, "02": 4, "12": 3}  # Gaussian blur (the demo's 01 too), motion blur, contrast: levels


@pytest.fixture
def staff_page(browser, live_server):
    get_user_model().objects.create_superuser("owner", "owner@example.org", PASSWORD)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    yield page
    page.close()


def wait_for_previews(page, count):
    page.wait_for_function(
        f"[...document.querySelectorAll('.catalogue img')].slice(0, {count})"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=30_000,
    )


def test_ticking_three_catalogue_types_on_the_demo_study_makes_their_images(staff_page, live_server):
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    demo = Study.objects.get(slug="demo")
    page = staff_page
    page.goto(f"{live_server.url}/admin/annotation/study/{demo.pk}/change/")
    page.get_by_role("link", name="Add distortion types").click()
    page.wait_for_selector("#catalogue-form")
    wait_for_previews(page, 8)
    assert "01 is taken by 01 Gaussian blur: gets a free code" in page.inner_text("#type-01")
    assert "weights missing" in page.inner_text("#type-47") and page.is_disabled("#pick-47")
    page.screenshot(path=SCREENSHOTS / "catalogue-1-picker.png")

    for type_id in TICKED:
        page.check(f"#pick-{type_id}")
    page.get_by_role("button", name="Install the ticked types and generate their images").click()
    page.wait_for_selector(".messagelist .success", timeout=120_000)
    message = page.inner_text(".messagelist")
    assert "01 Gaussian blur as 57" in message and "02 Motion blur as 02" in message
    assert "12 Contrast decrease as 12" in message
    assert "installed as 57" in page.inner_text("#type-01")
    page.screenshot(path=SCREENSHOTS / "catalogue-2-installed.png")

    codes = {"57": TICKED["01"], "02": TICKED["02"], "12": TICKED["12"]}
    for code, levels in codes.items():
        kind = DistortionType.objects.get(study=demo, code=code)
        assert DistortedImage.objects.filter(distortion_type=kind).count() == 4 * levels  # four references
    page.goto(f"{live_server.url}/admin/annotation/distortedimage/?study__id__exact={demo.pk}&q=_57_")
    page.wait_for_selector("#result_list")
    assert "D0001_57_01.png" in page.inner_text("#result_list")
    page.screenshot(path=SCREENSHOTS / "catalogue-3-images.png")


def test_a_clash_without_a_free_code_is_a_message(staff_page, live_server):
    study = study_create(slug="crowded")
    for number in [2, *range(51, 100)]:
        blur = {"generator": "gaussian_blur", "levels": {"1": {"sigma": 4.0}}}
        DistortionType.objects.create(study=study, code=f"{number:02d}", name=f"Hand-made {number}", **blur)
    page = staff_page
    page.goto(f"{live_server.url}/admin/annotation/study/{study.pk}/catalogue/")
    page.check("#pick-02")
    page.get_by_role("button", name="Install the ticked types and generate their images").click()
    page.wait_for_selector(".messagelist .error")
    message = page.inner_text(".messagelist")
    # (The admin capitalises a message's first letter.)
    assert "Catalogue type 02 (Motion blur) cannot be installed in study crowded" in message
    assert "no two-digit code from 01 to 99 is free" in message
    page.screenshot(path=SCREENSHOTS / "catalogue-4-clash.png")
    assert not DistortionType.objects.filter(study=study, generator="motion_blur").exists()
