from django.apps import AppConfig

RUNTIME_SETTINGS = {"PIPAL_WEIGHTS_DIR": "weights_dir", "PIPAL_SR_DEVICE": "device", "PIPAL_SR_DTYPE": "dtype"}


def _configure(**kwargs):
    from django.conf import settings

    from sr_models import runtime

    runtime.configure(**{field: getattr(settings, name) for name, field in RUNTIME_SETTINGS.items()})


def _on_setting_changed(*, setting, **kwargs):
    if setting in RUNTIME_SETTINGS:
        _configure()


class SrModelsConfig(AppConfig):
    name = "sr_models"
    verbose_name = "Super-resolution models and distortions"

    def ready(self):
        from django.core.signals import setting_changed

        from sr_models import weights
        from sr_models.denoisers import records as denoiser_records
        from sr_models.distortions.families import FAMILIES
        from sr_models.gan import vgg as gan_vgg

        # The registries of data (checkpoints, distortion families) load at start; the
        # architectures load on first use, since they import torch, which web processes never need.
        FAMILIES.load()
        weights.register_weights()
        denoiser_records.register_weights()
        gan_vgg.register_weights()
        _configure()
        setting_changed.connect(_on_setting_changed)
