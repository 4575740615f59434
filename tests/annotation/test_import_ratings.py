"""import_ratings: published per-rater scores (acr, dcr) and rankings (rank-k) go into the study's log
all or nothing, every refusal naming its line; the study's scores are recomputed from the log, and a
re-analysis of a planted dataset flags the planted raters."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.analysis import synthetic_raters
from annotation.analysis.protocol_results import rater_screening
from annotation.models import DistortedImage, Ranking, Rating, Study
from tests.factories import import_folder, make_pipal_folder, plain_study

pytestmark = pytest.mark.django_db

# small_study's images: references R0001 and R0002, types 01 and 02, levels 1 and 2.
A, B, C, D = "R0001_01_01.png", "R0001_01_02.png", "R0001_02_01.png", "R0001_02_02.png"
OTHER = "R0002_01_01.png"


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args, match: str) -> str:
    with pytest.raises(CommandError) as error:
        run(*args)
    assert match in str(error.value), str(error.value)
    return str(error.value)


def write(tmp_path: Path, text: str, name: str = "ratings.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def with_protocol(study: Study, protocol: str) -> Study:
    study.protocol = protocol
    study.save()
    return study


@pytest.fixture
def acr_study(small_study):
    return with_protocol(small_study, Study.Protocol.ACR)


@pytest.fixture
def rank_study(small_study):
    return with_protocol(small_study, Study.Protocol.RANK_K)


def image(name: str) -> DistortedImage:
    return DistortedImage.objects.get(name=name)


# --- scores ---------------------------------------------------------------------------------


def test_a_scores_import_stores_the_ratings_and_computes_the_mos(acr_study, tmp_path):
    path = write(tmp_path, f"rater,image,score\nr1,{A},5\nr2,{A},4\nr3,{A},3\nr1,{B},2\nr2,{B},2\n")

    output = run("import_ratings", "s1", str(path))

    assert "imported 5 rating(s) by 3 rater(s) of 2 image(s)" in output
    stored = Rating.objects.order_by("id")
    assert [(r.external_rater, r.rater_id, r.source, r.image.name, r.score) for r in stored] == [
        ("r1", None, "import", A, 5.0), ("r2", None, "import", A, 4.0), ("r3", None, "import", A, 3.0),
        ("r1", None, "import", B, 2.0), ("r2", None, "import", B, 2.0),
    ]  # fmt: skip
    a, b, c = image(A), image(B), image(C)
    assert (a.judgment_count, a.mos, a.mos_std) == (3, 4.0, 1.0)  # mean of 5, 4, 3; SD (n - 1) 1
    assert (b.judgment_count, b.mos, b.mos_std) == (2, 2.0, 0.0)
    assert (c.judgment_count, c.mos_std) == (0, None)


def test_the_format_is_taken_from_the_protocol_and_must_agree_with_it(acr_study, tmp_path):
    path = write(tmp_path, f"rater,image,score\nr1,{A},5\n")
    refused("import_ratings", "s1", str(path), "--format", "rankings", match="takes scores (rater,image,score)")
    assert run("import_ratings", "s1", str(path), "--format", "scores").startswith("imported 1 rating(s)")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (f"r1,{A},4\nr2,{A},6\n", "ratings.csv line 3: score 6 is outside the scale: one of 1 (Bad), 2 (Poor), "
         "3 (Fair), 4 (Good), 5 (Excellent)"),
        (f"r1,{A},4.5\n", "line 2: score 4.5 is outside the scale"),
        (f"r1,{A},good\n", "line 2: score 'good' is not a number"),
        (f"r1,{A},4\nr1,nope.png,4\n", "line 3: image 'nope.png' is not an image of study s1"),
        (f"r1,{A},4\nr1,{B},4\nr1,{C}\n", "line 4: expected 3 fields (rater,image,score), got 2"),
        (f"r1,{A},4\n,{B},4\n", "line 3: rater must not be empty"),
        (f"r1,{A},4\nr2,{A},4\nr3,{A},4\nr1,{A},2\n", f"line 5: rater 'r1' rated image '{A}' twice (lines 2 and 5)"),
    ],
    ids=["outside-scale", "between-categories", "not-a-number", "unknown-image", "malformed", "no-rater", "duplicate"],
)  # fmt: skip
def test_a_bad_scores_row_refuses_the_file_naming_its_line(acr_study, tmp_path, rows, message):
    path = write(tmp_path, "rater,image,score\n" + rows)
    text = refused("import_ratings", "s1", str(path), match=message)
    assert "nothing was stored" in text
    assert not Rating.objects.exists()
    assert set(DistortedImage.objects.values_list("judgment_count", flat=True)) == {0}


def test_extra_or_missing_columns_are_refused(acr_study, tmp_path):
    extra = write(tmp_path, f"rater,image,score,comment\nr1,{A},4,ok\n")
    refused("import_ratings", "s1", str(extra), match="line 1: the header must be rater,image,score (unknown: comment)")
    rankings_file = write(tmp_path, f"rater,order\nr1,{A}>{B}\n", "rankings.csv")
    refused("import_ratings", "s1", str(rankings_file), match="missing: image, score; unknown: order")
    assert not Rating.objects.exists()


def test_a_refused_file_leaves_an_earlier_import_as_it_was(acr_study, tmp_path):
    run("import_ratings", "s1", str(write(tmp_path, f"rater,image,score\nr1,{A},5\nr2,{A},3\n")))
    before = list(DistortedImage.objects.order_by("id").values_list("judgment_count", "mos", "mos_std"))

    bad = write(tmp_path, f"rater,image,score\nr3,{A},1\nr3,{B},9\n", "more.csv")
    refused("import_ratings", "s1", str(bad), match="more.csv line 3: score 9 is outside the scale")

    assert Rating.objects.count() == 2
    assert list(DistortedImage.objects.order_by("id").values_list("judgment_count", "mos", "mos_std")) == before


def test_a_rating_already_in_the_log_is_refused_naming_the_line(acr_study, tmp_path):
    run("import_ratings", "s1", str(write(tmp_path, f"rater,image,score\nr1,{A},5\n")))
    again = write(tmp_path, f"rater,image,score\nr2,{A},4\nr1,{A},5\n", "again.csv")
    refused("import_ratings", "s1", str(again), match="again.csv line 3: rater 'r1' already has a rating of image")
    assert Rating.objects.count() == 1


def test_a_dcr_study_takes_scores_on_its_impairment_scale(small_study, tmp_path):
    with_protocol(small_study, Study.Protocol.DCR)
    refused(
        "import_ratings", "s1", str(write(tmp_path, f"rater,image,score\nr1,{A},0\n")),
        match="line 2: score 0 is outside the scale: one of 1 (Degradation is very annoying)",
    )  # fmt: skip
    run("import_ratings", "s1", str(write(tmp_path, f"rater,image,score\nr1,{A},5\nr2,{A},4\n", "ok.csv")))
    assert (image(A).judgment_count, image(A).mos) == (2, 4.5)


def test_a_pairwise_study_refuses_imported_ratings(small_study, tmp_path):
    path = write(tmp_path, f"rater,image,score\nr1,{A},5\n")
    refused("import_ratings", "s1", str(path), match="runs the pairwise-fr protocol")
    assert not Rating.objects.exists()


# --- rankings -------------------------------------------------------------------------------


def test_a_rankings_import_stores_the_orders_and_computes_borda_and_plackett_luce(rank_study, tmp_path):
    rows = [f"r1,{A}>{B}>{C}>{D}", f"r2,{A}>{B}>{C}>{D}", f"r3,{B}>{A}>{C}>{D}", f"r1,{A}>{C}"]
    path = write(tmp_path, "rater,order\n" + "\n".join(rows) + "\n")

    assert "imported 4 ranking(s) by 3 rater(s) of 4 image(s)" in run("import_ratings", "s1", str(path))

    first = Ranking.objects.order_by("id").first()
    assert (first.external_rater, first.rater_id, first.source) == ("r1", None, "import")
    assert first.order == [image(name).id for name in (A, B, C, D)]
    assert first.reference.name == "R0001"
    a, b, c, d = (image(name) for name in (A, B, C, D))
    # Borda (k - position) / (k - 1): A is 1, 1, 2/3 in the 4-rankings and 1 in the pair.
    assert (a.judgment_count, a.mos) == (4, pytest.approx((1 + 1 + 2 / 3 + 1) / 4))
    assert (c.judgment_count, c.mos) == (4, pytest.approx((1 / 3 + 1 / 3 + 1 / 3 + 0) / 4))
    assert (d.judgment_count, d.mos) == (3, 0.0)
    assert a.mos_bt > b.mos_bt > c.mos_bt > d.mos_bt
    assert all(x.bt_ci_low <= x.mos_bt <= x.bt_ci_high for x in (a, b, c, d))
    assert image(OTHER).judgment_count == 0 and image(OTHER).mos_bt is None


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (f"{A}>{B}>{A}", f"line 3: not a permutation: '{A}' ranked twice"),
        (f"{A}>{OTHER}", "line 3: the images belong to several references (R0001, R0002): rank one source"),
        (f"{A}>nope.png", "line 3: not images of study s1: 'nope.png'"),
        (A, "line 3: order ranks 1 image(s): a ranking orders 2 to 6"),
        (">".join([A, B, C, D, "e", "f", "g"]), "line 3: order ranks 7 image(s)"),
        (f"{A}>>{B}", "line 3: order has an empty name"),
    ],
    ids=["repeat", "two-references", "unknown-image", "one-image", "seven-images", "empty-name"],
)
def test_a_bad_ranking_refuses_the_file_naming_its_line(rank_study, tmp_path, order, message):
    path = write(tmp_path, f"rater,order\nr1,{A}>{B}>{C}\nr2,{order}\n")
    text = refused("import_ratings", "s1", str(path), match=message)
    assert "nothing was stored" in text
    assert not Ranking.objects.exists()
    assert set(DistortedImage.objects.values_list("judgment_count", flat=True)) == {0}


def test_the_same_set_ranked_twice_by_a_rater_names_both_lines(rank_study, tmp_path):
    path = write(tmp_path, f"rater,order\nr1,{A}>{B}\nr2,{A}>{B}\nr1,{B}>{A}\n")
    refused("import_ratings", "s1", str(path), match="line 4: rater 'r1' ranked these images twice (lines 2 and 4)")
    assert not Ranking.objects.exists()


def test_a_rank_k_study_refuses_a_scores_file(rank_study, tmp_path):
    path = write(tmp_path, f"rater,image,score\nr1,{A},5\n")
    refused("import_ratings", "s1", str(path), "--format", "scores", match="takes rankings (rater,order), not scores")
    refused("import_ratings", "s1", str(path), match="the header must be rater,order")
    assert not Ranking.objects.exists()


# --- re-analysis of a planted ACR dataset -------------------------------------------------------


def test_the_screening_of_an_imported_acr_dataset_flags_the_planted_raters(db, tmp_path):
    study = plain_study("planted", protocol=Study.Protocol.ACR)
    import_folder(study, make_pipal_folder(tmp_path / "data", references=4, types=("01", "02", "03"), levels=(1, 2)))
    names = sorted(DistortedImage.objects.filter(study=study).values_list("name", flat=True))
    rng = np.random.default_rng(7)
    # True qualities spread over the scale, as a dataset's images are.
    truth = dict(zip(names, np.linspace(1.3, 4.7, len(names)).tolist(), strict=True))
    honest = [synthetic_raters.SyntheticRater(f"honest-{i:02d}", 0.0, 0.4) for i in range(12)]
    biased = synthetic_raters.SyntheticRater("biased", 1.5, 0.4)
    values = (1, 2, 3, 4, 5)
    frames = [
        synthetic_raters.category_scores(truth, [*honest, biased], values, rng),
        synthetic_raters.random_rater("random-1", names, values, rng),
        synthetic_raters.random_rater("random-2", names, values, rng),
    ]
    lines = ["rater,image,score"] + [
        f"{rater},{name},{score:g}" for frame in frames for rater, name, score in frame.itertuples(index=False)
    ]
    run("import_ratings", "planted", str(write(tmp_path, "\n".join(lines) + "\n")))

    screening = rater_screening(study).set_index("rater")

    assert set(screening.index[screening["flagged"]]) == {"biased", "random-1", "random-2"}
    assert screening.loc["biased", "reason"].startswith("bias")
    assert screening.loc["biased", "bias"] == pytest.approx(1.2, abs=0.4)  # +1.5 planted, less what the top clips
    for spammer in ("random-1", "random-2"):
        assert screening.loc[spammer, "pcc_rejected"]
    assert not screening.loc[[rater.name for rater in honest], "flagged"].any()
