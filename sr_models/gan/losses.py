"""Losses of the seed papers' GAN training (no Django here), on logits and features, all batch means.

* ESRGAN's relativistic average GAN (ESRGAN §3.2, Eq. 1-2; SPEC §7.6), written as the paper writes it:
  D_Ra(x_r, x_f) = σ(C(x_r) − E_xf[C(x_f)]),
  L_D = −E_xr[log D_Ra(x_r, x_f)] − E_xf[log(1 − D_Ra(x_f, x_r))],
  L_G = −E_xr[log(1 − D_Ra(x_r, x_f))] − E_xf[log D_Ra(x_f, x_r)].
  The authors' code averages the two terms instead of adding them (BasicSR ``esrgan_model.py``:
  ``(l_d_real + l_d_fake) / 2`` and ``(l_g_real + l_g_fake) / 2``; RankSRGAN's ``RankSRGAN_model.py``
  'ragan' branch the same), and ESRGAN's λ = 5e-3 was tuned with that form: ``halved=True`` gives it.
* The standard GAN of SRGAN, RankSRGAN and 4PP-EUSR (mmsr's ``GANLoss('gan')``, ``nn.BCEWithLogitsLoss``):
  L_D = BCE(C(x_r), 1) + BCE(C(x_f), 0) (RankSRGAN_model.py ``l_d_real + l_d_fake``; 4PP-EUSR's
  ``loss_discriminator``), and the generator's non-saturating L_G = BCE(C(x_f), 1).
* RankSRGAN's rank-content loss (§3.3, Eq. 9) and the L1 perceptual loss on VGG19 features.

Every log σ is computed from logits (``binary_cross_entropy_with_logits``: log σ(z) = −softplus(−z)), so
no loss overflows or returns inf for confident logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("mean", "sum")


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """−E[log σ(z)] for target 1, −E[log(1 − σ(z))] for target 0."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def relativistic_discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, *, halved: bool = False
) -> torch.Tensor:
    """ESRGAN Eq. 1: −E[log D_Ra(x_r, x_f)] − E[log(1 − D_Ra(x_f, x_r))]; the two expectations averaged
    instead of added with ``halved`` (the authors' code). The trainer passes ``fake_logits`` of
    detached generator outputs."""
    loss = _bce(real_logits - fake_logits.mean(), 1.0) + _bce(fake_logits - real_logits.mean(), 0.0)
    return loss / 2 if halved else loss


def relativistic_generator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, *, halved: bool = False
) -> torch.Tensor:
    """ESRGAN Eq. 2: −E[log(1 − D_Ra(x_r, x_f))] − E[log D_Ra(x_f, x_r)]: the generator gains from both
    real and fake logits. The authors' code passes ``real_logits`` detached (esrgan_model.py
    ``self.net_d(self.gt).detach()``); ``halved``: the two expectations averaged, as that code does."""
    loss = _bce(real_logits - fake_logits.mean(), 0.0) + _bce(fake_logits - real_logits.mean(), 1.0)
    return loss / 2 if halved else loss


def vanilla_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """−E[log σ(C(x_r))] − E[log(1 − σ(C(x_f)))] (SRGAN; RankSRGAN_model.py; 4PP-EUSR's sigmoid CE)."""
    return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)


def vanilla_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating −E[log σ(C(G(x)))] (mmsr ``cri_gan(pred_g_fake, True)``; 4PP-EUSR's l_g)."""
    return _bce(fake_logits, 1.0)


def rank_content_loss(ranker_scores: torch.Tensor, lower_is_better: bool, *, reduction: str = "mean") -> torch.Tensor:
    """RankSRGAN's rank-content loss L_R = sigmoid(R(G(x))) (RankSRGAN §3.3, Eq. 9: "a lower ranking score
    indicates better perceptual quality"), over the batch.

    ``lower_is_better``: the Ranker's direction. The official Rankers (NIQE, Ma, PI) score worse images
    higher, so L_R falls as the score falls; for a Ranker trained to score better images higher the
    sign flips, L_R = sigmoid(−R(G(x))), so that minimising L_R always moves towards better images.
    ``reduction``: "mean" over the batch, or "sum" as the released code does
    (``RankSRGAN_model.py``: ``torch.sum(torch.sigmoid(l_g_rank - self.R_bias))``, R_bias 0 in
    ``train_RankSRGAN.yml``), the form its R weight 3e-2 was tuned with at batch 8.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    losses = torch.sigmoid(ranker_scores if lower_is_better else -ranker_scores)
    return losses.mean() if reduction == "mean" else losses.sum()


def perceptual_loss(features_sr: torch.Tensor, features_hr: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of feature maps (RankSRGAN ``feature_criterion: l1``, BasicSR ESRGAN
    ``perceptual_weight: 1`` with ``criterion: l1``); the HR features are a target, never trained
    through (RankSRGAN_model.py: ``self.netF(self.var_H).detach()``)."""
    return F.l1_loss(features_sr, features_hr.detach())
