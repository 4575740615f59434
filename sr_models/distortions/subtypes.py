"""PIPAL Table 2's sub-types inside its super-resolution and denoising categories (pure Python).

Table 2 (Gu et al., ECCV 2020, Sec. 3.1) lists the SR outputs as "interpolation method, traditional
methods, SR with kernel mismatch, PSNR-oriented methods, GAN-based methods" and the denoising outputs
as "mean filtering, traditional methods, deep-learning-based methods"; its text calls the traditional
denoisers "model-based". "Traditional SR" means the example-based methods (A+, ANR, sparse coding),
never interpolation or a kernel mismatch. Families declare one of these sub-types for their category;
the benchmark's Table 3 grid has one column per sub-type in this order.
"""

from __future__ import annotations

# (sub-type, the benchmark column's label), in Table 2's order.
SR_SUBTYPES = (
    ("interpolation", "Interpolation"),
    ("traditional_sr", "Traditional SR"),
    ("kernel_mismatch_sr", "Kernel-mismatch SR"),
    ("psnr_sr", "PSNR-oriented SR"),
    ("gan_sr", "GAN-based SR"),
)
DENOISING_SUBTYPES = (
    ("mean_filter", "Mean-filter denoising"),
    ("model_based_denoising", "Model-based denoising"),
    ("deep_denoising", "Deep denoising"),
)
CATEGORY_SUBTYPES = {"super_resolution": SR_SUBTYPES, "denoising": DENOISING_SUBTYPES}

# The classical denoisers' sub-types before PIPAL's split; the annotation app's migration maps
# existing studies' types with these names onto "model_based_denoising".
FORMER_MODEL_BASED_DENOISING = ("nlm_denoising", "bm3d_denoising", "jpeg_artifact_removal")


def check_subtype(category: str, subtype: str) -> None:
    """A family of the SR or denoising category must declare one of Table 2's sub-types."""
    allowed = CATEGORY_SUBTYPES.get(category)
    if allowed is not None and subtype not in dict(allowed):
        raise ValueError(
            f"sub-type {subtype!r} is not one of {category}'s (PIPAL Table 2): {', '.join(dict(allowed))}"
        )
