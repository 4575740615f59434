"""The rater API under each protocol: trials of the right shape, balanced scheduling without
repeats, practice with feedback, hidden checks, and every vote that does not fit refused with 400
naming the field (issue 19)."""

import io
import random
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotation.models import DistortedImage, Ranking, Rater, Rating, StimulusTrial, Study
from annotation.rating.stimulus_trials import stimulus_next, stimulus_submit
from annotation.studies import study_create
from tests.factories import NO_CONTROLS, import_folder, join, make_pipal_folder

pytestmark = pytest.mark.django_db


def protocol_study(tmp_path, protocol: str, slug: str = "p1", **fields) -> Study:
    options = {key: value for key, value in fields.items() if key in ("scale", "continuous", "rank_k")}
    study = study_create(slug=slug, protocol=protocol, **options)
    for key, value in {**NO_CONTROLS, **fields}.items():
        if key not in options:
            setattr(study, key, value)
    study.save()
    import_folder(study, make_pipal_folder(tmp_path / slug))  # 2 references x 4 images
    return study


def next_trial(client, slug="p1"):
    response = client.get(f"/api/studies/{slug}/pairs/next/")
    assert response.status_code == 200, response.content
    return response.json()


def answer(client, body, slug="p1"):
    return client.post(f"/api/studies/{slug}/votes/", {"response_ms": 900, **body}, format="json")


def test_acr_trial_shows_one_image_and_its_scale_and_records_the_score(tmp_path, api):
    study = protocol_study(tmp_path, "acr")
    client = join(api, "p1", "r1")
    trial = next_trial(client)
    assert trial["protocol"] == "acr" and trial["reference"] is None and len(trial["items"]) == 1
    assert [category["label"] for category in trial["scale"]["categories"]] == [
        "Bad",
        "Poor",
        "Fair",
        "Good",
        "Excellent",
    ]
    assert "left" not in trial and "score" not in str(trial["items"])
    response = answer(client, {"assignment": trial["assignment"], "score": 4})
    assert response.status_code == 201, response.content
    rating = Rating.objects.get()
    image = DistortedImage.objects.get(pk=rating.image_id)
    assert rating.score == 4 and rating.rater.external_id == "r1" and rating.response_ms == 900
    assert image.judgment_count == 1 and image.mos == 4
    assert response.json()["next"]["assignment"] != trial["assignment"]
    assert study.protocol == "acr"


def test_dcr_trial_shows_the_reference_beside_the_image(tmp_path, api):
    protocol_study(tmp_path, "dcr")
    trial = next_trial(join(api, "p1", "r1"))
    assert trial["reference"] is not None and len(trial["items"]) == 1
    assert trial["scale"]["name"] == "dcr-5" and trial["scale"]["categories"][-1]["label"].endswith("imperceptible")


def test_four_point_real_fake_scale_of_4pp_eusr(tmp_path, api):
    protocol_study(tmp_path, "acr", scale="real-fake-4")
    client = join(api, "p1", "r1")
    trial = next_trial(client)
    assert [c["value"] for c in trial["scale"]["categories"]] == [1, 2, 3, 4]
    refused = answer(client, {"assignment": trial["assignment"], "score": 5})
    assert refused.status_code == 400
    assert "score" in refused.json()["error"]["fields"] and "outside the scale" in refused.json()["error"]["message"]
    assert not Rating.objects.exists()


@pytest.mark.parametrize(
    "protocol, body, field",
    [
        ("acr", {"choice": "left"}, "choice"),  # a pair vote on an ACR study
        ("acr", {"score": 2.5}, "score"),  # between categories of a category scale
        ("acr", {"score": 0}, "score"),
        ("acr", {"order": ["a", "b"]}, "order"),
        ("dcr", {"score": 6}, "score"),
        ("rank-k", {"score": 3}, "score"),
        ("rank-k", {"choice": "right"}, "choice"),
        ("rank-k", {"order": []}, "order"),
        ("pairwise-fr", {"score": 3}, "score"),
        ("pairwise-nr", {"order": ["a", "b"]}, "order"),
        ("acr", {}, "score"),
        ("rank-k", {}, "order"),
    ],
)
def test_votes_that_do_not_fit_the_protocol_are_refused_naming_the_field(tmp_path, api, protocol, body, field):
    protocol_study(tmp_path, protocol)
    client = join(api, "p1", "r1")
    trial = next_trial(client)
    response = answer(client, {"assignment": trial["assignment"], **body})
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not Rating.objects.exists() and not Ranking.objects.exists()
    assert StimulusTrial.objects.filter(status="voted").count() == 0


@pytest.mark.parametrize(
    "order",
    [
        lambda ids: ids[:-1],  # one missing
        lambda ids: ids[:-1] + ids[:1],  # a repeat
        lambda ids: ids[:-1] + ["not-shown"],  # an item not shown
    ],
)
def test_a_ranking_that_is_not_a_permutation_of_the_shown_items_is_refused(tmp_path, api, order):
    protocol_study(tmp_path, "rank-k", rank_k=3)
    client = join(api, "p1", "r1")
    trial = next_trial(client)
    ids = [item["id"] for item in trial["items"]]
    response = answer(client, {"assignment": trial["assignment"], "order": order(ids)})
    assert response.status_code == 400
    assert "order" in response.json()["error"]["fields"]
    assert "exactly once" in response.json()["error"]["message"]
    assert not Ranking.objects.exists()


def test_rank_k_shows_k_versions_of_one_source_and_logs_the_order(tmp_path, api):
    protocol_study(tmp_path, "rank-k", rank_k=3)
    client = join(api, "p1", "r1")
    trial = next_trial(client)
    assert trial["protocol"] == "rank-k" and trial["scale"] is None and len(trial["items"]) == 3
    ids = [item["id"] for item in trial["items"]]
    response = answer(client, {"assignment": trial["assignment"], "order": list(reversed(ids))})
    assert response.status_code == 201, response.content
    ranking = Ranking.objects.get()
    shown = StimulusTrial.objects.get(token=trial["assignment"]).images
    assert ranking.order == list(reversed(shown))
    images = DistortedImage.objects.in_bulk(shown)
    assert len({images[i].reference_id for i in shown}) == 1
    assert [images[i].mos for i in ranking.order] == [1.0, 0.5, 0.0]  # normalised Borda, best first


def test_a_trial_counts_once_and_the_open_trial_comes_back(tmp_path, api):
    protocol_study(tmp_path, "acr")
    client = join(api, "p1", "r1")
    trial = next_trial(client)
    assert next_trial(client)["assignment"] == trial["assignment"]  # a reload cannot skip it
    assert answer(client, {"assignment": trial["assignment"], "score": 3}).status_code == 201
    again = answer(client, {"assignment": trial["assignment"], "score": 3})
    assert again.status_code == 409 and Rating.objects.count() == 1


def test_acr_scheduling_balances_counts_and_never_repeats_an_image_for_a_rater(tmp_path):
    study = protocol_study(tmp_path, "acr")
    images = DistortedImage.objects.filter(study=study).count()
    raters = [Rater.objects.create(study=study, external_id=f"r{i}", token_hash=f"h{i}") for i in range(6)]
    rng = random.Random(3)
    for _round in range(images):
        for rater in raters:
            trial = stimulus_next(study=study, rater=rater, rng=rng)
            stimulus_submit(
                study=study, rater=rater, token=trial.token, score=3, response_ms=900, with_next=False, rng=rng
            )
        counts = Counter(Rating.objects.values_list("image_id", flat=True))
        assert (
            max(counts.values()) - min(counts.get(i, 0) for i in DistortedImage.objects.values_list("id", flat=True))
            <= 1
        )
    for rater in raters:
        seen = list(Rating.objects.filter(rater=rater).values_list("image_id", flat=True))
        assert len(seen) == len(set(seen)) == images
        assert stimulus_next(study=study, rater=rater, rng=rng) is None  # every image rated: done
    assert Rater.objects.filter(finished_at__isnull=False).count() == len(raters)
    first_images = {Rating.objects.filter(rater=rater).first().image_id for rater in raters}
    assert len(first_images) > 1  # the order is randomised per rater


def test_rank_k_subsets_are_balanced_and_never_repeat_for_a_rater(tmp_path):
    study = protocol_study(tmp_path, "rank-k", rank_k=2)
    rater = Rater.objects.create(study=study, external_id="r1", token_hash="h1")
    rng = random.Random(5)
    subsets = []
    while (trial := stimulus_next(study=study, rater=rater, rng=rng)) is not None:
        subsets.append(trial.trial.subset_key)
        stimulus_submit(
            study=study,
            rater=rater,
            token=trial.token,
            order=[item.id for item in trial.items],
            response_ms=900,
            with_next=False,
        )
    # 2 references x C(4, 2) pairs: every pair once, none twice
    assert len(subsets) == len(set(subsets)) == 12
    counts = Counter(image for ranking in Ranking.objects.all() for image in ranking.order)
    assert set(counts.values()) == {3}


def test_practice_gives_feedback_and_a_failed_trap_screens_the_rater_out(tmp_path, api):
    study = protocol_study(tmp_path, "acr", training_trials=2, gold_every=2)
    client = join(api, "p1", "r1")
    first = next_trial(client)
    assert first["phase"] == "training"
    practice = StimulusTrial.objects.get(token=first["assignment"])
    assert practice.construction == "reference"  # the undegraded source: the scale's top half
    response = answer(client, {"assignment": first["assignment"], "score": 1})
    feedback = response.json()["feedback"]
    assert feedback["correct"] is False and "Excellent" in feedback["message"]
    second = response.json()["next"]
    assert StimulusTrial.objects.get(token=second["assignment"]).construction == "decoy"
    response = answer(client, {"assignment": second["assignment"], "score": 1})
    assert response.json()["feedback"]["correct"] is True
    rater = Rater.objects.get(external_id="r1")
    # rated trials with a hidden check among them; answering the check wrongly voids the session
    trial = response.json()["next"]
    while trial is not None:
        row = StimulusTrial.objects.get(token=trial["assignment"])
        assert trial["phase"] == "rating"  # a check looks like any rated trial
        score = 5 if row.kind == "gold" else 3
        trial = answer(client, {"assignment": trial["assignment"], "score": score}).json()["next"]
        if row.kind == "gold":
            break
    rater.refresh_from_db()
    assert rater.excluded and "hidden check" in rater.exclusion_reason
    assert trial is None
    assert study.protocol == "acr"


def test_rank_k_check_is_an_obviously_ordered_set(tmp_path):
    study = protocol_study(tmp_path, "rank-k", rank_k=4, training_trials=1)
    rater = Rater.objects.create(study=study, external_id="r1", token_hash="h1")
    trial = stimulus_next(study=study, rater=rater, rng=random.Random(1))
    assert trial.phase == "training" and trial.trial.construction == "ladder" and len(trial.items) == 4
    expected = trial.trial.expected["order"]
    outcome = stimulus_submit(
        study=study,
        rater=rater,
        token=trial.token,
        order=[trial.items[index].id for index in expected],
        response_ms=900,
        with_next=False,
    )
    assert outcome.feedback["correct"] is True and outcome.entry is None
    assert not Ranking.objects.exists()


def test_pairwise_nr_pairs_carry_no_reference_and_a_zoomed_patch(tmp_path, api):
    protocol_study(tmp_path, "pairwise-nr", zoom_patch=8)
    client = join(api, "p1", "r1")
    trial = next_trial(client)
    assert trial["protocol"] == "pairwise-nr" and trial["reference"] is None
    zoom = trial["zoom"]
    assert zoom["size"] == 8 and 0 <= zoom["x"] <= 32 - 8 and 0 <= zoom["y"] <= 32 - 8
    assert answer(client, {"assignment": trial["assignment"], "choice": "left"}).status_code == 201


def test_pairwise_fr_trials_name_their_protocol_and_keep_the_reference(small_study, api):
    client = join(api, "s1", "r1")
    trial = client.get("/api/studies/s1/pairs/next/").json()
    assert trial["protocol"] == "pairwise-fr" and trial["reference"]["url"] and "zoom" not in trial


def test_scales_on_the_wrong_protocol_and_malformed_scales_are_refused(db):
    from core.errors import ApplicationError

    with pytest.raises(ApplicationError, match="no rating scale"):
        study_create(slug="x1", protocol="pairwise-fr", scale="acr-5")
    with pytest.raises(ApplicationError, match="unknown scale"):
        study_create(slug="x2", protocol="acr", scale="acr-7")
    with pytest.raises(ApplicationError, match="rising order"):
        study_create(
            slug="x3",
            protocol="acr",
            scale={
                "name": "mine",
                "question": "Q?",
                "categories": [{"value": 2, "label": "a"}, {"value": 1, "label": "b"}],
            },
        )
    assert not Study.objects.exists()


def test_excluding_a_rater_takes_their_ratings_out_of_the_mos(tmp_path, django_capture_on_commit_callbacks):
    from annotation.raters import rater_set_excluded

    study = protocol_study(tmp_path, "acr")
    image = DistortedImage.objects.filter(study=study).first()
    raters = [Rater.objects.create(study=study, external_id=f"r{i}", token_hash=f"h{i}") for i in range(2)]
    for rater, score in zip(raters, (5, 1), strict=True):
        trial = StimulusTrial.objects.create(
            study=study,
            rater=rater,
            kind="rating",
            token=f"t{rater.pk}",
            reference=image.reference,
            images=[image.id],
            subset_key=str(image.id),
            files=["x.png"],
            issued_at=timezone.now(),
            expires_at=timezone.now() + timedelta(minutes=5),
        )
        stimulus_submit(study=study, rater=rater, token=trial.token, score=score, response_ms=900, with_next=False)
    image.refresh_from_db()
    assert (image.mos, image.judgment_count) == (3, 2) and image.mos_std == pytest.approx(2 ** 1.5)
    with django_capture_on_commit_callbacks(execute=True):
        rater_set_excluded(rater=raters[1], excluded=True, reason="flagged by screening")
    image.refresh_from_db()
    assert (image.mos, image.judgment_count) == (5, 1)
    # recompute_mos on a protocol study recomputes from its log (there is no Elo to replay)
    DistortedImage.objects.filter(pk=image.pk).update(mos=0, judgment_count=7)
    call_command("recompute_mos", study.slug, stdout=io.StringIO())
    image.refresh_from_db()
    assert (image.mos, image.judgment_count) == (5, 1)


def test_create_study_takes_the_protocol_and_a_scale_by_name_or_file(tmp_path, db):
    out = io.StringIO()
    call_command("create_study", "eusr", "--protocol", "acr", "--scale", "real-fake-4", "--continuous", stdout=out)
    assert "created acr study eusr on the scale real-fake-4" in out.getvalue()
    study = Study.objects.get(slug="eusr")
    assert study.rating_scale.continuous and study.rating_scale.values == (1, 2, 3, 4)
    own = tmp_path / "scale.json"
    own.write_text(
        '{"name": "sharp-3", "question": "How sharp is it?", "categories": '
        '[{"value": 1, "label": "Blurry"}, {"value": 2, "label": "OK"}, {"value": 3, "label": "Sharp"}]}'
    )
    call_command("create_study", "own", "--protocol", "dcr", "--scale", str(own), stdout=out)
    assert Study.objects.get(slug="own").rating_scale.describe() == "one of 1 (Blurry), 2 (OK), 3 (Sharp)"
    call_command("create_study", "ranks", "--protocol", "rank-k", "--rank-k", "5", stdout=out)
    assert Study.objects.get(slug="ranks").rank_k == 5
    with pytest.raises(CommandError, match="no rating scale"):
        call_command("create_study", "bad", "--scale", "acr-5", stdout=out)
    with pytest.raises(CommandError, match="rank_k"):
        call_command("create_study", "bad", "--protocol", "rank-k", "--rank-k", "7", stdout=out)
    assert not Study.objects.filter(slug="bad").exists()


def test_rater_quality_of_a_rating_study_has_no_side_and_counts_failed_checks(tmp_path):
    from annotation.selectors import rater_qualities

    study = protocol_study(tmp_path, "acr", gold_every=5, flag_min_trials=4)
    careful, careless = (Rater.objects.create(study=study, external_id=f"r{i}", token_hash=f"h{i}") for i in range(2))
    rng = random.Random(2)
    for rater, trap_score in ((careful, 1), (careless, 5)):
        while (trial := stimulus_next(study=study, rater=rater, rng=rng)) is not None:
            score = trap_score if trial.trial.kind == "gold" else 3
            stimulus_submit(
                study=study, rater=rater, token=trial.token, score=score, response_ms=900, with_next=False
            )
    qualities = rater_qualities(study)
    good, bad = qualities[careful.id], qualities[careless.id]
    assert good.trials >= 4 and good.flags == []  # every vote is "right" of no pair: no side bias
    assert bad.gold_failed == 1 and "failed gold pair" in bad.flags
