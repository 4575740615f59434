"""The owner dashboard and the chart functions behind it and the admin."""

import base64
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from annotation.models import DistortedImage, DistortionType
from annotation.rating.votes import judgment_record
from dashboard import plots, views
from tests.factories import rater, vote

URL = "/study/s1/dashboard/"


def data_uri_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(match) for match in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


# --- access -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_see_the_dashboard(admin_client, small_study):
    vote(small_study, rater(small_study, "lefty"), 20, left_wins=True)
    vote(small_study, rater(small_study, "fair"), 4)
    response = admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    pngs = data_uri_pngs(html)
    assert len(pngs) == 6 and all(png.startswith(b"\x89PNG") for png in pngs)
    for alt in ("judgments per image", "judgments per hour", "MOS by distortion category", "MOS by distortion subtype"):
        assert alt in html
    assert response.context["progress"].judgments == 24
    flagged = [r.external_id for r, qc in response.context["rater_rows"] if qc.flagged]
    assert flagged == ["lefty"] and "one side in 100% of trials" in html
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_owners_see_their_dashboard_and_other_users_get_403(client, django_user_model, small_study):
    owner = django_user_model.objects.create_user("owner", password="x")
    small_study.owners.add(owner)
    client.force_login(owner)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.context["admin_progress_url"] is None  # owners are not staff

    client.force_login(django_user_model.objects.create_user("stranger", password="x"))
    assert client.get(URL).status_code == 403


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_the_login(client, small_study):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/study/s1/dashboard/"


@pytest.mark.django_db
def test_an_owner_signs_in_and_reaches_the_dashboard(client, small_study, django_user_model):
    owner = django_user_model.objects.create_user("owner", password="a-long-owner-password")
    small_study.owners.add(owner)
    page = client.get("/accounts/login/?next=/study/s1/dashboard/")
    assert page.status_code == 200 and "Sign in" in page.content.decode()
    response = client.post(
        "/accounts/login/", {"username": "owner", "password": "a-long-owner-password", "next": "/study/s1/dashboard/"}
    )
    assert response["Location"] == "/study/s1/dashboard/"
    assert client.get("/study/s1/dashboard/").status_code == 200


@pytest.mark.django_db
def test_unknown_study_is_404_and_empty_study_renders(admin_client, study):
    assert admin_client.get("/study/nope/dashboard/").status_code == 404
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert len(data_uri_pngs(response.content.decode())) == 6
    assert "No rater has joined yet." in response.content.decode()


# --- figures ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_mos_groups_leave_out_unjudged_images_and_follow_pipal_order(small_study):
    vote(small_study, rater(small_study, "r1"), 6)
    DistortionType.objects.filter(study=small_study, code="02").update(category="", subtype="")
    images = views.study_image_figures(small_study)
    judged = sum(1 for image in images if image.judgments)
    by_category = views.mos_by_category(images)
    assert list(by_category) == ["Traditional distortion", "uncategorised"]
    assert sum(len(v) for v in by_category.values()) == judged
    assert set(views.mos_by_subtype(images)) == {"sub01", "(none)"}
    expected = sorted(DistortedImage.objects.filter(judgment_count__gt=0).values_list("mos", flat=True))
    assert sorted(m for group in by_category.values() for m in group) == expected


@pytest.mark.django_db
def test_judgments_per_hour_counts_every_judgment(small_study):
    vote(small_study, rater(small_study, "r1"), 7)
    judgment_record(
        study=small_study,
        image_a_id=DistortedImage.objects.get(name="R0002_01_01.png").id,
        image_b_id=DistortedImage.objects.get(name="R0002_01_02.png").id,
        a_wins=True,
    )
    hours = views.study_judgments_per_hour(small_study)
    assert sum(n for _, n in hours) == 8
    assert all(hour.minute == hour.second == 0 for hour, _ in hours)


# --- plots: every chart, with data and without -----------------------------------------------


START = datetime(2025, 3, 1, 9, tzinfo=UTC)
CHARTS = {
    "histogram": (
        lambda: plots.histogram([1, 2, 2, 3, 8], title="Judgments per image", xlabel="judgments"),
        lambda: plots.histogram([], title="Judgments per image", xlabel="judgments"),
    ),
    "histogram-floats": (
        lambda: plots.histogram([1400.5, 1388.1, 1520.25, 1402.0], title="MOS", xlabel="MOS"),
        lambda: plots.histogram([1400.0], title="MOS", xlabel="MOS"),
    ),
    "box_plot": (
        lambda: plots.box_plot(
            {"a": [1, 2, 3], "b": [2.5], "c": []}, title="MOS by category", value_label="MOS", group_label="c"
        ),
        lambda: plots.box_plot({"a": []}, title="MOS by category", value_label="MOS", group_label="c"),
    ),
    "counts_per_hour": (
        lambda: plots.counts_per_hour([(START, 3), (START + timedelta(hours=5), 10)], title="Judgments per hour"),
        lambda: plots.counts_per_hour([], title="Judgments per hour"),
    ),
    "rater_agreement": (
        lambda: plots.rater_agreement(
            [
                plots.RaterPoint("a", 30, 0.9, False),
                plots.RaterPoint("b", 25, 0.3, True),
                plots.RaterPoint("c", 2, None, False),
            ]
        ),
        lambda: plots.rater_agreement([]),
    ),
}


@pytest.mark.parametrize("kind", ["normal", "empty"])
@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_every_chart_is_a_png(chart, kind):
    png = CHARTS[chart][kind == "empty"]()
    assert png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (640, 360)
