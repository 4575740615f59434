"""File parts of a multipart form are taken only on the pages that need a file."""

from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.urls import Resolver404, resolve


def takes_files(path: str) -> bool:
    """Whether the page at ``path`` is one of settings.PIPAL_UPLOAD_URL_NAMES."""
    from django.conf import settings

    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.view_name in settings.PIPAL_UPLOAD_URL_NAMES


class OnlyWhereUploadsBelong(FileUploadHandler):
    """First of the upload handlers: a file part sent to any other page is skipped, neither
    kept in memory nor spooled to the temp folder (the body's size is already bounded by
    core.middleware, so nothing large is read either)."""

    def new_file(self, *args, **kwargs):
        if not takes_files(self.request.path_info):
            raise SkipFile(f"{self.request.path_info} takes no file uploads")

    def receive_data_chunk(self, raw_data, start):
        return raw_data

    def file_complete(self, file_size):
        return None
