from django.apps import AppConfig


class IqaConfig(AppConfig):
    name = "iqa"
    verbose_name = "IQA metrics and benchmarks"
