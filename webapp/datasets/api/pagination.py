"""Gallery pages: by number (OFFSET), or after a cursor (keyset) as every `next` link is.

A gallery is read by scrolling: the first page, then its `next` link, again and again. Those
links carry the last image's sort values, so page 500 of a 100,000-image project costs what
page 1 does (an index range scan from that position), where `?page=500` makes the database
walk the 49,900 entries before it (0.4-0.65 s p95 at 20 users, issue 13). Page numbers stay
for clients that jump; the total (`count`) rides along in the cursor so no page after the first
counts the rows again.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

from django.db import connection
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import DjangoPaginator, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from webapp.datasets import gallery

BAD_CURSOR = (
    "This page link is not valid (it may have been cut short or edited). "
    "Open the gallery again from its first page."
)


class DeferredJoinPaginator(DjangoPaginator):
    """Pages found on the narrow sort keys first: `WHERE id IN (SELECT id ... ORDER BY ...
    LIMIT 100 OFFSET n)`, then only those 100 wide rows are read, with the tile's columns of
    the dataset and model version (gallery.for_listing). Deep pages otherwise make PostgreSQL
    sort the whole dataset's wide rows (its JSON included) to skip n of them; without those
    joins in the inner query, it is an index-only scan (datasets migration 0005)."""

    def page(self, number):
        if not connection.features.allow_sliced_subqueries_with_in:
            self.object_list = gallery.for_listing(self.object_list)
            page = super().page(number)
            page.object_list = [gallery.ListingRow(values) for values in page.object_list]
            return page
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        rows = self.object_list.filter(pk__in=self.object_list.values("pk")[bottom:top])
        return self._get_page(gallery.listing_rows(rows), number, self)


def encode_cursor(ordering: str, values: list, count: int) -> str:
    raw = json.dumps([ordering, values, count], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _valid_value(key: gallery.SortKey, value) -> bool:
    """A value the key's column can hold: an edited cursor must not reach the database as a
    type error or an overflow."""
    if value is None:
        return key.nullable
    if isinstance(value, bool):
        return False
    if key.field == "name":
        return isinstance(value, str)
    if key.nullable:  # scores, m/z
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, int) and 0 <= value < 2**63  # ids and indexes


def decode_cursor(raw: str, ordering: str, keys: tuple[gallery.SortKey, ...]) -> tuple[list, int]:
    """(sort values, total) of a cursor made by encode_cursor for this ordering; anything else
    is a 400 with a message, never a database error."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        made_for, values, count = json.loads(text)
    except (binascii.Error, ValueError, TypeError):
        raise ValidationError({"cursor": [BAD_CURSOR]}) from None
    if made_for != ordering:
        raise ValidationError(
            {"cursor": ["This page link belongs to another sort order: open the gallery again."]}
        )
    if (
        not isinstance(values, list)
        or len(values) != len(keys)
        or not all(_valid_value(k, v) for k, v in zip(keys, values, strict=True))
        or not isinstance(count, int)
        or count < 0
    ):
        raise ValidationError({"cursor": [BAD_CURSOR]})
    return values, count


class GalleryPagination(PageNumberPagination):
    """Page numbers or cursors; the total comes from the dataset rows when nothing is filtered.
    The view sets `known_count` before paginating; its `across_datasets` (a project-wide
    gallery) decides whether the order ends with the id."""

    cursor_query_param = "cursor"
    known_count: int | None = None

    def django_paginator_class(self, object_list, per_page):
        paginator = DeferredJoinPaginator(object_list, per_page)
        if self.known_count is not None:
            # Paginator.count is a cached_property: setting it skips the COUNT(*) over the dataset.
            paginator.count = self.known_count
        return paginator

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        ordering = request.query_params.get("ordering")
        self.ordering = ordering if ordering in gallery.SORT_KEYS else gallery.DEFAULT_ORDERING
        self.keys = gallery.sort_keys(self.ordering, getattr(view, "across_datasets", False))
        raw = request.query_params.get(self.cursor_query_param)
        self.by_cursor = raw is not None
        if not self.by_cursor:
            rows = super().paginate_queryset(queryset, request, view)
            self.count, self.has_more = self.page.paginator.count, self.page.has_next()
        else:
            if self.page_query_param in request.query_params:
                raise ValidationError({"cursor": ["Ask for a page number or a cursor, not both."]})
            values, self.count = decode_cursor(raw, self.ordering, self.keys)
            rows, self.has_more = self.rows_after(queryset, values, self.get_page_size(request))
        self.last = rows[-1] if rows else None
        return rows

    def rows_after(self, queryset, values: list, size: int) -> tuple[list, bool]:
        """The `size` rows after the cursor's position (ids on the narrow sort keys first, then
        the page's wide rows, as DeferredJoinPaginator does), and whether more follow."""
        order = [k.expression() for k in self.keys]
        ids: list[int] = []
        for where in gallery.keyset_ranges(self.keys, values):
            ids += queryset.filter(where).order_by(*order).values_list("pk", flat=True)[: size + 1 - len(ids)]
            if len(ids) > size:
                break
        more, ids = len(ids) > size, ids[:size]
        by_id = {row.pk: row for row in gallery.listing_rows(queryset.model.objects.filter(pk__in=ids))}
        return [by_id[i] for i in ids if i in by_id], more

    def get_next_link(self):
        if not self.has_more or self.last is None:
            return None
        values = [getattr(self.last, "pk" if k.field == "id" else k.field) for k in self.keys]
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        return replace_query_param(
            url, self.cursor_query_param, encode_cursor(self.ordering, values, self.count)
        )

    def get_previous_link(self):
        # Cursors lead forward only (a gallery is scrolled down); page numbers keep theirs.
        return None if self.by_cursor else super().get_previous_link()

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Continue after the page that gave this cursor (every `next` link "
                "carries one); not together with `page`.",
                "schema": {"type": "string"},
            },
        ]
