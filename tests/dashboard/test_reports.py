"""Reports people read: the owner pages' plots (readable labels, Elo and Bradley–Terry MOS on
axes of their own, monotone fitted curves), each chart as a PNG or SVG download for owners
only, the benchmark page inside the owner pages' layout, and a home page that shows studies
only to those allowed to see them."""

import io
import itertools

import numpy as np
import pandas as pd
import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import RequestFactory, override_settings
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from PIL import Image

from annotation.analysis import bt_fit
from dashboard import plots
from iqa import report, stats
from iqa.metrics import parse_metric_list
from iqa.models import BenchmarkRun
from tests.factories import graded_study, import_folder, make_pipal_folder, plain_study, rater, vote

STYLESHEET = "/static/dashboard/reports.css"

# --- labels that can be read ------------------------------------------------------------------


def drawn(figure):
    """The figure laid out and drawn (constrained layout runs at draw time), with its renderer."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def tick_labels(axes, which: str) -> list:
    """The tick labels matplotlib draws: named, visible, and at a tick inside the view limits."""
    axis = axes.yaxis if which == "y" else axes.xaxis
    low, high = sorted(axis.get_view_interval())
    locations = axis.get_majorticklocs()
    ticks = axis.get_major_ticks(len(locations))
    return [
        tick.label1
        for location, tick in zip(locations, ticks, strict=True)
        if tick.label1.get_visible() and tick.label1.get_text() and low <= location <= high
    ]


def assert_readable(figure, which: str, expected: int) -> list[str]:
    """Every named tick on ``which`` axis of the figure's axes: none overlaps another, each lies
    wholly inside the figure, and so do the titles and axis labels. Returns the label texts."""
    renderer = drawn(figure)
    inside = figure.bbox
    texts = []
    for axes in figure.axes:
        labels = tick_labels(axes, which)
        boxes = [label.get_window_extent(renderer) for label in labels]
        for (a, box_a), (b, box_b) in itertools.combinations(zip(labels, boxes, strict=True), 2):
            assert not box_a.overlaps(box_b), f"{a.get_text()!r} overlaps {b.get_text()!r}"
        for label, box in zip(labels, boxes, strict=True):
            assert inside.x0 <= box.x0 and box.x1 <= inside.x1, f"{label.get_text()!r} runs out sideways"
            assert inside.y0 <= box.y0 and box.y1 <= inside.y1, f"{label.get_text()!r} runs out at the top or bottom"
        for text in (axes.title, axes.xaxis.label, axes.yaxis.label):
            if text.get_text():
                box = text.get_window_extent(renderer)
                assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
        texts += [label.get_text() for label in labels]
    assert len(set(texts)) == expected, texts
    return texts


SUBTYPES = [
    "gaussian_noise", "speckle_noise", "spatially_correlated_noise", "impulse_noise", "quantization_noise",
    "gaussian_blur", "motion_blur", "lens_blur", "jpeg_compression", "jpeg2000_compression", "color_saturation",
    "contrast_change", "brightness_shift", "mean_shift", "interpolation", "traditional_sr", "psnr_oriented_sr",
    "gan_based_sr", "denoising", "mixture", "(none)",
]  # fmt: skip


def test_the_subtype_box_plot_stays_readable_with_21_subtypes():
    rng = np.random.default_rng(0)
    medians = {name: 1300 + 10 * index for index, name in enumerate(SUBTYPES)}
    groups = {name: list(rng.normal(median, 15, 40)) for name, median in medians.items()}
    figure = plots.box_plot.figure(
        groups, title="MOS by subtype", value_label="MOS", group_label="", sort_by_median=True
    )
    texts = assert_readable(figure, "y", 21)
    # Full names, highest median on top (the y axis is inverted: the first tick is the top row).
    assert [text.split(" (n=")[0] for text in texts] == sorted(SUBTYPES, key=medians.get, reverse=True)
    assert figure.get_figheight() > plots.SIZE[1]  # grew with the count rather than squeezing the rows


def test_the_sr_method_plot_names_every_method_without_overlap():
    names = [f"SR method with a long name {index}" for index in range(24)]
    sr = pd.DataFrame(
        {
            "type_code": [f"{index + 10:02d}" for index in range(24)],
            "type_name": names,
            "images": 12,
            # Means a hair apart: points placed by value alone would pile their labels up.
            "psnr": np.linspace(24.0, 24.2, 24),
            "mos": np.linspace(1490.0, 1510.0, 24),
        }
    )
    (info,) = parse_metric_list("psnr")
    texts = assert_readable(report.sr_methods_figure(sr, info), "y", 24)
    assert all(any(name in text for text in texts) for name in names)


def test_dashboard_charts_keep_their_labels_inside():
    points = [plots.IntervalPoint(f"R0001_{i:02d}_01.png", 1000 + 40 * i, 990 + 40 * i, 1010 + 40 * i, "Traditional",
                                  1390 + i) for i in range(22)]  # fmt: skip
    figure = plots.intervals.figure(points, title="Bradley–Terry", xlabel="images", ylabel="Bradley–Terry MOS")
    assert_readable(figure, "x", 22)
    category = plots.box_plot.figure(
        {"Traditional": [1.0, 2.0], "Super-resolution": [2.0, 3.0], "uncategorised": [1.5]},
        title="MOS by category",
        value_label="MOS",
        group_label="",
    )
    assert assert_readable(category, "y", 3)[0].startswith("Traditional")  # the given order, from the top


# --- Elo and Bradley–Terry MOS never on one axis ------------------------------------------------


def test_elo_and_bradley_terry_mos_are_drawn_on_axes_of_their_own():
    # What a study shows: Bradley–Terry spreads over 1000–1850, the Elo MOS of the same images over 1380–1420.
    bt_scores = np.linspace(1000, 1850, 12)
    elo = np.linspace(1380, 1420, 12)
    points = [
        plots.IntervalPoint(f"img{i}", float(s), float(s) - 30, float(s) + 30, "Traditional", float(e))
        for i, (s, e) in enumerate(zip(bt_scores, elo, strict=True))
    ]
    figure = plots.intervals.figure(
        points, title="BT", xlabel="images", ylabel="Bradley–Terry MOS", other_label="Elo MOS"
    )
    drawn(figure)
    assert len(figure.axes) == 2
    bt_axes, elo_axes = figure.axes
    assert bt_axes.get_ylabel() == "Bradley–Terry MOS" and elo_axes.get_ylabel() == "Elo MOS"
    # Each axis spans its own estimate: Elo's 40 points fill its panel instead of a sliver of 850.
    low, high = elo_axes.get_ylim()
    assert low < 1380 and high > 1420 and high - low < 100
    low, high = bt_axes.get_ylim()
    assert low < 1000 and high > 1850
    assert bt_axes.get_shared_x_axes().joined(bt_axes, elo_axes)  # the same images, in the same order
    # Elo's markers are on its own axes only (a × marker among the error bars was the old layout).
    assert not [c for c in bt_axes.collections if isinstance(c, PathCollection)]
    (markers,) = [c for c in elo_axes.collections if isinstance(c, PathCollection)]
    assert np.allclose(sorted(markers.get_offsets()[:, 1]), elo)


# --- the type-pair plot fits monotone curves ---------------------------------------------------


def rising_then_falling_frame():
    """Type 01: MOS saturates then drifts down with the metric, where the 5-parameter logistic's
    linear term bends the fitted curve back down. Type 02: a plain rise."""
    x = np.linspace(0, 10, 40)
    first = 1400 + 40 / (1 + np.exp(-3 * (x - 2))) - 3 * x
    second = 1380 + 4 * x
    return pd.DataFrame(
        {
            "type_code": ["01"] * 40 + ["02"] * 40,
            "type_name": ["Gaussian noise"] * 40 + ["Motion blur"] * 40,
            "psnr": np.concatenate([x, x]),
            "mos": np.concatenate([first, second]),
        }
    )


def test_the_type_pair_plot_draws_monotone_curves_only():
    frame = rising_then_falling_frame()
    part = frame[frame.type_code == "01"]
    # The trap: the VQEG 5-parameter fit of type 01 rises, then falls.
    steps = np.diff(stats.logistic_fit(part.psnr, part.mos, 5).predict(np.linspace(0, 10, 200)))
    assert (steps > 0).any() and (steps < 0).any()
    (info,) = parse_metric_list("psnr")
    figure = report.type_pair_figure(frame, info, ("01", "02"), logistic=5)
    curves = [line.get_ydata() for line in figure.axes[0].get_lines()]
    assert len(curves) == 2
    for curve in curves:
        steps = np.diff(np.asarray(curve, dtype=float))
        assert np.all(steps >= -1e-9) or np.all(steps <= 1e-9)
    drawn(figure)  # tick labels get their text when drawn
    assert_readable(figure, "x", len(tick_labels(figure.axes[0], "x")))


def test_a_monotone_curve_falls_back_to_isotonic_regression(monkeypatch):
    """When no logistic comes out monotone, the curve is the isotonic fit in the data's direction."""
    frame = rising_then_falling_frame()
    part = frame[frame.type_code == "01"]
    bent = stats.logistic_fit(part.psnr, part.mos, 5)
    monkeypatch.setattr(stats, "logistic_fit", lambda x, y, parameters=5: bent)
    x, y = report.monotone_curve(part.psnr.to_numpy(), part.mos.to_numpy(), 5)
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= -1e-9)
    assert y[-1] > y[0]


# --- charts as PNG and SVG, owners only --------------------------------------------------------


@pytest.fixture
def fitted_study(small_study):
    vote(small_study, rater(small_study, "r1"), 24)
    vote(small_study, rater(small_study, "r2"), 24, left_wins=False)
    vote(small_study, rater(small_study, "r3"), 12)
    small_study.bt_rounds = 100
    small_study.save()
    bt_fit.study_fit_bradley_terry(study=small_study)
    return small_study


@pytest.fixture
def owner(django_user_model, small_study):
    user = django_user_model.objects.create_user("owner", password="pw-owner-1")
    small_study.owners.add(user)
    return user


CHART_URL = "/study/s1/dashboard/charts/"


@pytest.mark.parametrize(
    "chart", ["judgments_per_image", "judgments_per_hour", "mos", "mos_by_category", "mos_by_subtype", "raters"]
)
def test_each_dashboard_chart_downloads_as_png_and_svg(client, owner, fitted_study, chart):
    client.force_login(owner)
    png = client.get(f"{CHART_URL}{chart}?format=png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png["Content-Disposition"] == f'attachment; filename="s1-{chart}.png"'
    with Image.open(io.BytesIO(png.content)) as image:
        assert image.format == "PNG" and image.size[0] == 640
    svg = client.get(f"{CHART_URL}{chart}?format=svg")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert b"<svg" in svg.content[:1000] and svg.content.rstrip().endswith(b"</svg>")
    assert client.get(f"{CHART_URL}{chart}").content == png.content  # PNG unless asked otherwise


def test_bradley_terry_charts_download_per_reference(client, owner, fitted_study):
    client.force_login(owner)
    svg = client.get(f"{CHART_URL}bt_intervals?format=svg&reference=R0002")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert svg["Content-Disposition"] == 'attachment; filename="s1-R0002-bt_intervals.svg"'
    assert b"R0002" in svg.content  # the title names the reference
    assert client.get(f"{CHART_URL}bt_ci_widths?format=png")["Content-Type"] == "image/png"
    assert client.get(f"{CHART_URL}bt_intervals?reference=R9999").status_code == 404


def test_chart_downloads_follow_the_dashboards_rule(client, django_user_model, owner, fitted_study, admin_client):
    url = f"{CHART_URL}mos?format=svg"
    assert client.get(url).status_code == 302  # sign in first
    client.force_login(django_user_model.objects.create_user("stranger", password="pw-stranger-1"))
    assert client.get(url).status_code == 403
    other = plain_study("s2", "Study two")
    other.owners.add(owner)  # an owner of another study is still a stranger to s1's charts
    client.force_login(owner)
    assert client.get(url).status_code == 200
    assert admin_client.get(url).status_code == 200


def test_a_wrong_chart_or_format_is_named(client, owner, small_study):
    client.force_login(owner)
    response = client.get(f"{CHART_URL}mos?format=gif")
    assert response.status_code == 400 and b"unknown format 'gif': use one of png, svg" in response.content
    assert client.get(f"{CHART_URL}nonsense").status_code == 404
    assert client.get(f"{CHART_URL}bt_intervals").status_code == 404  # no fit yet


def test_the_dashboard_links_every_chart_in_both_formats(client, owner, fitted_study):
    client.force_login(owner)
    html = client.get("/study/s1/dashboard/").content.decode()
    for chart in ("judgments_per_image", "judgments_per_hour", "mos", "mos_by_category", "mos_by_subtype", "raters",
                  "bt_ci_widths"):  # fmt: skip
        for fmt in ("png", "svg"):
            assert f'href="{CHART_URL}{chart}?format={fmt}"' in html
    assert f'href="{CHART_URL}bt_intervals?format=svg&amp;reference=R0001"' in html
    assert f'href="{STYLESHEET}"' in html
    assert 'data-nav="dashboard" aria-current="page"' in html and 'href="/study/s1/raters/"' in html


# --- home page: studies only for those allowed to see them -------------------------------------


@pytest.fixture
def two_studies(django_user_model):
    mine = plain_study("mine", "My secret study")
    plain_study("theirs", "Their secret study")
    users = {
        "plain": django_user_model.objects.create_user("plain", password="pw-plain-1"),
        "owner": django_user_model.objects.create_user("owner", password="pw-owner-1"),
        "staff": django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True),
    }
    mine.owners.add(users["owner"])
    return users


@pytest.mark.parametrize(
    ("identity", "seen"),
    [("anonymous", set()), ("plain", set()), ("owner", {"mine"}), ("staff", {"mine", "theirs"})],
)
def test_the_home_page_lists_studies_only_to_who_may_see_them(client, two_studies, identity, seen):
    if identity != "anonymous":
        client.force_login(two_studies[identity])
    html = client.get("/").content.decode()
    names = {"mine": "My secret study", "theirs": "Their secret study"}
    assert {slug for slug, name in names.items() if name in html or f"/study/{slug}/" in html} == seen
    assert ('id="studies"' in html) == bool(seen)
    if identity in ("anonymous", "plain"):
        assert "Your studies" not in html and 'id="welcome"' in html
    if identity == "anonymous":
        assert 'href="/accounts/login/"' in html
    assert f'href="{STYLESHEET}"' in html


# --- the benchmark page ------------------------------------------------------------------------


@pytest.fixture
def benchmarked(tmp_path):
    study = graded_study(tmp_path, references=1)
    call_command("compute_scores", study.slug, "--metrics", "psnr", "--device", "cpu", stdout=io.StringIO())
    call_command(
        "run_benchmark", study.slug, "--metrics", "psnr", "--resamples", "50", "--min-images", "3",
        "--type-pair", "01,02", stdout=io.StringIO(),
    )  # fmt: skip
    return study


def test_the_benchmark_page_has_the_owner_pages_layout_and_every_plot_in_both_formats(admin_client, benchmarked):
    run = BenchmarkRun.objects.get(study=benchmarked)
    page = admin_client.get("/study/graded/benchmark/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="{STYLESHEET}"' in html
    admin_change = f"/admin/annotation/study/{benchmarked.pk}/change/"
    for target in ("/", "/study/graded/dashboard/", "/study/graded/raters/", admin_change):
        assert f'href="{target}"' in html, target
    assert 'data-nav="benchmark" aria-current="page"' in html
    assert "PIPAL Table 3 layout" in html and '<table class="report">' in html
    pngs = [name for name in run.files if name.endswith(".png")]
    assert {"srcc.png", "scatter_psnr.png", "sr_methods_psnr.png", "types_01_02_psnr.png"} <= set(pngs)
    for png in pngs:
        for name in (png, report.svg_name(png)):
            url = f"/study/graded/benchmark/{run.pk}/{name}"
            assert f'href="{url}"' in html, name
            response = admin_client.get(url)
            kind = "image/png" if name.endswith(".png") else "image/svg+xml"
            assert response.status_code == 200 and response["Content-Type"] == kind
    # The written files stay downloadable, the standalone page among them (with links to both formats).
    written = b"".join(admin_client.get(f"/study/graded/benchmark/{run.pk}/index.html").streaming_content).decode()
    assert "href='srcc.png'" in written and "href='srcc.svg'" in written
    assert f'href="/study/graded/benchmark/{run.pk}/benchmark.csv"' in html
    # The run's own page is the same page; the dashboard links it.
    assert admin_client.get(f"/study/graded/benchmark/{run.pk}/").content.decode().count("PIPAL Table 3 layout") == 1
    assert f'href="/study/graded/benchmark/{run.pk}/"' in admin_client.get("/study/graded/dashboard/").content.decode()


def test_a_report_written_before_its_page_data_links_its_own_page(admin_client, benchmarked):
    run = BenchmarkRun.objects.get(study=benchmarked)
    run.files = [name for name in run.files if name != report.PAGE_DATA]
    run.save()
    html = admin_client.get(f"/study/graded/benchmark/{run.pk}/").content.decode()
    assert 'id="old-report"' in html and f'href="/study/graded/benchmark/{run.pk}/index.html"' in html


def test_owners_reach_the_benchmark_page_and_strangers_do_not(client, django_user_model, benchmarked):
    assert client.get("/study/graded/benchmark/").status_code == 302
    client.force_login(django_user_model.objects.create_user("stranger", password="pw-stranger-1"))
    assert client.get("/study/graded/benchmark/").status_code == 403
    owner = django_user_model.objects.create_user("owner", password="pw-owner-1")
    benchmarked.owners.add(owner)
    client.force_login(owner)
    html = client.get("/study/graded/benchmark/").content.decode()
    assert "/admin/" not in html  # owners who are not staff get no admin link


def test_the_raters_page_shares_the_layout(client, owner, small_study):
    client.force_login(owner)
    html = client.get("/study/s1/raters/").content.decode()
    assert f'href="{STYLESHEET}"' in html and 'data-nav="raters" aria-current="page"' in html
    assert 'href="/study/s1/dashboard/"' in html


# --- the stylesheet is a static file, served after collectstatic too ---------------------------


def test_the_stylesheet_is_collected_and_served_by_whitenoise(tmp_path):
    from whitenoise.middleware import WhiteNoiseMiddleware

    assert finders.find("dashboard/reports.css")
    with override_settings(STATIC_ROOT=tmp_path / "static", WHITENOISE_USE_FINDERS=False):
        call_command("collectstatic", "--noinput", verbosity=0)
        assert (tmp_path / "static" / "dashboard" / "reports.css").is_file()
        middleware = WhiteNoiseMiddleware(lambda request: pytest.fail("not served from STATIC_ROOT"))
        response = middleware(RequestFactory().get(STYLESHEET))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/css")


def test_every_page_with_the_layout_renders_for_an_empty_study(admin_client, tmp_path):
    study = plain_study("empty", "Empty")
    import_folder(study, make_pipal_folder(tmp_path / "d"))
    for url in ("/", "/study/empty/dashboard/", "/study/empty/raters/", "/accounts/login/"):
        response = admin_client.get(url)
        assert response.status_code == 200 and f'href="{STYLESHEET}"' in response.content.decode(), url
