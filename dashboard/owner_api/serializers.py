"""The owner API's input and output shapes (every one named ``Owner…`` in the schema)."""

from __future__ import annotations

from rest_framework import serializers

from annotation.models import Category, Study
from core.fields import StrictBooleanField, StrictCharField, StrictChoiceField, StrictFloatField, StrictIntegerField
from dashboard.models import OwnerJob


def _named(name: str):
    """A serializer class's Meta naming it in the schema."""
    return type("Meta", (), {"ref_name": name})


# --- studies ---------------------------------------------------------------------------


class StudyCountsSerializer(serializers.Serializer):
    Meta = _named("OwnerStudyCounts")
    references = serializers.IntegerField()
    distortion_types = serializers.IntegerField()
    images = serializers.IntegerField()
    raters = serializers.IntegerField()
    judgments = serializers.IntegerField()


class StudySerializer(serializers.Serializer):
    Meta = _named("OwnerStudy")
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    mos_source = serializers.CharField(help_text="elo (MOS from judgments) or labels (imported MOS)")
    settings = serializers.DictField(help_text="Elo parameters and every study option (annotation.studies)")
    counts = StudyCountsSerializer()


class StudyCreateSerializer(serializers.Serializer):
    Meta = _named("OwnerStudyCreate")
    slug = StrictCharField(max_length=50, help_text="Letters, digits, '-' and '_'")
    name = StrictCharField(max_length=200, required=False, default="", allow_blank=True)
    elo_m = StrictFloatField(required=False, help_text="Elo scale M (PIPAL: 400)")
    elo_k = StrictFloatField(required=False, help_text="Elo step K (PIPAL: 16)")
    elo_initial = StrictFloatField(required=False, help_text="Starting rating (PIPAL: 1400)")
    mos_window = StrictIntegerField(required=False, min_value=1, help_text="Elo values averaged into the MOS")
    trials_per_rater = StrictIntegerField(required=False, min_value=1)
    training_trials = StrictIntegerField(required=False, min_value=0)
    pair_policy = StrictChoiceField(Study.PairPolicy.choices, required=False)
    protocol = StrictChoiceField(
        Study.Protocol.choices, required=False, help_text="What raters do (default pairwise-fr)"
    )
    scale = serializers.JSONField(
        required=False, help_text="acr/dcr: a built-in scale's name (acr-5, dcr-5, real-fake-4) or a scale object"
    )
    continuous = StrictBooleanField(required=False, help_text="acr/dcr: a slider between the scale's ends")
    rank_k = StrictIntegerField(required=False, min_value=2, max_value=6, help_text="rank-k: images per trial")
    zoom_patch = StrictIntegerField(
        required=False, min_value=0, max_value=512, help_text="pairwise-nr: enlarged patch side in pixels"
    )

    def validate_slug(self, value: str) -> str:
        return serializers.SlugField().run_validation(value)


# --- references, types, images ----------------------------------------------------------


class ReferenceSerializer(serializers.Serializer):
    Meta = _named("OwnerReference")
    id = serializers.IntegerField()
    name = serializers.CharField()
    original_filename = serializers.CharField()
    sha256 = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ReferenceUploadSerializer(serializers.Serializer):
    Meta = _named("OwnerReferenceUpload")
    name = serializers.CharField(max_length=200, help_text="Reference id, e.g. A0001 (no '_', '.', '/' or spaces)")
    file = serializers.FileField(help_text="The image (PNG, BMP, JPEG, TIFF or WebP), checked as the admin's upload")


class DistortionTypeSerializer(serializers.Serializer):
    Meta = _named("OwnerDistortionType")
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    subtype = serializers.CharField()
    generator = serializers.CharField(help_text="Generator family; blank: images are imported or uploaded")
    levels = serializers.DictField(help_text='Generator parameters per level: {"1": {...}}')
    created_at = serializers.DateTimeField()


class DistortionTypeAddSerializer(serializers.Serializer):
    """Either ``catalogue`` (codes of fixtures/distortion_catalogue.csv) or one hand-made type."""

    Meta = _named("OwnerDistortionTypeAdd")
    catalogue = serializers.ListField(
        child=StrictCharField(min_length=1, max_length=32),
        required=False,
        min_length=1,
        help_text="Catalogue type codes to install, e.g. ['01', '12']",
    )
    code = StrictCharField(required=False, max_length=32, help_text="A hand-made type's code")
    name = StrictCharField(required=False, max_length=200)
    category = StrictChoiceField(Category.choices, required=False, allow_blank=True)
    subtype = StrictCharField(required=False, max_length=64, allow_blank=True)
    generator = StrictCharField(required=False, max_length=64, allow_blank=True, help_text="A generator family")
    levels = serializers.DictField(
        required=False, help_text='The family\'s parameters per level, e.g. {"1": {"sigma": 1.0}}'
    )

    def validate(self, attrs):
        if "catalogue" in attrs:
            if any(key in attrs for key in ("code", "name", "generator", "levels")):
                raise serializers.ValidationError("give either catalogue codes or one hand-made type, not both")
            return attrs
        missing = [key for key in ("code", "name") if not attrs.get(key)]
        if missing:
            raise serializers.ValidationError(
                {key: ["required for a hand-made type (or give catalogue codes)"] for key in missing}
            )
        return attrs


class ImageSerializer(serializers.Serializer):
    Meta = _named("OwnerImage")
    id = serializers.IntegerField()
    name = serializers.CharField()
    reference = serializers.CharField(source="reference.name")
    distortion_type = serializers.CharField(source="distortion_type.code")
    level = serializers.IntegerField()
    sha256 = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    source = serializers.SerializerMethodField(help_text="generated, or imported/uploaded")
    generator = serializers.CharField(source="distortion_type.generator")
    params = serializers.SerializerMethodField(help_text="The generator's parameters at this level")
    provenance = serializers.DictField(
        help_text="How a generated image was made: generator, parameters, seed, versions"
    )
    created_at = serializers.DateTimeField()

    def get_source(self, image) -> str:
        return "generated" if image.provenance else "imported"

    def get_params(self, image) -> dict | None:
        return image.distortion_type.levels.get(str(image.level))


# --- judgments, MOS, scores -------------------------------------------------------------


class JudgmentFilterSerializer(serializers.Serializer):
    Meta = _named("OwnerJudgmentFilter")
    since = serializers.DateTimeField(required=False, help_text="Judgments made at or after this time (ISO 8601)")
    until = serializers.DateTimeField(required=False, help_text="Judgments made before this time (ISO 8601)")
    rater = serializers.IntegerField(required=False, min_value=1, help_text="One rater's id")


class JudgmentSerializer(serializers.Serializer):
    Meta = _named("OwnerJudgment")
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    rater = serializers.IntegerField(source="rater_id", allow_null=True)
    rater_external_id = serializers.SerializerMethodField()
    reference = serializers.CharField(source="image_a.reference.name")
    image_a = serializers.CharField(source="image_a.name", help_text="Left image")
    image_b = serializers.CharField(source="image_b.name", help_text="Right image")
    winner = serializers.SerializerMethodField(help_text="The chosen image; null for a tie")
    tie = serializers.BooleanField()
    elo_a_before = serializers.FloatField()
    elo_a_after = serializers.FloatField()
    elo_b_before = serializers.FloatField()
    elo_b_after = serializers.FloatField()
    response_ms = serializers.IntegerField(allow_null=True)
    source = serializers.CharField()

    def get_rater_external_id(self, judgment) -> str | None:
        return judgment.rater.external_id if judgment.rater else None

    def get_winner(self, judgment) -> str | None:
        return judgment.winner.name if judgment.winner else None


class JudgmentPageSerializer(serializers.Serializer):
    Meta = _named("OwnerJudgmentPage")
    next = serializers.URLField(allow_null=True, help_text="The next page (also in the Link header)")
    previous = serializers.URLField(allow_null=True)
    results = JudgmentSerializer(many=True)


class MosRecordSerializer(serializers.Serializer):
    Meta = _named("OwnerMosRecord")
    reference = serializers.CharField()
    image = serializers.CharField()
    distortion_type = serializers.CharField()
    category = serializers.CharField()
    subtype = serializers.CharField()
    level = serializers.IntegerField()
    elo = serializers.FloatField()
    mos = serializers.FloatField(help_text="Elo MOS: the mean of the last mos_window Elo values")
    mos_sd = serializers.FloatField(allow_null=True, help_text="Their standard deviation")
    judgments = serializers.IntegerField()
    raters = serializers.IntegerField(help_text="Distinct raters who judged the image")
    mos_bt = serializers.FloatField(allow_null=True, help_text="Bradley–Terry MOS (Elo scale) of the latest fit")
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)


class MosSerializer(serializers.Serializer):
    Meta = _named("OwnerMos")
    metadata = serializers.DictField(
        help_text="Settings and state behind the MOS: Elo and Bradley–Terry settings, judgments counted, the fit's "
        "time, bt_stale (the fit predates judgments counted now)"
    )
    results = MosRecordSerializer(many=True)


class ProtocolMosSerializer(serializers.Serializer):
    Meta = _named("OwnerProtocolMos")
    metadata = serializers.DictField(help_text="Protocol, scale, the log's size, confidence level, Plackett–Luce fit")
    results = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per image, export_mos's columns: acr/dcr mos, sd, n, ci_low, ci_high, mle_quality, mle_ci_low, "
        "mle_ci_high; rank-k mean_rank, n, pl_score, pl_ci_low, pl_ci_high, borda",
    )


class ScoreSerializer(serializers.Serializer):
    Meta = _named("OwnerScore")
    image = serializers.CharField()
    reference = serializers.CharField()
    metric = serializers.CharField()
    value = serializers.FloatField()
    version = serializers.CharField()


class ScoreFilterSerializer(serializers.Serializer):
    Meta = _named("OwnerScoreFilter")
    metric = serializers.CharField(required=False, help_text="One metric's scores only")


# --- benchmarks -------------------------------------------------------------------------


class BenchmarkRunSerializer(serializers.Serializer):
    Meta = _named("OwnerBenchmarkRun")
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    metrics = serializers.DictField(help_text="metric -> version used")
    images = serializers.IntegerField()
    summary = serializers.DictField(help_text="metric -> whole-study SRCC")
    tables = serializers.ListField(child=serializers.CharField(), help_text="Table names for .../tables/<name>/")


# --- jobs -------------------------------------------------------------------------------


class JobSerializer(serializers.Serializer):
    Meta = _named("OwnerJob")
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(OwnerJob.Kind.choices)
    study = serializers.CharField(source="study.slug")
    params = serializers.DictField()
    status = serializers.ChoiceField(OwnerJob.Status.choices)
    done = serializers.IntegerField()
    total = serializers.IntegerField(help_text="0 until the job has planned its work")
    result = serializers.DictField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class GenerateJobSerializer(serializers.Serializer):
    Meta = _named("OwnerGenerateJob")
    types = serializers.ListField(
        child=StrictCharField(min_length=1, max_length=32),
        required=False,
        help_text="Type codes to generate (default: every generated type that can run here)",
    )


class ScoreJobSerializer(serializers.Serializer):
    Meta = _named("OwnerScoreJob")
    metrics = StrictCharField(min_length=1, max_length=2000, help_text="Comma-separated metric names, e.g. psnr,ssim")
    device = StrictChoiceField(["cpu", "cuda"], required=False, help_text="Default: cuda when a GPU is present")
    batch = StrictIntegerField(required=False, min_value=1, max_value=256)


class BenchmarkJobSerializer(serializers.Serializer):
    Meta = _named("OwnerBenchmarkJob")
    metrics = StrictCharField(min_length=1, max_length=2000, help_text="Comma-separated metrics, or 'table3'")
    min_images = StrictIntegerField(required=False, min_value=3)
    min_judgments = StrictIntegerField(required=False, min_value=1)
    resamples = StrictIntegerField(required=False, min_value=10, max_value=100_000)
    seed = StrictIntegerField(required=False, min_value=0)
