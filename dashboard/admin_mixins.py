"""What several admin pages of the dashboard share."""


class NoHandEdits:
    """Admin mixin for records nobody adds, edits or deletes by hand (the judgment log, owner jobs)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
