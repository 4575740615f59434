"""The closed loop of issue 21, every step a command: a study's judgments -> rank dataset -> Ranker ->
train_sr_gan ranksrgan -> a checkpoint trained by the platform -> a new distortion type of the running
study -> its MOS beside the other types'. Networks are tiny and VGG19 has random (scratch) weights, so
nothing here is a quality result: the test checks that the path works end to end and what it records."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from django.core.management import call_command
from PIL import Image

from annotation.models import DistortedImage
from annotation.rating.votes import judgment_record
from tests.factories import graded_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def weights_dir(settings, tmp_path):
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"  # iqa.apps and sr_models.apps follow the setting
    return settings.PIPAL_WEIGHTS_DIR


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_a_studys_judgments_train_a_ranksrgan_that_joins_the_study(tmp_path, weights_dir):
    study = graded_study(tmp_path, slug="lab", references=3)  # 48x48 references, MOS follows the level
    quiet = io.StringIO()
    call_command("build_rank_dataset", str(tmp_path / "rank"), source="study", study="lab", validation=0.3,
                 stdout=quiet)  # fmt: skip
    call_command("train_ranker", str(tmp_path / "rank"), name="lab-ranker", iterations=3, nf=4, crop=40, batch=4,
                 threads=1, stdout=quiet)  # fmt: skip
    out = io.StringIO()
    call_command(
        "train_sr_gan", "ranksrgan", "--study", "lab", "--ranker", "lab-ranker", "--feature-net", "scratch",
        "--name", "ranksrgan_lab", "--nf", "8", "--nb", "1", "--d-nf", "8", "--batch", "2", "--patch", "32",
        "--iterations", "2", "--threads", "1", stdout=out,
    )  # fmt: skip
    assert "random (scratch)" in out.getvalue()  # printed beside the numbers: not the paper's perceptual loss
    checkpoint = weights_dir / "trained" / "ranksrgan_lab.pth"
    provenance = torch.load(checkpoint, weights_only=True)["provenance"]
    assert provenance["trained_by"] == "train_sr_gan" and "trained by the platform on study lab" in provenance["label"]

    Image.fromarray(np.full((12, 12, 3), 128, np.uint8)).save(tmp_path / "lr.png")
    call_command("sr_infer", "trained:ranksrgan_lab", str(tmp_path / "lr.png"), str(tmp_path / "sr.png"), stdout=quiet)
    with Image.open(tmp_path / "sr.png") as upscaled:
        assert upscaled.size == (48, 48)  # x4

    catalogue = tmp_path / "lab_catalogue.csv"
    catalogue.write_text(
        "type_id,name,family,category,subtype,level,params_json\n"
        '90,RankSRGAN (lab Ranker) x4,gan_sr_network,super_resolution,gan_sr,01,"{""checkpoint"": '
        '""trained:ranksrgan_lab""}"\n'
    )
    call_command("generate_distortions", "lab", "--catalogue", str(catalogue), "--types", "90", stdout=quiet)
    new = list(DistortedImage.objects.filter(study=study, distortion_type__code="90"))
    assert len(new) == 3 and all(image.width == image.height == 48 for image in new)
    assert all(image.provenance["params"]["checkpoint"] == "trained:ranksrgan_lab" for image in new)

    old = {
        image.reference_id: image
        for image in DistortedImage.objects.filter(study=study, level=1, distortion_type__code="01")
    }
    for image in new:  # the new type joins the running study: its images meet the old ones in pairs
        judgment_record(study=study, image_a_id=image.id, image_b_id=old[image.reference_id].id, a_wins=True)
    target = tmp_path / "mos.csv"
    call_command("export_mos", "lab", "--out", str(target), stdout=quiet)
    mos = pd.read_csv(target, dtype={"distortion_type": str})
    assert set(mos["distortion_type"]) == {"01", "02", "90"}
    assert (mos.loc[mos["distortion_type"] == "90", "judgments"] == 1).all()
    assert json.loads(target.with_name("mos.csv.json").read_text())["judgments"] > 0
