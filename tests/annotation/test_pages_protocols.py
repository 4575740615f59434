"""The welcome and rating pages of each protocol, with Django's test client: the question the
rater is asked, the scale's answers and the controls of the protocol."""

import html

import pytest

from annotation.models import Study
from annotation.rating import scales
from annotation.studies import study_create
from tests.factories import import_folder, make_pipal_folder

pytestmark = pytest.mark.django_db


def protocol_study(tmp_path, protocol: str, **fields) -> Study:
    study = study_create(slug="proto", trials_per_rater=4, training_trials=1, gold_every=0)
    study.protocol = protocol
    for name, value in fields.items():
        setattr(study, name, value)
    study.full_clean()
    study.save()
    import_folder(study, make_pipal_folder(tmp_path / "d", types=("01", "02"), levels=(1, 2, 3)))
    return study


def text(response) -> str:
    """A page's HTML, entities decoded and white space collapsed as the browser shows it."""
    return " ".join(html.unescape(response.content.decode()).split())


def pages(client) -> tuple[str, str]:
    """The welcome page, then the rating page after joining."""
    welcome = text(client.get("/study/proto/"))
    client.post("/study/proto/", {"external_id": "p1", "consent": "on"})
    return welcome, text(client.get("/study/proto/rate/"))


def test_pairwise_no_reference_asks_which_is_more_natural_without_a_reference(tmp_path, client):
    protocol_study(tmp_path, "pairwise-nr", zoom_patch=64)
    welcome, rate = pages(client)
    question = "Which image is more natural and realistic?"
    assert question in welcome and question in rate
    assert 'data-protocol="pairwise-nr"' in rate
    assert 'id="left-zoom"' in rate and 'id="right-zoom"' in rate
    assert 'id="reference-slot"' not in rate and "more similar to the reference" not in rate
    assert "same small patch of both is shown enlarged" in welcome


def test_pairwise_full_reference_keeps_its_page(tmp_path, client):
    protocol_study(tmp_path, "pairwise-fr")
    welcome, rate = pages(client)
    question = "Which of the two images is more similar to the reference?"
    assert question in welcome and question in rate
    assert 'id="reference-slot"' in rate and 'id="left-zoom"' not in rate
    assert "Practice pair: you will be told the answer." in rate and "three images side by side" in welcome


def test_acr_shows_the_scale_question_and_one_button_per_category(tmp_path, client):
    protocol_study(tmp_path, "acr")
    welcome, rate = pages(client)
    scale = scales.built_in("acr-5")
    assert scale.question in welcome and scale.question in rate
    for category in scale.categories:
        assert f'data-score="{category.value}"' in rate
        assert f'data-key="{category.key}" disabled>{category.label} <kbd class="key">{category.key}</kbd>' in rate
        assert f"<kbd>{category.key}</kbd> {category.label}" in welcome
    assert 'id="item-1-slot"' in rate and 'id="reference-slot"' not in rate and 'id="scale-slider"' not in rate
    assert "Practice trial: you will be told the answer." in rate


def test_acr_on_a_continuous_scale_shows_a_slider_between_its_anchors(tmp_path, client):
    protocol_study(tmp_path, "acr", scale=scales.built_in("acr-5", continuous=True).to_json())
    welcome, rate = pages(client)
    assert 'id="scale-slider"' in rate and 'min="1.0"' in rate and 'max="5.0"' in rate
    assert 'value="3.0"' in rate and 'step="0.04"' in rate
    assert '<span class="anchor" id="scale-low">Bad</span>' in rate
    assert '<span class="anchor" id="scale-high">Excellent</span>' in rate
    assert 'id="scale-submit"' in rate and 'class="category"' not in rate
    assert "Move the slider between “Bad” and “Excellent”" in welcome


def test_dcr_puts_the_reference_beside_the_image_and_shows_its_scale(tmp_path, client):
    protocol_study(tmp_path, "dcr")
    welcome, rate = pages(client)
    scale = scales.built_in("dcr-5")
    assert scale.question in welcome and scale.question in rate
    assert rate.index('id="reference-slot"') < rate.index('id="item-1-slot"')
    for category in scale.categories:
        assert f">{category.label} <kbd" in rate


def test_a_study_of_its_own_scale_asks_its_question(tmp_path, client):
    own = {
        "name": "real-fake",
        "question": "Does this image look like a real photograph?",
        "categories": [{"value": 0, "label": "Fake", "key": "1"}, {"value": 1, "label": "Real", "key": "2"}],
    }
    protocol_study(tmp_path, "acr", scale=own)
    welcome, rate = pages(client)
    assert own["question"] in welcome and own["question"] in rate
    assert 'data-score="0"' in rate and ">Fake <kbd" in rate and ">Real <kbd" in rate


def test_rank_k_shows_k_images_to_order_with_their_keys(tmp_path, client):
    protocol_study(tmp_path, "rank-k", rank_k=3)
    welcome, rate = pages(client)
    question = "Rank these images from best to worst visual quality"
    assert question in welcome and question in rate
    assert [f'id="rank-item-{n}"' in rate for n in (1, 2, 3, 4)] == [True, True, True, False]
    assert 'id="ranking-list"' in rate and 'id="rank-submit"' in rate and 'id="rank-undo"' in rate
    assert "You will see 3 versions of the same picture" in welcome and "<kbd>3</kbd>" in welcome
