"""What every management command of the project shares."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError


class ApplicationCommand(BaseCommand):
    """A command whose refusals are application errors: they become CommandError (a clear message
    and exit status 1, no traceback)."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ApplicationError as error:
            raise CommandError(error.message) from None
