"""The staff admin: studies with their progress page and MOS download, image
uploads, raters with their quality figures, and the read-only logs.

Writes that carry rules go through services (``admin_services``,
``services``); pages and figures come from ``dashboard``. What a running study
depends on (Elo parameters, image files and ratings, names that other names
are built from, the logs) is read-only here.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from annotation import admin_services, catalogue, generation, selectors, tasks
from annotation.analysis import bt_fit
from annotation.imaging import CheckedImage, ImageRejected
from annotation.imports.folders import check_upload
from annotation.models import (
    Assignment,
    BradleyTerryFit,
    ControlTrial,
    DistortedImage,
    DistortionType,
    Judgment,
    LabelImport,
    Rater,
    ReferenceImage,
    Study,
)
from annotation.raters import rater_code, raters_set_excluded
from annotation.rating import completion
from core.errors import ApplicationError, NotFound
from dashboard import payments, views
from dashboard.admin_mixins import NoHandEdits
from sr_models import distortions

THUMB_STYLE = "max-width:{size}px;max-height:{size}px;image-rendering:auto"


def _thumb(file, size: int = 64):
    if not file:
        return "—"
    return format_html('<img src="{}" alt="" loading="lazy" style="{}">', file.url, THUMB_STYLE.format(size=size))


def _count_of(model, **filters):
    # A subquery per count: joining several related tables in one query would
    # multiply their rows (judgments x images x raters) before counting.
    counts = model.objects.filter(study=OuterRef("pk"), **filters).order_by().values("study")
    return Coalesce(Subquery(counts.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0)


def _latest_fit(field: str):
    """One field of the study's latest Bradley–Terry fit (NULL without a fit)."""
    fits = BradleyTerryFit.objects.filter(study=OuterRef("pk")).order_by("-id")
    return Subquery(fits.values(field)[:1])


def _counted_judgments():
    """The judgments in a study's MOS, from its images' counters (each counted judgment added one
    to both its images' judgment counts): one row per image read, not the log."""
    sums = DistortedImage.objects.filter(study=OuterRef("pk")).order_by().values("study")
    return Coalesce(Subquery(sums.annotate(n=Sum("judgment_count") / 2).values("n"), output_field=IntegerField()), 0)


# --- studies ---------------------------------------------------------------------


class LabelImportInline(admin.TabularInline):
    """Where an imported study's labels came from (import_labels); read-only."""

    model = LabelImport
    extra = 0
    can_delete = False
    fields = ("format", "source", "label_files", "options", "references", "images", "judgments", "left_out")
    readonly_fields = fields
    verbose_name_plural = "label imports (import_labels)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = (
        "slug",
        "name",
        "protocol",
        "references",
        "images",
        "raters",
        "judgments",
        "mos_source",
        "precision",
        "progress_link",
        "created_at",
    )
    list_filter = ("protocol", "mos_source")
    search_fields = ("slug", "name")
    filter_horizontal = ("owners",)
    inlines = [LabelImportInline]
    actions = ["generate_catalogue_distortions", "fit_bradley_terry"]
    # The MOS of every image is a replay of the log under these: changing them
    # once images exist makes the stored ratings disagree with any recompute.
    elo_fields = ("elo_m", "elo_k", "elo_initial", "mos_window")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_references=_count_of(ReferenceImage),
                n_images=_count_of(DistortedImage),
                n_raters=_count_of(Rater),
                n_judgments=_counted_judgments(),
                # The precision column: the latest fit, and what bt_fit.fit_is_current(exact=False) compares.
                bt_done=_latest_fit("done"),
                bt_log_judgments=_latest_fit("log_judgments"),
                bt_last_judgment=_latest_fit("last_judgment_id"),
                last_counted=Subquery(
                    Judgment.objects.filter(study=OuterRef("pk"))
                    .exclude(rater__excluded=True)
                    .order_by("-id")
                    .values("id")[:1]
                ),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        # mos_source is set by import_labels only: flipping it would let votes overwrite labels.
        if obj is not None and obj.images.exists():
            return (*self.elo_fields, "protocol", "scale", "mos_source", "created_at")
        if obj is not None:
            # The protocol (and a rating scale) is chosen at creation: votes of one cannot be read as another's.
            return ("protocol", "scale", "mos_source", "created_at")
        return ("mos_source", "created_at")

    @admin.display(description="references", ordering="n_references")
    def references(self, obj):
        return obj.n_references

    @admin.display(description="images", ordering="n_images")
    def images(self, obj):
        return obj.n_images

    @admin.display(description="raters", ordering="n_raters")
    def raters(self, obj):
        return obj.n_raters

    @admin.display(description="judgments in the MOS", ordering="n_judgments")
    def judgments(self, obj):
        return 0 if obj.mos_from_labels else obj.n_judgments

    @admin.action(description="Generate the default catalogue's distortions (missing images only)")
    def generate_catalogue_distortions(self, request, queryset):
        for study in queryset:
            try:
                result = generation.catalogue_generate(study=study)
            except ApplicationError as error:
                self.message_user(request, f"{study}: {error.message}", messages.ERROR)
                continue
            count = result.images
            if result.installed.moved_summary():
                self.message_user(request, f"{study}: {result.installed.moved_summary()}.", messages.INFO)
            for reason in generation.unready_types(study).values():
                self.message_user(request, f"{study}: left out {reason}", messages.WARNING)
            link = reverse("admin:annotation_study_progress", args=[study.pk])
            if count:
                self.message_user(
                    request,
                    format_html(
                        '{}: generating {} image(s); <a href="{}">follow the progress</a>.', study, count, link
                    ),
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{study}: every catalogue image exists already.", messages.INFO)

    @admin.display(description="precision")
    def precision(self, obj):
        """The latest Bradley–Terry fit's verdict on the precision goal; "stale" as
        bt_fit.fit_is_current(exact=False) says, from the list's annotations (no query per row)."""
        if obj.bt_done is None:
            return "no fit"
        verdict = "done" if obj.bt_done else "not done"
        current = obj.bt_last_judgment == (obj.last_counted or 0) and obj.bt_log_judgments == obj.n_judgments
        return verdict if current else f"{verdict} (stale)"

    @admin.action(description="Fit Bradley–Terry (bootstrap CIs)", permissions=["change"])
    def fit_bradley_terry(self, request, queryset):
        for study in queryset:
            # The task would fail on a study without counted judgments: say so here instead.
            if not bt_fit.counted_judgments(study).exists():
                self.message_user(request, f"Nothing to fit in {study}: it has no judgments yet.", messages.WARNING)
                continue
            # After the commit, so the worker reads what this request wrote.
            transaction.on_commit(lambda study_id=study.pk: tasks.fit_bradley_terry.delay(study_id))
            link = reverse("admin:annotation_study_progress", args=[study.pk])
            self.message_user(
                request,
                format_html(
                    # The slug comes second: the admin capitalises a message's first letter.
                    'Bradley–Terry fit of {} with {} bootstrap round(s) queued; <a href="{}">its figures show on the '
                    "progress page</a> when it is done.",
                    study,
                    study.bt_rounds,
                    link,
                ),
                messages.SUCCESS,
            )

    @admin.display(description="progress")
    def progress_link(self, obj):
        return format_html('<a href="{}">progress</a>', reverse("admin:annotation_study_progress", args=[obj.pk]))

    def get_urls(self):
        info = (self.opts.app_label, self.opts.model_name)
        wrap = self.admin_site.admin_view
        # Before the defaults: their "<path:object_id>/" would swallow these.
        return [
            path("<path:object_id>/progress/", wrap(self.progress_view), name="{}_{}_progress".format(*info)),
            path("<path:object_id>/mos.csv", wrap(self.mos_csv_view), name="{}_{}_mos_csv".format(*info)),
            path(
                "<path:object_id>/catalogue/<str:type_id>-<int:level>.png",
                wrap(self.catalogue_preview_view),
                name="{}_{}_catalogue_preview".format(*info),
            ),
            path("<path:object_id>/catalogue/", wrap(self.catalogue_view), name="{}_{}_catalogue".format(*info)),
            *super().get_urls(),
        ]

    def progress_view(self, request, object_id):
        return views.admin_study_progress(self, request, object_id)

    def mos_csv_view(self, request, object_id):
        return views.admin_study_mos_csv(self, request, object_id)

    def _study_or_404(self, request, object_id) -> Study:
        study = self.get_object(request, object_id)
        if study is None:
            raise Http404(f"no study with id {object_id}")
        if not self.has_view_permission(request, study):
            raise PermissionDenied
        return study

    def catalogue_view(self, request, object_id):
        """The study's "add distortion types" page: the catalogue with tick boxes; a POST
        installs the ticked types and starts making their images."""
        study = self._study_or_404(request, object_id)
        if request.method == "POST":
            if not self.has_change_permission(request, study):
                raise PermissionDenied
            self._install_picked(request, study, request.POST.getlist("types"))
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": study,
            "title": f"Add distortion types to {study.slug} from the catalogue",
            "choices": catalogue.catalogue_choices(study),
            "reference": catalogue.preview_reference(study),
            "preview_size": catalogue.PREVIEW_SIZE,
            "can_change": self.has_change_permission(request, study),
        }
        return TemplateResponse(request, "admin/annotation/study/catalogue.html", context)

    def _install_picked(self, request, study: Study, type_ids: list[str]) -> None:
        if not type_ids:
            self.message_user(request, "Tick at least one catalogue type.", messages.WARNING)
            return
        try:
            result = generation.catalogue_generate(study=study, type_ids=type_ids)
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        installed = "; ".join(
            f"{kind.catalogue_id} {kind.name} as {kind.code}" + (f" ({kind.note})" if kind.moved else "")
            for kind in result.installed.types
        )
        link = reverse("admin:annotation_study_progress", args=[study.pk])
        self.message_user(
            request,
            format_html(
                'Installed in {}: {}. Generating {} image(s); <a href="{}">follow the progress</a>.',
                study,
                installed,
                result.images,
                link,
            ),
            messages.SUCCESS,
        )

    def catalogue_preview_view(self, request, object_id, type_id, level):
        study = self._study_or_404(request, object_id)
        try:
            data = catalogue.catalogue_preview(study=study, type_id=type_id, level=level)
        except NotFound as error:
            raise Http404(error.message) from None
        except ApplicationError as error:
            return HttpResponse(error.message, status=409, content_type="text/plain; charset=utf-8")
        response = HttpResponse(data, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


# --- image uploads ------------------------------------------------------------------


class ImageUploadForm(forms.ModelForm):
    """An add form with one image file, checked as the import checks files."""

    upload = forms.FileField(
        label="Image file",
        help_text="Stored under a server-chosen, content-addressed name; formats: "
        + ", ".join(settings.PIPAL_IMAGE_FORMATS),
    )

    def clean_upload(self) -> CheckedImage:
        upload = self.cleaned_data["upload"]
        # The size is known before reading: refuse a huge file without loading it.
        if upload.size > settings.PIPAL_MAX_IMAGE_BYTES:
            raise forms.ValidationError(
                f"{upload.name}: {upload.size} bytes is over the limit of {settings.PIPAL_MAX_IMAGE_BYTES}"
            )
        self.original_filename = upload.name
        try:
            return check_upload(upload.read(), upload.name)
        except ImageRejected as error:
            raise forms.ValidationError(str(error)) from None


class ReferenceUploadForm(ImageUploadForm):
    class Meta:
        model = ReferenceImage
        fields = ("study", "name")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        problems = admin_services.reference_problems(name=name)
        if problems:
            raise forms.ValidationError(problems)
        return name


class DistortedUploadForm(ImageUploadForm):
    class Meta:
        model = DistortedImage
        fields = ("reference", "distortion_type", "level")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Names repeat across studies: show which study each choice belongs to.
        self.fields["reference"].queryset = ReferenceImage.objects.select_related("study").order_by("study", "name")
        self.fields["reference"].label_from_instance = lambda ref: f"{ref.study.slug} / {ref.name}"
        types = DistortionType.objects.select_related("study").order_by("study", "code")
        self.fields["distortion_type"].queryset = types
        self.fields["distortion_type"].label_from_instance = lambda t: f"{t.study.slug} / {t}"

    def clean(self):
        cleaned = super().clean()
        reference, distortion_type = cleaned.get("reference"), cleaned.get("distortion_type")
        checked = cleaned.get("upload")
        if reference and distortion_type and isinstance(checked, CheckedImage):
            for problem in admin_services.distorted_problems(
                reference=reference, distortion_type=distortion_type, checked=checked
            ):
                self.add_error(None, problem)
        return cleaned


class UploadAdmin(admin.ModelAdmin):
    """Adds through an upload form and a service; existing rows are read-only.

    The service creates the row, so ``save_form`` returns what it made and
    the admin logs and redirects with that object; nothing is left to save.
    """

    add_form: type[ImageUploadForm]
    add_fields: tuple[str, ...]

    def upload(self, request, form) -> ReferenceImage | DistortedImage:
        raise NotImplementedError

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": self.add_fields})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.fields

    def save_form(self, request, form, change):
        return super().save_form(request, form, change) if change else self.upload(request, form)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)


@admin.register(ReferenceImage)
class ReferenceImageAdmin(UploadAdmin):
    list_display = ("thumb", "name", "study", "width", "height", "original_filename", "created_at")
    list_display_links = ("thumb", "name")
    list_filter = ("study",)
    list_select_related = ("study",)
    search_fields = ("name", "original_filename")
    fields = (
        "study",
        "name",
        "preview",
        "file",
        "thumbnail",
        "original_filename",
        "sha256",
        "width",
        "height",
        "created_at",
    )
    add_form = ReferenceUploadForm
    add_fields = ("study", "name", "upload")

    def upload(self, request, form):
        return admin_services.reference_image_upload(
            study=form.cleaned_data["study"],
            name=form.cleaned_data["name"],
            checked=form.cleaned_data["upload"],
            original_filename=form.original_filename,
        )

    @admin.display(description="thumbnail")
    def thumb(self, obj):
        # Imported references have no thumbnail: the browser scales the file.
        return _thumb(obj.thumbnail or obj.file)

    @admin.display(description="preview")
    def preview(self, obj):
        return _thumb(obj.thumbnail or obj.file, size=256)


@admin.register(DistortedImage)
class DistortedImageAdmin(UploadAdmin):
    list_display = ("thumb", "name", "study", "distortion_type", "level", "elo", "mos", "judgment_count")
    list_display_links = ("thumb", "name")
    list_filter = ("study", "distortion_type__category")
    list_select_related = ("study", "distortion_type")
    search_fields = ("name",)
    fields = (
        "study",
        "name",
        "reference",
        "distortion_type",
        "level",
        "preview",
        "file",
        "sha256",
        "width",
        "height",
        "elo",
        "mos",
        "mos_std",
        "label_value",
        "judgment_count",
        "recent_elo",
        "shuffle_key",
        "created_at",
    )
    add_form = DistortedUploadForm
    add_fields = ("reference", "distortion_type", "level", "upload")

    def upload(self, request, form):
        return admin_services.distorted_image_upload(
            reference=form.cleaned_data["reference"],
            distortion_type=form.cleaned_data["distortion_type"],
            level=form.cleaned_data["level"],
            checked=form.cleaned_data["upload"],
        )

    # The model keeps no thumbnail of distorted images (PIPAL's are 288x288
    # patches): the browser scales the file itself, loaded lazily.
    @admin.display(description="image")
    def thumb(self, obj):
        return _thumb(obj.file)

    @admin.display(description="preview")
    def preview(self, obj):
        return _thumb(obj.file, size=256)


class DistortionTypeForm(forms.ModelForm):
    generator = forms.ChoiceField(
        required=False,
        choices=[("", "— none: images are imported or uploaded —")]
        + [
            (name, f"{name}: {generation.parameter_list(distortions.get_family(name))}")
            for name in distortions.family_names()
        ],
        help_text="A registered generator family (its parameters after the colon); its images are made by the "
        "'generate images' action. The study's catalogue page adds the catalogue's types ready-made.",
    )

    class Meta:
        model = DistortionType
        fields = ("study", "code", "name", "category", "subtype", "generator", "levels")

    def clean(self):
        cleaned = super().clean()
        generator, levels = cleaned.get("generator"), cleaned.get("levels")
        if generator:
            try:
                cleaned["levels"] = generation.checked_levels(generator, levels or {})
            except ApplicationError as error:
                self.add_error("levels", error.message)
        elif levels:
            self.add_error("generator", "levels need a generator")
        settings_changed = {"generator", "levels"} & set(self.changed_data)
        if settings_changed and self.instance.pk and self.instance.images.exists():
            self.add_error(None, "this type already has images: give new generator settings a new type")
        return cleaned

    def clean_code(self):
        code = self.cleaned_data["code"].strip()
        problems = admin_services.distortion_code_problems(code=code)
        if problems:
            raise forms.ValidationError(problems)
        return code


@admin.register(DistortionType)
class DistortionTypeAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "category", "subtype", "study", "image_count")
    list_filter = ("study", "category")
    search_fields = ("code", "name", "subtype")
    form = DistortionTypeForm
    actions = ["generate_images"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("study").annotate(n_images=Count("images"))

    def changelist_view(self, request, extra_context=None):
        # The object tools link each study's catalogue picker (only the filtered study's, when filtered).
        studies = Study.objects.order_by("slug")
        if request.GET.get("study__id__exact", "").isdigit():
            studies = studies.filter(pk=request.GET["study__id__exact"])
        pickers = [(study.slug, reverse("admin:annotation_study_catalogue", args=[study.pk])) for study in studies[:20]]
        return super().changelist_view(request, {**(extra_context or {}), "catalogue_pickers": pickers})

    @admin.action(description="Generate the missing images of the selected types (they join at elo_initial)")
    def generate_images(self, request, queryset):
        by_study: dict[Study, list[str]] = {}
        for kind in queryset.exclude(generator="").select_related("study"):
            by_study.setdefault(kind.study, []).append(kind.code)
        if not by_study:
            self.message_user(request, "None of the selected types has a generator.", messages.WARNING)
        for study, codes in by_study.items():
            try:
                count = generation.generation_start(study=study, type_ids=codes, install=False)
            except ApplicationError as error:
                self.message_user(request, f"{study}: {error.message}", messages.ERROR)
                continue
            link = reverse("admin:annotation_study_progress", args=[study.pk])
            note = format_html('{}: generating {} image(s); <a href="{}">follow the progress</a>.', study, count, link)
            self.message_user(request, note, messages.SUCCESS)

    def get_readonly_fields(self, request, obj=None):
        # Image names embed the code, so it stays as it was created.
        return ("study", "code", "created_at") if obj is not None else ()

    @admin.display(description="images", ordering="n_images")
    def image_count(self, obj):
        return obj.n_images


# --- raters --------------------------------------------------------------------------


def _attach_qualities(raters) -> None:
    """Compute QC figures once for a page of raters (a query per study, not per row)."""
    by_study: dict[int, list[Rater]] = {}
    for rater in raters:
        by_study.setdefault(rater.study_id, []).append(rater)
    for group in by_study.values():
        qualities = selectors.rater_qualities(group[0].study, group)
        for rater in group:
            rater.qc = qualities[rater.id]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = (
        "external_id",
        "study",
        "status",
        "code",
        "trials",
        "agreement",
        "left_share",
        "fast_share",
        "native_share",
        "gold_failed",
        "flags",
        "created_at",
        "finished_at",
    )
    list_filter = ("study", "excluded", "synthetic", ("finished_at", admin.EmptyFieldListFilter))
    list_select_related = ("study",)
    # Payment reconciliation: a code pasted from the crowd platform finds its rater.
    search_fields = ("external_id", "=completion_code")
    actions = ("exclude_selected", "include_selected", "download_reconciliation")
    # Raters join through the API; exclusion goes through the actions, which
    # also rebuild the MOS.
    readonly_fields = (
        "study",
        "external_id",
        "synthetic",
        "excluded",
        "exclusion_reason",
        "quality",
        "consented_at",
        "completion_code",
        "finished_at",
        "last_vote_at",
        "created_at",
        "viewing",
        "token_hash",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        _attach_qualities(changelist.result_list)
        return changelist

    def _qc(self, obj):
        if not hasattr(obj, "qc"):
            _attach_qualities([obj])
        return obj.qc

    @admin.display(description="trials")
    def trials(self, obj):
        return self._qc(obj).trials

    @admin.display(description="agreement")
    def agreement(self, obj):
        return _pct(self._qc(obj).agreement)

    @admin.display(description="left")
    def left_share(self, obj):
        return _pct(self._qc(obj).left_share) if self._qc(obj).trials else "—"

    @admin.display(description="fast")
    def fast_share(self, obj):
        return _pct(self._qc(obj).fast_share) if self._qc(obj).trials else "—"

    @admin.display(description="status")
    def status(self, obj):
        state = completion.rater_status(obj)
        label = payments.STATUS_LABELS[state]
        return (
            f"{label} ({obj.exclusion_reason})" if state == completion.SCREENED_OUT and obj.exclusion_reason else label
        )

    @admin.display(description="code earned")
    def code(self, obj):
        return rater_code(obj, obj.study) if completion.rater_status(obj) == completion.FINISHED else "—"

    @admin.display(description="native")
    def native_share(self, obj):
        share = self._qc(obj).non_native_share
        return "—" if share is None else _pct(1 - share)

    @admin.display(description="viewing conditions")
    def viewing(self, obj):
        reports = list(obj.viewing_reports.order_by("-id")[:5])
        if not reports:
            return "none reported"
        return "; ".join(
            f"{r.created_at:%Y-%m-%d %H:%M} DPR {r.device_pixel_ratio:g}, viewport {r.viewport_width}x"
            f"{r.viewport_height}, {r.layout}, {'native' if r.native else 'NOT native'}"
            + (f", {r.px_per_degree:.0f} px/°" if r.px_per_degree else "")
            for r in reports
        )

    @admin.action(description="Download the selected raters' reconciliation CSV (status, trials, codes)")
    def download_reconciliation(self, request, queryset):
        rows = []
        for study in Study.objects.filter(raters__in=queryset).distinct().order_by("slug"):
            chosen = queryset.filter(study=study).select_related("study").order_by("created_at", "id")
            rows += payments.rows_of(study, list(chosen))
        return payments.rows_csv(rows, "raters.csv")

    @admin.display(description="gold failed")
    def gold_failed(self, obj):
        return self._qc(obj).gold_failed

    @admin.display(description="flags")
    def flags(self, obj):
        flags = self._qc(obj).flags
        return format_html('<span style="color:#b3261e">{}</span>', "; ".join(flags)) if flags else "—"

    @admin.display(description="quality control")
    def quality(self, obj):
        qc = self._qc(obj)
        return (
            f"{qc.trials} trials; left {_pct(qc.left_share)}; fast {_pct(qc.fast_share)}; "
            f"agreement {_pct(qc.agreement)} on {qc.clear_pairs} clear pairs; {qc.gold_failed} gold failed; "
            f"flags: {'; '.join(qc.flags) or 'none'}"
        )

    def _set_excluded(self, request, queryset, *, excluded: bool):
        changed = raters_set_excluded(
            raters=queryset, excluded=excluded, reason=f"excluded by {request.user.get_username()}"
        )
        verb = "excluded" if excluded else "included again"
        unchanged = queryset.count() - changed
        message = f"{changed} rater(s) {verb}"
        if changed:
            message += "; the MOS is being recomputed"
        if unchanged:
            message += f"; {unchanged} already were"
        self.message_user(request, message + ".", messages.SUCCESS if changed else messages.INFO)

    @admin.action(description="Exclude selected raters (their votes leave the MOS)", permissions=["change"])
    def exclude_selected(self, request, queryset):
        self._set_excluded(request, queryset, excluded=True)

    @admin.action(description="Include selected raters again", permissions=["change"])
    def include_selected(self, request, queryset):
        self._set_excluded(request, queryset, excluded=False)


# --- the logs ------------------------------------------------------------------------


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: the count of a million-row log on every page load would cost
    more than the page (its first pages are what the admin is for; exports give the rest)."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return len(self.object_list.values_list("pk", flat=True)[: self.CAP + 1])


class ReadOnlyAdmin(NoHandEdits, admin.ModelAdmin):
    """The judgment log is append-only: nobody edits or deletes it by hand."""

    paginator = CappedCountPaginator


@admin.register(Judgment)
class JudgmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "study", "rater", "image_a", "image_b", "winner", "response_ms", "source", "created_at")
    list_filter = ("study", "source")
    list_select_related = ("study", "rater__study", "image_a", "image_b", "winner")
    show_full_result_count = False  # a count of a million-row log on every page is slow


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "study", "rater", "left", "right", "status", "issued_at")
    list_filter = ("study", "status")
    list_select_related = ("study", "rater__study", "left", "right")
    show_full_result_count = False


@admin.register(ControlTrial)
class ControlTrialAdmin(ReadOnlyAdmin):
    list_display = ("id", "study", "rater", "kind", "reference", "status", "passed", "issued_at")
    list_filter = ("study", "kind", "status")
    list_select_related = ("study", "rater__study", "reference")

    @admin.display(description="passed", boolean=True)
    def passed(self, obj):
        return obj.passed


import dashboard.owner_api.admin  # noqa: E402, F401  (owner tokens and jobs)
