"""PIPAL Table 2's sub-types in the Table 3 grid (issue #18): "Traditional SR" is the example-based
methods only, every SR sub-type has its own column, and an empty one says so instead of copying
another column."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from django.apps import apps as django_apps

from annotation.models import DistortionType
from iqa import benchmark_tables
from iqa.metric_info import MetricInfo
from sr_models.distortions import base as distortion_base
from sr_models.distortions import get_family, load_catalogue
from sr_models.distortions.subtypes import CATEGORY_SUBTYPES, SR_SUBTYPES
from tests.factories import plain_study

PSNR = MetricInfo("psnr", higher_is_better=True, full_reference=True, source="pyiqa")


def _frame(types: list[tuple[str, str, str]], per_type: int = 12, seed: int = 0) -> pd.DataFrame:
    """A benchmark input: ``per_type`` images of each (code, category, subtype), MOS and a noisy PSNR."""
    rng = np.random.default_rng(seed)
    rows = []
    for code, category, subtype in types:
        for index in range(per_type):
            mos = rng.normal(1500, 60)
            rows.append({
                "image": f"A{index:04d}_{code}_01.bmp", "reference": f"A{index % 4:04d}", "type_code": code,
                "type_name": f"type {code}", "category": category, "subtype": subtype, "mos": mos,
                "psnr": mos / 60 + rng.normal(0, 1.0),
            })
    return pd.DataFrame(rows)


def test_a_study_without_example_based_sr_shows_traditional_sr_as_none_not_a_copy_of_sr_full():
    # The defect: interpolation and kernel-mismatch outputs were counted as "Traditional SR", so on a
    # study of weight-free types its column equalled "SR full".
    frame = _frame([
        ("01", "traditional", "gaussian_blur"),
        ("15", "super_resolution", "interpolation"),
        ("19", "super_resolution", "kernel_mismatch_sr"),
    ])
    result = benchmark_tables.run(frame, [PSNR], resamples=50, min_images=10)
    cells = result.table3["psnr"]
    assert cells["SR full"].n == 24 and cells["SR full"].agreement is not None
    assert cells["Traditional SR"].n == 0 and cells["Traditional SR"].text() == "none in this study"
    assert cells["Interpolation"].n == 12 and cells["Kernel-mismatch SR"].n == 12
    assert cells["Interpolation"].text() != cells["SR full"].text()


def test_one_type_of_each_sr_subtype_gives_five_distinct_sr_columns():
    sr_types = [(f"{40 + i}", "super_resolution", subtype) for i, (subtype, _) in enumerate(SR_SUBTYPES)]
    frame = _frame([("01", "traditional", "gaussian_noise"), *sr_types])
    result = benchmark_tables.run(frame, [PSNR], resamples=50, min_images=10)
    labels = [label for _, label in SR_SUBTYPES]
    assert labels == ["Interpolation", "Traditional SR", "Kernel-mismatch SR", "PSNR-oriented SR", "GAN-based SR"]
    assert result.groups[result.groups.index("SR full") + 1:][:5] == labels
    cells = [result.table3["psnr"][label] for label in labels]
    assert all(cell.n == 12 and cell.agreement is not None for cell in cells)
    # Five different image sets, so five different correlations, none of them SR full's.
    srcc = {round(cell.agreement.srcc, 12) for cell in cells}
    assert len(srcc) == 5 and round(result.table3["psnr"]["SR full"].agreement.srcc, 12) not in srcc


def test_denoising_columns_follow_table_2():
    frame = _frame([
        ("23", "denoising", "mean_filter"), ("26", "denoising", "model_based_denoising"),
        ("54", "denoising", "deep_denoising"),
    ])
    result = benchmark_tables.run(frame, [PSNR], resamples=50, min_images=10)
    assert result.groups == ["Denoising", "Mean-filter denoising", "Model-based denoising", "Deep denoising"]
    assert all(result.table3["psnr"][label].n == 12 for label in result.groups[1:])


def test_families_and_catalogue_declare_table_2_subtypes():
    for entry in load_catalogue():
        allowed = CATEGORY_SUBTYPES.get(entry.category)
        if allowed is not None:
            assert entry.subtype in dict(allowed), entry
    assert get_family("nlm_denoising").subtype == "model_based_denoising"
    assert get_family("interpolation_sr").subtype == "interpolation"
    with pytest.raises(ValueError, match="sub-type 'traditional_sr' is not one of denoising"):
        distortion_base.family("x", category="denoising", subtype="traditional_sr", summary="", params={})


@pytest.mark.django_db
def test_the_migration_files_existing_classical_denoisers_as_model_based():
    study = plain_study("subtypes")
    for code, subtype in (("26", "nlm_denoising"), ("27", "bm3d_denoising"), ("28", "jpeg_artifact_removal"),
                          ("23", "mean_filter")):
        DistortionType.objects.create(study=study, code=code, name=f"t{code}", category="denoising", subtype=subtype)
    DistortionType.objects.create(study=study, code="99", name="other", category="traditional", subtype="nlm_denoising")
    migration = importlib.import_module("annotation.migrations.0013_pipal_subtypes")
    migration.to_pipal_subtypes(django_apps, None)
    subtypes = dict(DistortionType.objects.filter(study=study).values_list("code", "subtype"))
    assert subtypes == {"23": "mean_filter", "26": "model_based_denoising", "27": "model_based_denoising",
                        "28": "model_based_denoising", "99": "nlm_denoising"}


@pytest.mark.django_db
def test_run_benchmark_on_a_study_with_each_sr_subtype_reports_five_distinct_sr_columns(tmp_path):
    from django.core.management import call_command
    from PIL import Image

    from annotation.models import DistortedImage
    from annotation.rating.votes import judgment_record
    from tests.factories import import_folder

    folder = tmp_path / "subtypes"
    (folder / "Ref").mkdir(parents=True)
    (folder / "Dis").mkdir()
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:48, 0:48]
    sr_codes = {f"{41 + i}": subtype for i, (subtype, _) in enumerate(SR_SUBTYPES)}
    for r in range(3):
        base = (128 + 60 * np.sin(x / (3 + r)) + 40 * np.cos(y / 4)).clip(0, 255)
        reference = np.stack([base, base[::-1], base.T], axis=-1).astype(np.uint8)
        Image.fromarray(reference).save(folder / "Ref" / f"R{r:03d}.png")
        for code in sr_codes:
            for level in range(1, 4):
                strength = level + rng.uniform(0, 1.5)  # each type its own mix of strengths
                noisy = (reference + rng.normal(0, 5 * strength, reference.shape)).clip(0, 255).astype(np.uint8)
                Image.fromarray(noisy).save(folder / "Dis" / f"R{r:03d}_{code}_{level:02d}.png")
    rows = "".join(f"{code},SR {subtype},super_resolution,{subtype}\n" for code, subtype in sr_codes.items())
    (folder / "distortion_types.csv").write_text("id,name,category,subtype\n" + rows)
    study = plain_study("sr-subtypes")
    import_folder(study, folder)
    images = list(DistortedImage.objects.filter(study=study))
    for i, a in enumerate(images):
        for b in images[i + 1:]:
            if a.reference_id == b.reference_id:
                judgment_record(study=study, image_a_id=a.id, image_b_id=b.id, a_wins=a.level < b.level)
    call_command("compute_scores", study.slug, "--metrics", "psnr", "--device", "cpu")
    out = tmp_path / "report"
    call_command("run_benchmark", study.slug, "--metrics", "psnr", "--out", str(out), "--min-images", "5",
                 "--resamples", "50")
    table = pd.read_csv(out / "benchmark.csv").set_index("group")
    labels = [label for _, label in SR_SUBTYPES]
    sr_cells = table.loc[labels]
    assert (sr_cells.n == 9).all() and sr_cells.srcc.notna().all()
    # Five image sets: no column is a copy of another or of "SR full" (45 images).
    assert table.loc["SR full"].n == 45
    assert len({tuple(row) for row in sr_cells[["srcc", "plcc", "krcc"]].round(12).to_numpy()}) == 5
