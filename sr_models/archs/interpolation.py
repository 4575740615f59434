"""Network interpolation between two checkpoints of one architecture (ESRGAN, Wang et al. 2018, §3.4).

θ_interp = (1 − α)·θ_PSNR + α·θ_GAN, for every entry of the state dict: α = 0 gives the
PSNR-oriented network, α = 1 the GAN one, and values between trade fidelity against
perceptual quality without retraining (ESRGAN §4.4 sweeps α from 0 to 1 in steps of 0.2).
Both state dicts must already be in the same (our) layout: same keys, shapes and dtypes.
Pure: nothing is loaded or built here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def interpolate_state_dicts(psnr_state: Mapping[str, object], gan_state: Mapping[str, object], alpha: float) -> dict:
    """The blend (1 − alpha)·psnr + alpha·gan of every tensor, in ``psnr_state``'s key order.

    Raises ``ValueError`` when alpha is not a finite number in [0, 1], when the key sets differ,
    or when a tensor's shape or dtype differs between the two. Non-floating tensors (counters such
    as BatchNorm's ``num_batches_tracked``) are not blended: they must be equal and are copied.
    """
    import torch

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number in [0, 1], not {alpha!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (0 = PSNR network, 1 = GAN network), not {alpha}")
    psnr_keys, gan_keys = set(psnr_state), set(gan_state)
    if psnr_keys != gan_keys:
        only_psnr = sorted(psnr_keys - gan_keys)[:5]
        only_gan = sorted(gan_keys - psnr_keys)[:5]
        raise ValueError(
            "cannot interpolate state dicts with different keys (convert both to the same layout first): "
            f"only in the PSNR one {only_psnr}, only in the GAN one {only_gan}"
        )
    blended = {}
    for key, a in psnr_state.items():
        b = gan_state[key]
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            raise ValueError(f"{key}: both entries must be tensors")
        if a.shape != b.shape:
            raise ValueError(f"{key}: shape {tuple(a.shape)} in the PSNR state dict, {tuple(b.shape)} in the GAN one")
        if a.dtype != b.dtype:
            raise ValueError(f"{key}: dtype {a.dtype} in the PSNR state dict, {b.dtype} in the GAN one")
        if not a.is_floating_point():
            if not torch.equal(a, b):
                raise ValueError(f"{key}: non-floating entries cannot be blended and differ between the two")
            blended[key] = a.clone()
            continue
        if alpha == 0.0 or alpha == 1.0:  # the endpoints exactly, even where the other has inf/nan
            blended[key] = (a if alpha == 0.0 else b).clone()
        else:
            blended[key] = (1.0 - alpha) * a + alpha * b
    return blended
