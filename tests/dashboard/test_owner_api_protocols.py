"""The owner API with the new protocols: creating an acr/rank-k study and reading its MOS (issue 19)."""

import pytest

from annotation.models import Study
from dashboard.protocol_simulation import simulate_protocol_study
from tests.dashboard.test_owner_api import client_for, read_csv
from tests.factories import import_folder, make_pipal_folder

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", password="pw-owner-1")


def test_an_owner_creates_an_acr_study_on_the_4pp_eusr_scale(owner):
    client = client_for("owner")
    response = client.post(
        "/api/owner/studies/",
        {"slug": "real-fake", "protocol": "acr", "scale": "real-fake-4", "trials_per_rater": 40},
        format="json",
    )
    assert response.status_code == 201, response.content
    study = Study.objects.get(slug="real-fake")
    assert study.protocol == "acr" and study.rating_scale.values == (1, 2, 3, 4)
    assert response.json()["settings"]["protocol"] == "acr"
    refused = client.post("/api/owner/studies/", {"slug": "bad", "protocol": "rank-k", "rank_k": 9}, format="json")
    assert refused.status_code == 400 and "rank_k" in refused.json()["error"]["fields"]
    wrong = client.post(
        "/api/owner/studies/", {"slug": "bad", "protocol": "pairwise-fr", "scale": "acr-5"}, format="json"
    )
    assert wrong.status_code == 400 and "no rating scale" in wrong.json()["error"]["message"]
    assert not Study.objects.filter(slug="bad").exists()


@pytest.mark.parametrize(
    "protocol, columns",
    [
        ("acr", {"mos", "sd", "n", "ci_low", "ci_high", "mle_quality", "mle_ci_low", "mle_ci_high"}),
        ("rank-k", {"mean_rank", "n", "pl_score", "pl_ci_low", "pl_ci_high", "borda"}),
    ],
)
def test_the_mos_of_a_protocol_study_has_its_export_columns(tmp_path, owner, protocol, columns):
    from annotation.studies import study_create

    study = study_create(slug="p1", protocol=protocol, training_trials=0, gold_every=0, min_vote_interval_ms=0)
    study.owners.add(owner)
    import_folder(study, make_pipal_folder(tmp_path / "p1", references=2, types=("01", "02", "03"), levels=(1, 2)))
    simulate_protocol_study(study=study, per_image=6, seed=0)
    client = client_for("owner")
    body = client.get("/api/owner/studies/p1/mos/").json()
    assert body["metadata"]["protocol"] == protocol
    assert len(body["results"]) == 12 and columns <= set(body["results"][0])
    assert all(row["n"] > 0 for row in body["results"])
    if protocol == "acr":  # sureal's fit is left to export_mos: too slow for a request at scale
        assert body["metadata"]["subject_model"].startswith("not computed")
        assert all(row["mle_quality"] is None for row in body["results"])
    table = read_csv(client.get("/api/owner/studies/p1/mos/?format=csv"))
    assert len(table) == 12 and columns <= set(table.columns)


def test_pages_name_the_protocol_and_count_its_ratings(tmp_path, admin_client):
    from annotation.studies import study_create

    study = study_create(slug="p1", protocol="acr", training_trials=0, gold_every=0, min_vote_interval_ms=0)
    import_folder(study, make_pipal_folder(tmp_path / "p1"))
    simulate_protocol_study(study=study, per_image=2, seed=0)
    home = admin_client.get("/").content.decode()
    assert '<td class="num">16</td>' in home  # 8 images x 2 ratings (not halved as pairs are)
    dashboard = admin_client.get("/study/p1/dashboard/").content.decode()
    assert "Absolute category rating" in dashboard and "acr-5" in dashboard and "Ratings so far" in dashboard
    assert "Absolute category rating" in admin_client.get("/admin/annotation/study/").content.decode()
