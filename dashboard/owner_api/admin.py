"""Owner tokens and jobs in the admin (staff): list, see scope and use, revoke. Tokens are
made by `manage.py owner_token create`, which shows the secret once; the admin never sees it."""

from django.contrib import admin, messages

from core.errors import ApplicationError
from dashboard.admin_mixins import NoHandEdits
from dashboard.models import OwnerJob, OwnerToken
from dashboard.owner_api.tokens import token_revoke


@admin.register(OwnerToken)
class OwnerTokenAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "name", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "name")
    list_select_related = ("user",)
    fields = ("user", "name", "studies", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # the secret must be shown once to whoever makes the token: owner_token create

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, not deleted: the record says who could reach what, and when it was used

    @admin.display(description="scope")
    def scope(self, obj):
        return ", ".join(obj.studies.values_list("slug", flat=True)) or "every study the user owns"

    @admin.action(description="Revoke the selected tokens (they answer 401 from now on)")
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            try:
                token_revoke(token_id=token.pk)
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            self.message_user(request, f"revoked {token}", messages.SUCCESS)


@admin.register(OwnerJob)
class OwnerJobAdmin(NoHandEdits, admin.ModelAdmin):
    list_display = ("id", "kind", "study", "status", "done", "total", "created_at", "finished_at")
    list_filter = ("kind", "status", "study")
    list_select_related = ("study",)
    readonly_fields = [field.name for field in OwnerJob._meta.fields]
