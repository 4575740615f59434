"""Tables as CSV (``?format=csv`` or ``Accept: text/csv``) and the judgments' cursor pages."""

from __future__ import annotations

import csv
import io
import json

from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response


class CsvRenderer(BaseRenderer):
    """A list of flat objects as CSV: one header row (the first object's keys), one row each.
    A paginated body writes its page's rows (the next page is in the Link header); nested
    values (provenance, a fit's settings) are written as JSON text. An empty table is its
    header alone."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict):
            data = data.get("results", [data])
        rows = list(data or [])
        columns = list(rows[0]) if rows else _columns((renderer_context or {}).get("view"))
        out = io.StringIO()
        if columns:
            writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({key: _cell(value) for key, value in row.items()})
        return out.getvalue().encode(self.charset)


def _columns(view) -> list[str]:
    """An empty table's header: the fields of the view's row serializer (``row_serializer``),
    so a reader still finds its columns."""
    row_serializer = getattr(view, "row_serializer", None)
    return list(row_serializer().fields) if row_serializer else []


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


class JudgmentCursorPagination(CursorPagination):
    """Pages of the judgment log in the order it was written (by id, which the study's log
    index serves): a page never shifts when new judgments arrive."""

    ordering = "id"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000

    def get_paginated_response(self, data):
        links = [
            f'<{url}>; rel="{rel}"'
            for url, rel in ((self.get_next_link(), "next"), (self.get_previous_link(), "prev"))
            if url
        ]
        headers = {"Link": ", ".join(links)} if links else {}
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}, headers=headers
        )
