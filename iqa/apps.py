from django.apps import AppConfig


def _configure(**kwargs):
    from pathlib import Path

    from django.conf import settings

    from iqa import metrics
    from iqa.learned import store

    metrics.configure_learned_root(store.learned_root(Path(settings.PIPAL_WEIGHTS_DIR)))


def _on_setting_changed(*, setting, **kwargs):
    if setting == "PIPAL_WEIGHTS_DIR":
        _configure()


class IqaConfig(AppConfig):
    name = "iqa"
    verbose_name = "IQA metrics and benchmarks"

    def ready(self):
        from django.core.signals import setting_changed

        from iqa import weights
        from iqa.learned.kinds import LEARNED_KINDS
        from iqa.metric_registry import PROJECT_METRICS

        # The registries, filled by their explicit loaders (no torch, no pyiqa imported here).
        PROJECT_METRICS.load()
        LEARNED_KINDS.load()
        weights.add_weight_records()
        _configure()
        setting_changed.connect(_on_setting_changed)
