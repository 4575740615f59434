"""Every protocol's result feeds the benchmark and the learned metrics' data (issue 19): an ACR
study's MOS is correlated with a metric like PIPAL's Elo MOS, its spread reaches the score
predictor, a rank-k study's rankings become 2AFC triplets, an ACR study is refused by train_lpips."""

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from PIL import Image

from annotation.imports.ratings import ratings_import
from annotation.models import DistortedImage
from annotation.studies import study_create
from core.errors import ApplicationError
from iqa.learned_data import study_mos_images, study_triplets
from tests.factories import import_folder

pytestmark = pytest.mark.django_db

LEVELS = (1, 2, 3, 4)


def noise_folder(root):
    """3 references, one noise type at four levels: a stronger level is clearly worse."""
    rng = np.random.default_rng(0)
    (root / "Ref").mkdir(parents=True)
    (root / "Dis").mkdir()
    y, x = np.mgrid[0:48, 0:48]
    for r in range(3):
        base = (128 + 60 * np.sin(x / (3 + r)) + 40 * np.cos(y / 4)).clip(0, 255)
        reference = np.stack([base, base[::-1], base.T], axis=-1)
        Image.fromarray(reference.astype(np.uint8)).save(root / "Ref" / f"R{r:03d}.png")
        for level in LEVELS:
            noisy = (reference + rng.normal(0, 8 * level, reference.shape)).clip(0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / "Dis" / f"R{r:03d}_01_{level:02d}.png")
    (root / "distortion_types.csv").write_text("id,name,category,subtype\n01,Noise,traditional,noise\n")
    return root


def study_of(tmp_path, protocol: str, **options):
    study = study_create(slug=protocol, protocol=protocol, **options)
    import_folder(study, noise_folder(tmp_path / protocol))
    return study


def test_an_acr_studys_mos_feeds_the_benchmark_and_the_score_predictors_data(tmp_path):
    study = study_of(tmp_path, "acr")
    rng = np.random.default_rng(1)
    lines = ["rater,image,score"]
    for image in DistortedImage.objects.filter(study=study):
        for rater in range(6):
            lines.append(f"r{rater},{image.name},{int(np.clip(6 - image.level + rng.integers(-1, 1), 1, 5))}")
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    ratings_import(study=study, path=tmp_path / "scores.csv")

    images = study_mos_images(study)
    assert len(images) == 12 and all(item.mos_std is not None for item in images)  # the spread of its ratings
    with pytest.raises(ApplicationError, match="no pairs"):
        study_triplets(study)

    call_command("compute_scores", study.slug, "--metrics", "psnr", "--device", "cpu")
    out = tmp_path / "report"
    call_command("run_benchmark", study.slug, "--metrics", "psnr", "--out", str(out), "--min-images", "5",
                 "--resamples", "50")  # fmt: skip
    table = pd.read_csv(out / "benchmark.csv").set_index("group")
    assert table.loc["All", "n"] == 12 and table.loc["All", "srcc"] > 0.8


def test_a_rank_k_studys_rankings_become_triplets(tmp_path):
    study = study_of(tmp_path, "rank-k", rank_k=3)
    by_reference = {}
    for image in DistortedImage.objects.filter(study=study).order_by("level"):
        by_reference.setdefault(image.reference.name, []).append(image.name)
    lines = ["rater,order"] + [f"r1,{'>'.join(names[:3])}" for names in by_reference.values()]
    (tmp_path / "rankings.csv").write_text("\n".join(lines) + "\n")
    ratings_import(study=study, path=tmp_path / "rankings.csv")
    triplets = study_triplets(study)
    assert len(triplets) == 3 * 3  # C(3, 2) pairs per ranking
    levels = {image.name: image.level for image in DistortedImage.objects.filter(study=study)}
    # judge = the share of votes for p1: the milder level always won
    assert all(t.judge == float(levels[t.p1] < levels[t.p0]) for t in triplets)
