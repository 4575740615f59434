"""The Bradley–Terry fit in the pages: the owner dashboard's interval chart and
convergence figures, the admin's precision column, fit action and progress page."""

import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from annotation.analysis import bt_fit
from annotation.models import BradleyTerryFit, DistortedImage
from annotation.raters import rater_set_excluded
from dashboard import plots, views
from dashboard.simulation import simulate_study
from tests.factories import data_uri_pngs, import_folder, make_pipal_folder, plain_study, rater, vote

STUDIES = "/admin/annotation/study/"

pytestmark = pytest.mark.django_db

DASHBOARD = "/study/s1/dashboard/"
NO_FIT = "No Bradley–Terry fit yet"
# Goals every fit of a small study meets, and one none meets (CIs of a few judgments are far wider).
EASY = {"target_ci_width": 1e6, "target_kendall": 1.0}
HARD = {"target_ci_width": 1.0, "target_kendall": 0.0}


def judged(study, per_image: int = 10):
    """The study with ``per_image`` x images synthetic judgments (through the real trial flow)."""
    simulate_study(study=study, judgments_per_image=per_image, seed=1)
    return study


def fit(study, **goals) -> BradleyTerryFit:
    for key, value in {"bt_rounds": 100, **goals}.items():
        setattr(study, key, value)
    study.save()
    return bt_fit.study_fit_bradley_terry(study=study)


def png_size(uri: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(data_uri_pngs(f'src="{uri}"')[0])) as image:
        return image.size


def text(html: str) -> str:
    """The page as text: tags dropped, whitespace runs folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def precision_cells(admin_client) -> dict[str, str]:
    """Study slug -> the text of its "precision" cell on the study list."""
    html = admin_client.get(STUDIES).content.decode()
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html.split("<tbody>")[1], re.S)
    cells = {}
    for row in rows:
        slug = re.search(r'<th class="field-slug"><a [^>]*>([^<]+)</a>', row).group(1)
        cells[slug] = re.search(r'<td class="field-precision">(.*?)</td>', row, re.S).group(1).strip()
    return cells


# --- owner dashboard -----------------------------------------------------------------------


def test_dashboard_without_a_fit_says_how_to_make_one(admin_client, small_study):
    judged(small_study, 2)
    response = admin_client.get(DASHBOARD)
    assert response.status_code == 200
    page = text(response.content.decode())
    assert f"{NO_FIT}. Make one with python manage.py fit_bradley_terry s1" in page
    assert "Fit Bradley–Terry (bootstrap CIs)" in page
    assert response.context["bt"]["summary"] is None and response.context["bt"]["charts"] == {}
    assert len(data_uri_pngs(response.content.decode())) == 6  # the Elo charts only


def test_dashboard_shows_intervals_and_convergence_after_a_fit(admin_client, small_study):
    made = fit(judged(small_study), **EASY)
    response = admin_client.get(DASHBOARD)
    html = response.content.decode()
    page = text(html)
    assert NO_FIT not in page
    bt = response.context["bt"]
    assert bt["summary"].fit == made and bt["summary"].current
    assert (bt["reference"], bt["references"], bt["previous"], bt["next"]) == (
        "R0001",
        ["R0001", "R0002"],
        None,
        "R0002",
    )
    # Both Bradley–Terry charts are inlined PNGs beside the six Elo ones.
    assert len(data_uri_pngs(html)) == 8
    for chart in ("bt_intervals", "bt_ci_widths"):
        assert f'src="{bt["charts"][chart]}"' in html and png_size(bt["charts"][chart]) == (640, 360)
    assert "MOS with 95% confidence intervals (Bradley–Terry)" in page
    assert '<option value="R0001" selected>R0001</option>' in html and 'href="?reference=R0002#bt"' in html
    # The convergence figures, with their meaning in plain words and the verdict.
    assert f"{made.judgments} judgments (excluded raters left out), 8 images, per reference" in page
    assert "It is up to date with the judgments." in page and "Stale" not in page
    assert f"Median 95% CI width {made.median_ci:.1f} Elo points" in page
    assert f"Widest 95% CI {made.widest_ci:.1f} Elo points ≤ 1e+06" in page
    assert "Images wider than the target 0 0" in page
    assert f"Ranking stability (Kendall distance) {made.kendall:.4f} ≤ 1" in page
    assert "two bootstrap replicates order differently" in page
    assert "Precision goal DONE" in page


def test_the_interval_chart_shows_one_reference_at_a_time(admin_client, small_study):
    fit(judged(small_study))
    first = admin_client.get(DASHBOARD)
    second = admin_client.get(DASHBOARD, {"reference": "R0002"})
    assert second.status_code == 200
    bt = second.context["bt"]
    assert (bt["reference"], bt["previous"], bt["next"]) == ("R0002", "R0001", None)
    html = second.content.decode()
    assert '<option value="R0002" selected>R0002</option>' in html and 'href="?reference=R0001#bt"' in html
    assert bt["charts"]["bt_intervals"] != first.context["bt"]["charts"]["bt_intervals"]
    # The histogram of widths covers every image, whichever reference is shown.
    assert bt["charts"]["bt_ci_widths"] == first.context["bt"]["charts"]["bt_ci_widths"]
    # What the chart draws: the reference's fitted images with their interval, category and Elo MOS.
    rows = views.reference_bt_rows(small_study, "R0002")
    images = DistortedImage.objects.filter(reference__name="R0002")
    assert sorted(rows) == sorted(
        (i.name, i.mos_bt, i.bt_ci_low, i.bt_ci_high, i.distortion_type.category, i.mos) for i in images
    )
    assert all(low < score < high for _, score, low, high, _, _ in rows)


def test_an_unknown_reference_is_404(admin_client, small_study):
    fit(judged(small_study))
    response = admin_client.get(DASHBOARD, {"reference": "R9999"})
    assert response.status_code == 404
    assert str(response.context["exception"]) == "study 's1' has no reference named 'R9999'"
    # An empty choice is no name: the first reference.
    assert admin_client.get(DASHBOARD, {"reference": ""}).context["bt"]["reference"] == "R0001"


def test_a_stale_not_done_fit_says_so(admin_client, small_study):
    made = fit(judged(small_study), **HARD)
    vote(small_study, rater(small_study, "late"), 1)  # a judgment the fit has not seen
    response = admin_client.get(DASHBOARD)
    page = text(response.content.decode())
    assert not response.context["bt"]["summary"].current
    assert "Stale: judgments were added, or raters excluded or let back in, since this fit" in page
    assert "Precision goal not done yet" in page
    assert f"Images wider than the target {made.images_too_wide} 0" in page and made.images_too_wide == 8


# --- admin: precision column, fit action, progress page, study form --------------------------


def test_the_precision_column_follows_the_latest_fit(admin_client, small_study):
    other = plain_study("s2", "Study two")
    assert precision_cells(admin_client) == {"s1": "no fit", "s2": "no fit"}
    judged(small_study)
    fit(small_study, **HARD)
    fit(small_study, **EASY)  # the latest fit counts, not the first
    assert precision_cells(admin_client) == {"s1": "done", "s2": "no fit"}
    fit(small_study, **HARD)
    assert precision_cells(admin_client)["s1"] == "not done"

    # Stale as bt_fit.fit_is_current: a new judgment, then a rater's votes leaving the MOS.
    late = rater(small_study, "late")
    vote(small_study, late, 2)
    assert precision_cells(admin_client)["s1"] == "not done (stale)" and not bt_fit.fit_is_current(small_study)
    fit(small_study, **HARD)
    assert precision_cells(admin_client)["s1"] == "not done"
    rater_set_excluded(rater=late, excluded=True, reason="test")
    assert precision_cells(admin_client)["s1"] == "not done (stale)" and not bt_fit.fit_is_current(small_study)
    assert other.bt_fits.count() == 0


def test_the_precision_column_costs_no_query_per_study(admin_client, tmp_path):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(STUDIES).status_code == 200
        return len(queries)

    def fitted_study(n: int):
        study = plain_study(f"q{n}")
        import_folder(study, make_pipal_folder(tmp_path / f"data{n}", references=1))
        fit(judged(study, 3))

    fitted_study(1)
    one = list_queries()
    fitted_study(2)
    fitted_study(3)
    assert list_queries() == one
    assert set(precision_cells(admin_client).values()) <= {"done", "not done"}


def test_the_fit_action_queues_the_task_after_the_commit(admin_client, small_study, django_capture_on_commit_callbacks):
    judged(small_study)
    empty = plain_study("s2", "Study two")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(
            STUDIES, {"action": "fit_bradley_terry", "_selected_action": [small_study.pk, empty.pk]}, follow=True
        )
        assert not BradleyTerryFit.objects.exists()  # nothing runs before the commit
    assert len(callbacks) == 1  # the empty study queues nothing
    page = text(response.content.decode())
    assert "Bradley–Terry fit of s1 with 100 bootstrap round(s) queued; its figures show on the progress page" in page
    assert "Nothing to fit in s2: it has no judgments yet." in page
    # Celery runs eagerly in the tests: the task has fitted and stored the study.
    made = small_study.bt_fits.get()
    assert made.judgments == bt_fit.counted_judgments(small_study).count() and bt_fit.fit_is_current(small_study)
    assert not DistortedImage.objects.filter(study=small_study, mos_bt__isnull=True).exists()
    assert not empty.bt_fits.exists()
    assert precision_cells(admin_client)["s1"] in {"done", "not done"}


def test_the_progress_page_shows_the_convergence(admin_client, small_study):
    url = f"{STUDIES}{small_study.pk}/progress/"
    page = text(admin_client.get(url).content.decode())
    assert f"{NO_FIT}. Make one with the study list's action “Fit Bradley–Terry (bootstrap CIs)”" in page
    made = fit(judged(small_study), **HARD)
    response = admin_client.get(url)
    page = text(response.content.decode())
    assert NO_FIT not in page and response.context["bt"]["summary"].fit == made
    assert (
        f"{made.judgments} judgments (excluded raters left out), 8 images, per reference, 100 bootstrap rounds" in page
    )
    assert f"Ranking stability (Kendall distance) {made.kendall:.4f} ≤ 0" in page
    assert "Precision goal not done yet" in page and "It is up to date with the judgments." in page
    assert len(data_uri_pngs(response.content.decode())) == 2  # the page's own charts only
    vote(small_study, rater(small_study, "late"), 1)
    assert "Stale:" in text(admin_client.get(url).content.decode())


def test_the_study_form_edits_the_pairing_and_precision_settings(admin_client, small_study):
    url = f"{STUDIES}{small_study.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    for name in ("pair_policy", "bt_scope", "bt_rounds", "target_ci_width", "target_kendall"):
        assert name in form.fields, name
    data = {name: value for name, value in form.initial.items() if value is not None and name != "owners"}
    data.update(
        pair_policy="active",
        bt_scope="global",
        bt_rounds=200,
        target_ci_width=80,
        target_kendall=0.02,
        **{
            "label_imports-TOTAL_FORMS": 0,
            "label_imports-INITIAL_FORMS": 0,
        },
    )
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    small_study.refresh_from_db()
    assert (small_study.pair_policy, small_study.bt_scope, small_study.bt_rounds) == ("active", "global", 200)
    assert (small_study.target_ci_width, small_study.target_kendall) == (80, 0.02)


# --- the figures and the chart ---------------------------------------------------------------


def test_fit_figures_read_in_plain_words(small_study):
    made = fit(judged(small_study), **HARD)
    figures = {f.label: f for f in views.fit_figures(made)}
    assert list(figures) == [
        "Median 95% CI width",
        "Widest 95% CI",
        "Images wider than the target",
        "Ranking stability (Kendall distance)",
        "Precision goal",
    ]
    assert figures["Median 95% CI width"].meaning.endswith(f"about ±{made.median_ci / 2:.0f} points.")
    assert figures["Images wider than the target"].meaning.startswith("Images whose interval is wider than 1 points")
    assert "within a reference" in figures["Ranking stability (Kendall distance)"].meaning
    assert figures["Precision goal"].value == "not done yet"


@pytest.mark.parametrize("count", [0, 5, 40])
def test_the_interval_chart_is_a_png(count):
    points = [
        plots.IntervalPoint(f"img{i}", 1400 + 10 * i, 1350 + 10 * i, 1460 + 10 * i, ["a", "b", "c"][i % 3], 1390 + i)
        for i in range(count)
    ]
    png = plots.intervals(points, title="t", xlabel="x", ylabel="y", groups=["c", "a"], other_label="Elo MOS")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (640, 360)
    marked = plots.histogram([50.0, 80.5, 120.25], title="t", xlabel="x", mark=100, mark_label="target: 100")
    assert marked != plots.histogram([50.0, 80.5, 120.25], title="t", xlabel="x")
    far = plots.histogram([50.0, 80.5], title="t", xlabel="x", mark=1e6, mark_label="target: 1e+06")
    assert far.startswith(b"\x89PNG") and far != marked
