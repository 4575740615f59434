"""The study's data: images, raters, issued pairs and the append-only judgment log.

Business rules live in ``services.py``; the invariants that a database can
hold (one vote per assignment, left != right, a rater never gets a pair twice)
are constraints here as well.
"""

import hashlib
import random
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from annotation.analysis import bradley_terry, elo
from annotation.rating import scales


def validate_url_template(value: str) -> None:
    """An http(s) address, with {code} where the code goes (optional)."""
    parts = urlsplit(value.replace("{code}", "CODE"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"{value!r} is not an http(s) address")
    if "{" in value.replace("{code}", "") or "}" in value.replace("{code}", ""):
        raise ValidationError("the only placeholder is {code}")


class Study(models.Model):
    class MosSource(models.TextChoices):
        ELO = "elo", "Elo from judgments"
        LABELS = "labels", "Imported labels"

    class PairPolicy(models.TextChoices):
        BALANCED = "balanced", "Balanced: least-judged pairs, partners at random"
        ACTIVE = "active", "Active: the most informative partner (expected information gain)"

    class BtScope(models.TextChoices):
        REFERENCE = "reference", "Per reference"
        GLOBAL = "global", "Global (cross-reference pairs link references)"

    class Protocol(models.TextChoices):
        PAIRWISE_FR = "pairwise-fr", "Pairwise, full reference (PIPAL)"
        PAIRWISE_NR = "pairwise-nr", "Pairwise, no reference: which is more natural (RankSRGAN's user study)"
        ACR = "acr", "Absolute category rating: one image, no reference"
        DCR = "dcr", "Degradation category rating: the reference beside one image"
        RANK_K = "rank-k", "Ranking: order k versions of one source"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    protocol = models.CharField(
        max_length=16,
        choices=Protocol.choices,
        default=Protocol.PAIRWISE_FR,
        help_text="What raters do; chosen at creation (docs in the README, one section per protocol)",
    )
    scale = models.JSONField(
        default=dict,
        blank=True,
        help_text="acr/dcr: the rating scale (annotation/rating/scales.py); empty: the protocol's built-in scale",
    )
    rank_k = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(2), MaxValueValidator(6)],
        help_text="rank-k: versions of one source ranked per trial (2-6; RankSRGAN's user study ranked 4)",
    )
    zoom_patch = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(512)],
        help_text="pairwise-nr: side in image pixels of one patch per pair shown enlarged below it (0: none)",
    )
    elo_m = models.FloatField(default=elo.DEFAULT_M, help_text="Elo scale M (PIPAL: 400)")
    elo_k = models.FloatField(default=elo.DEFAULT_K, help_text="Elo step K (PIPAL: 16)")
    elo_initial = models.FloatField(default=elo.DEFAULT_INITIAL, help_text="Starting rating (PIPAL: 1400)")
    mos_window = models.PositiveIntegerField(
        default=elo.DEFAULT_MOS_WINDOW, help_text="MOS = mean of an image's last N Elo values"
    )
    # --- what raters read and do ---
    instructions = models.TextField(blank=True, help_text="Extra instructions shown before the consent step")
    trials_per_rater = models.PositiveIntegerField(default=60, help_text="Rated trials per rater (cap and quota)")
    training_trials = models.PositiveIntegerField(default=3, help_text="Easy pairs with feedback before real trials")
    completion_code = models.CharField(
        max_length=64,
        blank=True,
        help_text="The study's completion code (e.g. Prolific's), shown to every rater who finishes; blank: a "
        "unique code per rater (MTurk style)",
    )
    completion_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_url_template],
        help_text="Send finished raters here, {code} replaced by their code, e.g. "
        "https://app.prolific.com/submissions/complete?cc={code}",
    )
    screen_out_code = models.CharField(
        max_length=64, blank=True, help_text="Code shown to raters excluded by a check (Prolific's screen-out code)"
    )
    screen_out_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_url_template],
        help_text="Send raters excluded by a check here, {code} replaced by the screen-out code",
    )
    allow_resume = models.BooleanField(
        default=True,
        help_text="Joining again with the same id continues the same rater (progress, quota, pairs seen)",
    )
    allow_ties = models.BooleanField(
        default=False,
        help_text="Offer 'can't tell' (a tie counts S = 0.5 in Elo, half a win in Bradley–Terry); PIPAL is "
        "forced choice",
    )
    narrow_layout = models.BooleanField(
        default=False,
        help_text="Let a window too narrow for three images side by side show the reference above the pair "
        "(phones and small laptops); off: ask for a larger window",
    )
    screen_calibration = models.BooleanField(
        default=False,
        help_text="Measure each rater's pixels per degree (credit card and blind spot) before the first trial",
    )
    # --- quality control (defaults from ITU-T P.808 / P.910 crowdsourcing practice) ---
    gold_every = models.PositiveIntegerField(
        default=20, help_text="One gold pair per this many trials (0: none); a failed gold pair voids the session"
    )
    min_response_ms = models.PositiveIntegerField(
        default=500, help_text="A vote sooner than this after both images loaded counts as too fast"
    )
    max_fast_share = models.FloatField(default=0.2, help_text="Flag a rater with more than this share of fast votes")
    side_bias_threshold = models.FloatField(default=0.8, help_text="Flag a rater choosing one side more often")
    flag_min_trials = models.PositiveIntegerField(default=20, help_text="Trials a rater needs before flags apply")
    min_agreement = models.FloatField(
        default=0.6, help_text="Flag a rater agreeing less often with the consensus (MOS order) on clear pairs"
    )
    # 100 Elo points = a 64% preference (Eq. 1); closer pairs say little about a rater.
    agreement_min_gap = models.FloatField(default=100.0, help_text="A pair is clear when its MOS gap is at least this")
    min_vote_interval_ms = models.PositiveIntegerField(
        default=300, help_text="A rater cannot vote again sooner than this (enforced atomically)"
    )
    max_non_native_share = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Flag a rater with more than this share of votes made while images were not shown at native size",
    )
    min_px_per_degree = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0)],
        help_text="With screen calibration: flag a rater whose device pixels per degree of visual angle are "
        "below this (0: off)",
    )
    owners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="owned_studies")
    # Where the MOS comes from: the Elo engine over the judgment log (live or
    # replayed votes), or labels imported from a dataset (import_labels), which
    # no vote, replay or recompute may touch.
    mos_source = models.CharField(
        max_length=16,
        choices=MosSource.choices,
        default=MosSource.ELO,
        help_text="elo: MOS from judgments; labels: MOS imported from a labelled dataset (takes no votes)",
    )
    # --- pairing and the Bradley–Terry fit beside Elo ---
    pair_policy = models.CharField(
        max_length=16,
        choices=PairPolicy.choices,
        default=PairPolicy.BALANCED,
        help_text="How the next pair is chosen: balanced (PIPAL-like) or active (fewer judgments for the same "
        "ranking accuracy)",
    )
    bt_scope = models.CharField(
        max_length=16,
        choices=BtScope.choices,
        default=BtScope.REFERENCE,
        help_text="Fit Bradley–Terry per reference (pairs never cross references) or over the whole study",
    )
    bt_rounds = models.PositiveIntegerField(
        default=bradley_terry.DEFAULT_ROUNDS,
        validators=[MinValueValidator(100)],
        help_text="Bootstrap rounds for the 95% confidence intervals (>= 100)",
    )
    target_ci_width = models.FloatField(
        default=100.0,
        help_text="Precision goal: the study is done when every image's 95% CI is at most this wide (Elo points)",
    )
    target_kendall = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Precision goal: and two bootstrap replicates order at most this share of a reference's pairs "
        "differently",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(condition=Q(elo_m__gt=0), name="study_elo_m_positive"),
            models.CheckConstraint(condition=Q(elo_k__gt=0), name="study_elo_k_positive"),
            models.CheckConstraint(condition=Q(mos_window__gte=1), name="study_mos_window_positive"),
            models.CheckConstraint(condition=Q(trials_per_rater__gte=1), name="study_trials_positive"),
            models.CheckConstraint(condition=Q(bt_rounds__gte=100), name="study_bt_rounds_at_least_100"),
            models.CheckConstraint(condition=Q(target_ci_width__gt=0), name="study_target_ci_width_positive"),
            models.CheckConstraint(condition=Q(rank_k__gte=2, rank_k__lte=6), name="study_rank_k_2_to_6"),
        ]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        super().clean()
        if self.protocol in (self.Protocol.ACR, self.Protocol.DCR) and self.scale:
            try:
                scales.scale_from_json(self.scale)
            except scales.ScaleError as error:
                raise ValidationError({"scale": str(error)}) from None

    @property
    def is_pairwise(self) -> bool:
        """PIPAL's machinery (assignments, Elo, Bradley–Terry) serves both pairwise protocols."""
        return self.protocol in (self.Protocol.PAIRWISE_FR, self.Protocol.PAIRWISE_NR)

    @property
    def rating_scale(self) -> scales.Scale | None:
        """acr/dcr: the study's scale (its own, else the protocol's built-in one); None otherwise."""
        if self.protocol not in (self.Protocol.ACR, self.Protocol.DCR):
            return None
        if self.scale:
            return scales.scale_from_json(self.scale)
        return scales.built_in(scales.DEFAULT_SCALE[self.protocol])

    @property
    def mos_from_labels(self) -> bool:
        return self.mos_source == self.MosSource.LABELS

    @property
    def elo_params(self) -> elo.EloParams:
        return elo.EloParams(m=self.elo_m, k=self.elo_k, initial=self.elo_initial, mos_window=self.mos_window)


class ReferenceImage(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="references")
    name = models.CharField(max_length=200, help_text="Reference id, e.g. A0001")
    file = models.FileField(max_length=300)
    original_filename = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    thumbnail = models.FileField(max_length=300, blank=True)
    # What raters are shown: the decoded pixels as PNG under a keyed name (stimuli.py).
    display = models.FileField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["study", "name"], name="reference_unique_name")]

    def __str__(self) -> str:
        return self.name


class Category(models.TextChoices):
    """PIPAL Table 2's four distortion categories."""

    TRADITIONAL = "traditional", "Traditional distortion"
    SUPER_RESOLUTION = "super_resolution", "Super-resolution"
    DENOISING = "denoising", "Denoising"
    MIXTURE = "mixture", "Mixture restoration"


class DistortionType(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="distortion_types")
    code = models.CharField(max_length=32, help_text="Type id used in file names, e.g. 10 in A0001_10_02.bmp")
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=32, choices=Category.choices, blank=True)
    subtype = models.CharField(
        max_length=64,
        blank=True,
        help_text=(
            "PIPAL Table 2's sub-type: for SR interpolation, traditional_sr (example-based), kernel_mismatch_sr, "
            "psnr_sr or gan_sr; for denoising mean_filter, model_based_denoising or deep_denoising"
        ),
    )
    generator = models.CharField(
        max_length=64, blank=True, help_text="Registered generator family (sr_models.distortions); blank: imported"
    )
    levels = models.JSONField(default=dict, blank=True, help_text='Generator parameters per level: {"1": {...}}')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["study", "code"], name="distortion_type_unique_code")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


def _shuffle_key() -> float:
    return random.random()


class DistortedImage(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="images")
    reference = models.ForeignKey(ReferenceImage, on_delete=models.PROTECT, related_name="distorted")
    distortion_type = models.ForeignKey(DistortionType, on_delete=models.PROTECT, related_name="images")
    level = models.PositiveIntegerField()
    name = models.CharField(max_length=300, help_text="File name, e.g. A0001_10_02.bmp")
    file = models.FileField(max_length=300)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    elo = models.FloatField()
    judgment_count = models.PositiveIntegerField(default=0)
    recent_elo = models.JSONField(default=list, help_text="The last mos_window Elo values")
    mos = models.FloatField()
    # Imported labels only (import_labels): the value as written in the label
    # file (before a DMOS is turned round) and the MOS's standard deviation.
    label_value = models.FloatField(null=True, blank=True, help_text="The imported label as written in its file")
    mos_std = models.FloatField(null=True, blank=True, help_text="Standard deviation of the imported MOS")
    # The latest Bradley–Terry fit (fit_bradley_terry): score and bootstrap 95% CI on the Elo scale.
    mos_bt = models.FloatField(null=True, blank=True, help_text="Bradley–Terry MOS (Elo scale) of the latest fit")
    bt_ci_low = models.FloatField(null=True, blank=True, help_text="Lower end of its bootstrap 95% CI")
    bt_ci_high = models.FloatField(null=True, blank=True, help_text="Upper end of its bootstrap 95% CI")
    provenance = models.JSONField(
        default=dict, blank=True, help_text="How a generated image was made: generator, parameters, seed, versions"
    )
    # What raters are shown: the decoded pixels as PNG under a keyed name (stimuli.py).
    display = models.FileField(max_length=300, blank=True)
    # A random key fixed at creation: the scheduler's tie-break among images
    # with equal judgment counts, served straight from an index.
    shuffle_key = models.FloatField(default=_shuffle_key)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="image_unique_name"),
            models.UniqueConstraint(fields=["reference", "distortion_type", "level"], name="image_unique_level"),
        ]
        indexes = [
            models.Index(fields=["study", "judgment_count", "shuffle_key"], name="image_schedule_idx"),
            models.Index(fields=["reference", "judgment_count", "shuffle_key"], name="image_partner_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class GenerationFailure(models.Model):
    """A (reference, type, level) slot whose image a generation job could not make, and why: the
    progress page, generate_distortions and the owner API's jobs report it instead of waiting for an
    image that will not come. Removed when the slot's image is made (a later run after a fix)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="generation_failures")
    reference = models.ForeignKey(ReferenceImage, on_delete=models.CASCADE, related_name="+")
    distortion_type = models.ForeignKey(DistortionType, on_delete=models.CASCADE, related_name="generation_failures")
    level = models.PositiveIntegerField()
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1, help_text="Runs of this slot that failed")
    failed_at = models.DateTimeField(help_text="The last failure")

    class Meta:
        ordering = ["distortion_type__code", "reference__name", "level"]
        constraints = [
            models.UniqueConstraint(
                fields=["reference", "distortion_type", "level"], name="generation_failure_unique_slot"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reference_id}/{self.distortion_type_id}/{self.level}: {self.error[:60]}"


def hash_token(token: str) -> str:
    """What is stored of a rater's bearer token (the token itself is shown once, at joining)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Rater(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="raters")
    external_id = models.CharField(max_length=200, help_text="Id from the crowdsourcing platform or the rater")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the API token")
    synthetic = models.BooleanField(default=False, help_text="A simulated rater (simulate_study)")
    excluded = models.BooleanField(default=False, help_text="Votes left out of the MOS")
    exclusion_reason = models.CharField(max_length=200, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    completion_code = models.CharField(
        max_length=64, blank=True, help_text="This rater's own code (studies without a study-wide code)"
    )
    last_vote_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="When the quota was reached or no pair was left: the code is shown from then"
    )
    # Counters kept by the vote path (issue 22), so progress and the QC figures are read from
    # this row instead of counted over the log; raters_recount() rebuilds them from the log.
    trials_done = models.PositiveIntegerField(default=0, help_text="Rated trials: real pairs and gold pairs voted")
    practice_done = models.PositiveIntegerField(default=0, help_text="Practice pairs answered")
    votes_cast = models.PositiveIntegerField(default=0, help_text="Real pairs voted (judgments in the log)")
    votes_left = models.PositiveIntegerField(default=0, help_text="Real pairs where the left image was chosen")
    votes_tied = models.PositiveIntegerField(default=0, help_text="Real pairs answered 'can't tell'")
    votes_fast = models.PositiveIntegerField(default=0, help_text="Real votes faster than the study's min_response_ms")
    votes_timed = models.PositiveIntegerField(default=0, help_text="Real votes with a response time")
    votes_native = models.PositiveIntegerField(default=0, help_text="Real votes on images shown at native size")
    votes_native_known = models.PositiveIntegerField(default=0, help_text="Real votes whose page said native or not")
    votes_clear = models.PositiveIntegerField(
        default=0, help_text="Real votes on clear pairs: Elo gap at least the study's agreement_min_gap when voted"
    )
    votes_agreed = models.PositiveIntegerField(
        default=0, help_text="Votes on clear pairs for the image with the higher Elo at the time (the consensus)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "external_id"], name="rater_unique_external_id"),
            models.UniqueConstraint(
                fields=["study", "completion_code"],
                condition=~Q(completion_code=""),
                name="rater_unique_completion_code",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}:{self.external_id}"

    # DRF treats whatever an authentication class returns as request.user.
    is_authenticated = True


class Assignment(models.Model):
    """A pair issued to one rater; the only way a vote can name images."""

    class Status(models.TextChoices):
        OPEN = "open"
        VOTED = "voted"
        RETIRED = "retired"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="assignments")
    token = models.CharField(max_length=64, unique=True)
    reference = models.ForeignKey(ReferenceImage, on_delete=models.CASCADE, related_name="+")
    left = models.ForeignKey(DistortedImage, on_delete=models.CASCADE, related_name="+")
    right = models.ForeignKey(DistortedImage, on_delete=models.CASCADE, related_name="+")
    # The pair in id order, so "never the same pair twice" is one unique constraint.
    image_low = models.ForeignKey(DistortedImage, on_delete=models.CASCADE, related_name="+")
    image_high = models.ForeignKey(DistortedImage, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(left=F("right")), name="assignment_left_ne_right"),
            models.CheckConstraint(condition=Q(image_low__lt=F("image_high")), name="assignment_pair_ordered"),
            models.UniqueConstraint(fields=["rater", "image_low", "image_high"], name="assignment_pair_once_per_rater"),
        ]
        indexes = [
            # A rater's open trial (at most one): partial, so a vote updates no index on status.
            models.Index(fields=["rater"], condition=Q(status="open"), name="assignment_open_idx"),
            models.Index(fields=["rater", "image_high"], name="assignment_rater_high_idx"),
            # The study's open pairs, which both schedulers read whole to count each candidate's open
            # assignments (hot_path._OPEN_PAIRS, scheduler.open_counts). Partial: a vote's status
            # change leaves no other index on status to update.
            models.Index(fields=["study", "expires_at"], condition=Q(status="open"), name="assignment_study_open_idx"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} ({self.status})"


class ControlTrial(models.Model):
    """A practice or gold pair with a known answer (controls.py builds them from the
    study's own images). Practice pairs give feedback; a failed gold pair voids the
    rater's session. Neither touches the Elo ratings."""

    class Kind(models.TextChoices):
        TRAINING = "training"
        GOLD = "gold"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="control_trials")
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="control_trials")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    token = models.CharField(max_length=64, unique=True)
    reference = models.ForeignKey(ReferenceImage, on_delete=models.CASCADE, related_name="+")
    construction = models.CharField(max_length=16, blank=True, help_text="How the pair was built (controls.py)")
    left_file = models.CharField(max_length=300, default="", help_text="Stored name of the left picture")
    right_file = models.CharField(max_length=300, default="", help_text="Stored name of the right picture")
    correct_side = models.CharField(max_length=5, choices=[("left", "left"), ("right", "right")])
    status = models.CharField(max_length=16, choices=Assignment.Status.choices, default=Assignment.Status.OPEN)
    choice = models.CharField(max_length=5, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    visible_ms = models.PositiveIntegerField(null=True, blank=True)
    native = models.BooleanField(null=True, blank=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["rater", "kind", "status"], name="control_rater_idx")]

    def __str__(self) -> str:
        return f"{self.kind} trial {self.pk}"

    @property
    def passed(self) -> bool | None:
        return None if not self.choice else self.choice == self.correct_side


class ControlPicture(models.Model):
    """A picture made for practice and gold pairs, never rated itself (controls.py): a decoy
    (one of the study's images, heavily degraded further) or a practice picture made from
    a reference. Stored among the stimuli under the same kind of name."""

    class Kind(models.TextChoices):
        DECOY = "decoy", "Decoy: a study image degraded further"
        SHARP = "sharp", "Practice: sharp but different from the reference"
        MILD = "mild", "Practice: mildly blurred, close to the reference"
        # rank-k checks: the reference degraded in ever stronger steps (controls.ladder_picture)
        LADDER_1 = "ladder1", "Ranking check: step 1 of a degradation ladder"
        LADDER_2 = "ladder2", "Ranking check: step 2"
        LADDER_3 = "ladder3", "Ranking check: step 3"
        LADDER_4 = "ladder4", "Ranking check: step 4"
        LADDER_5 = "ladder5", "Ranking check: step 5"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="control_pictures")
    reference = models.ForeignKey(ReferenceImage, on_delete=models.CASCADE, related_name="control_pictures")
    image = models.ForeignKey(
        DistortedImage, on_delete=models.CASCADE, null=True, blank=True, related_name="control_pictures"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    file = models.FileField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reference", "image", "kind"], name="control_picture_unique"),
            models.UniqueConstraint(
                fields=["reference", "kind"], condition=Q(image=None), name="control_picture_unique_reference"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} picture of {self.reference}"


class ViewingReport(models.Model):
    """A rater's viewing conditions, reported by the rating page when a session starts and
    whenever they change; each judgment points to the report in force when it was made."""

    class Layout(models.TextChoices):
        SIDE_BY_SIDE = "side_by_side", "All images in one row (pairwise: the reference between the two)"
        STACKED = "stacked", "Images in more than one row (pairwise, dcr: the reference above)"
        REFUSED = "refused", "Window too small: no images shown"

    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="viewing_reports")
    device_pixel_ratio = models.FloatField()
    screen_width = models.PositiveIntegerField(help_text="CSS pixels")
    screen_height = models.PositiveIntegerField(help_text="CSS pixels")
    viewport_width = models.PositiveIntegerField(help_text="CSS pixels")
    viewport_height = models.PositiveIntegerField(help_text="CSS pixels")
    zoom = models.FloatField(null=True, blank=True, help_text="Browser zoom as the page estimates it")
    user_agent = models.CharField(max_length=512, blank=True)
    native = models.BooleanField(help_text="Every stimulus shown one image pixel per device pixel")
    layout = models.CharField(max_length=16, choices=Layout.choices)
    px_per_mm = models.FloatField(null=True, blank=True, help_text="Screen calibration: CSS pixels per millimetre")
    viewing_distance_mm = models.FloatField(null=True, blank=True, help_text="Screen calibration (blind spot)")
    px_per_degree = models.FloatField(
        null=True, blank=True, help_text="Screen calibration: device pixels per degree of visual angle"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"viewing of {self.rater} at {self.device_pixel_ratio}x"


class Judgment(models.Model):
    """One rater's preference, with both images' Elo before and after: the
    append-only log the ratings are replayed from."""

    class Source(models.TextChoices):
        LIVE = "live"
        REPLAY = "replay", "Replayed from a file"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="judgments")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, null=True, blank=True, related_name="judgments")
    assignment = models.OneToOneField(
        Assignment, on_delete=models.PROTECT, null=True, blank=True, related_name="judgment"
    )
    image_a = models.ForeignKey(DistortedImage, on_delete=models.PROTECT, related_name="+", help_text="Left image")
    image_b = models.ForeignKey(DistortedImage, on_delete=models.PROTECT, related_name="+", help_text="Right image")
    winner = models.ForeignKey(
        DistortedImage, on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="None: a tie"
    )
    tie = models.BooleanField(default=False, help_text="'Can't tell': S = 0.5 for both (PIPAL Eq. 2)")
    elo_a_before = models.FloatField()
    elo_a_after = models.FloatField()
    elo_b_before = models.FloatField()
    elo_b_after = models.FloatField()
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    visible_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="How long the pair was fully visible at native size before the vote"
    )
    native = models.BooleanField(null=True, blank=True, help_text="Every image shown one pixel per device pixel")
    viewing = models.ForeignKey(
        ViewingReport, on_delete=models.PROTECT, null=True, blank=True, related_name="judgments"
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.LIVE)
    issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(image_a=F("image_b")), name="judgment_a_ne_b"),
            models.CheckConstraint(
                condition=Q(tie=False, winner=F("image_a"))
                | Q(tie=False, winner=F("image_b"))
                | Q(tie=True, winner__isnull=True),
                name="judgment_winner_in_pair",
            ),
        ]
        indexes = [models.Index(fields=["study", "id"], name="judgment_study_idx")]

    def __str__(self) -> str:
        return f"judgment {self.pk}"

    @property
    def a_score(self) -> float:
        """S_A of PIPAL Eq. 2: 1 when A won, 0 when B won, 0.5 for a tie."""
        return 0.5 if self.tie else float(self.winner_id == self.image_a_id)


class StimulusTrial(models.Model):
    """A trial of the single-stimulus and ranking protocols (acr, dcr, rank-k) issued to one rater:
    the only way a rating or a ranking can name images. Practice and gold trials are of this kind too,
    with pictures (``files``) and a known answer (``expected``) instead of study images."""

    class Kind(models.TextChoices):
        RATING = "rating", "Rated trial"
        TRAINING = "training", "Practice, with feedback"
        GOLD = "gold", "Hidden check with a known answer"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stimulus_trials")
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="stimulus_trials")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    token = models.CharField(max_length=64, unique=True)
    reference = models.ForeignKey(ReferenceImage, on_delete=models.CASCADE, related_name="+")
    images = models.JSONField(default=list, help_text="Rated trials: the study images shown, in display order")
    subset_key = models.CharField(
        max_length=200, blank=True, help_text="Rated trials: the image ids sorted, so a rater never meets them twice"
    )
    files = models.JSONField(default=list, help_text="Stored names of the pictures shown, in display order")
    construction = models.CharField(max_length=32, blank=True, help_text="How a control trial was built")
    expected = models.JSONField(
        default=dict, blank=True, help_text="Control trials: the scores accepted, or the correct order (indexes)"
    )
    status = models.CharField(max_length=16, choices=Assignment.Status.choices, default=Assignment.Status.OPEN)
    answer = models.JSONField(null=True, blank=True, help_text="Control trials: the score or order given")
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    visible_ms = models.PositiveIntegerField(null=True, blank=True)
    native = models.BooleanField(null=True, blank=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rater", "subset_key"], condition=Q(kind="rating"), name="stimulus_trial_once_per_rater"
            )
        ]
        indexes = [
            models.Index(fields=["rater"], condition=Q(status="open"), name="stimulus_trial_open_idx"),
            models.Index(fields=["study", "kind", "status"], name="stimulus_trial_study_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} trial {self.pk} ({self.status})"


class LoggedAnswer(models.Model):
    """What a rating and a ranking share: who answered (a rater, or an imported file's rater id), on
    which trial, how they saw it, and where the entry came from. Both logs are append-only."""

    class Source(models.TextChoices):
        LIVE = "live"
        IMPORT = "import", "Imported from a file"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="%(class)ss")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, null=True, blank=True, related_name="%(class)ss")
    external_rater = models.CharField(max_length=200, blank=True, help_text="Imported: the rater id of the file")
    trial = models.OneToOneField(
        StimulusTrial, on_delete=models.PROTECT, null=True, blank=True, related_name="%(class)s"
    )
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    visible_ms = models.PositiveIntegerField(null=True, blank=True)
    native = models.BooleanField(null=True, blank=True)
    viewing = models.ForeignKey(ViewingReport, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.LIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["id"]


class Rating(LoggedAnswer):
    """One score on a category scale (acr, dcr): the log the MOS is computed from."""

    image = models.ForeignKey(DistortedImage, on_delete=models.PROTECT, related_name="ratings")
    score = models.FloatField()

    class Meta(LoggedAnswer.Meta):
        indexes = [models.Index(fields=["study", "id"], name="rating_study_idx")]

    def __str__(self) -> str:
        return f"rating {self.pk}: {self.score:g}"


class Ranking(LoggedAnswer):
    """One ordering of k versions of a source, best first (rank-k)."""

    reference = models.ForeignKey(ReferenceImage, on_delete=models.PROTECT, related_name="+")
    order = models.JSONField(help_text="DistortedImage ids, best first")

    class Meta(LoggedAnswer.Meta):
        indexes = [models.Index(fields=["study", "id"], name="ranking_study_idx")]

    def __str__(self) -> str:
        return f"ranking {self.pk} of {len(self.order)}"


class LabelImport(models.Model):
    """The record of one import_labels run: which files, in which format, read
    with which direction and range (the MOS's provenance for a labels study)."""

    class Format(models.TextChoices):
        PIPAL = "pipal", "PIPAL label files"
        MOS_CSV = "mos-csv", "MOS CSV"
        TWO_AFC = "2afc", "2AFC triplets"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="label_imports")
    format = models.CharField(max_length=16, choices=Format.choices)
    source = models.CharField(max_length=500, help_text="The folder or file given to import_labels")
    label_files = models.JSONField(default=list, help_text="Label files read, relative to the source")
    options = models.JSONField(default=dict, blank=True, help_text="Direction, range, votes and other flags")
    references = models.PositiveIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    judgments = models.PositiveIntegerField(default=0, help_text="2AFC: judgments stored from the triplets")
    left_out = models.PositiveIntegerField(default=0, help_text="Unlabelled images left out (--allow-unlabelled)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.study.slug}: {self.format} labels from {self.source}"


class BradleyTerryFit(models.Model):
    """One Bradley–Terry fit of a study's judgment log (the per-image results
    are on DistortedImage), with its convergence figures."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="bt_fits")
    scope = models.CharField(max_length=16, choices=Study.BtScope.choices)
    judgments = models.PositiveIntegerField(help_text="Judgments fitted (excluded raters' votes left out)")
    log_judgments = models.PositiveIntegerField(
        default=0,
        help_text="Counted judgments in the log when fitted (a per-reference fit leaves cross-reference ones out)",
    )
    last_judgment_id = models.BigIntegerField(default=0, help_text="The newest judgment the fit saw")
    images = models.PositiveIntegerField()
    rounds = models.PositiveIntegerField()
    seed = models.BigIntegerField()
    level = models.FloatField(default=bradley_terry.DEFAULT_LEVEL)
    widest_ci = models.FloatField()
    median_ci = models.FloatField()
    images_too_wide = models.PositiveIntegerField()
    kendall = models.FloatField(help_text="Mean Kendall distance between bootstrap replicates (per reference)")
    target_ci_width = models.FloatField()
    target_kendall = models.FloatField()
    done = models.BooleanField(help_text="Every CI within the target width and the ranking stable enough")
    seconds = models.FloatField(help_text="Time the fit and its bootstrap took")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.study.slug}: Bradley–Terry fit of {self.judgments} judgments"
