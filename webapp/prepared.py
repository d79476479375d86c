"""Querysets compiled to SQL once per process, then run with new values.

Django builds a queryset and compiles its SQL every time it runs one. The permission check that
nearly every request makes (an image with its dataset, project and model version, and the
caller's role in a subquery) spent about half of its 2.1 ms doing that, for SQL that only differs
in two numbers from one request to the next. A PreparedQuery builds its queryset once per
database with placeholder values, keeps the SQL and where each placeholder went in its
parameters, and then turns the row into model instances as iterating the queryset would
(`select_related` objects and annotations included).

For one-row lookups by key whose shape never changes; anything else stays a plain queryset.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[tuple[str | None, Any], ...]  # (placeholder name, or None and a constant)
    converters: tuple  # (column, converters, expression), as the compiler applies them
    model: type
    model_columns: slice
    init_list: tuple[str, ...]
    related_populators: tuple
    annotations: tuple[tuple[str, int], ...]


class PreparedQuery:
    """`build(**values)` gives the queryset; `placeholders` are values of the right types,
    within their columns' ranges (Django turns an out-of-range integer lookup into an empty
    result, not a parameter), that appear nowhere else in its parameters. A placeholder missing
    from the compiled parameters is an error when the plan is made."""

    def __init__(self, build: Callable[..., QuerySet], **placeholders: Any):
        self.build, self.placeholders = build, placeholders
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()

    def first(self, using: str = "default", **values: Any):
        """The first row for `values` as a model instance, or None."""
        plan = self._plans.get(using) or self._plan(using)
        params = [values[name] if name is not None else const for name, const in plan.params]
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        row = list(row)
        for pos, convs, expression in plan.converters:
            value = row[pos]
            for converter in convs:
                value = converter(value, expression, connection)
            row[pos] = value
        obj = plan.model.from_db(using, plan.init_list, row[plan.model_columns])
        for populator in plan.related_populators:
            populator.populate(row, obj)
        for attr, pos in plan.annotations:
            setattr(obj, attr, row[pos])
        return obj

    def _plan(self, using: str) -> _Plan:
        with self._lock:
            if using in self._plans:
                return self._plans[using]
            compiler = self.build(**self.placeholders).query.get_compiler(using=using)
            sql, params = compiler.as_sql()  # also fills compiler.select and klass_info
            if compiler.has_extra_select or compiler.klass_info is None:
                raise ValueError("PreparedQuery takes querysets of model instances without extra()")
            by_value = {(type(v), v): name for name, v in self.placeholders.items()}
            marked = tuple((by_value.get((type(p), p)), p) for p in params)
            missing = set(self.placeholders) - {name for name, _ in marked}
            if missing:
                raise ValueError(f"placeholders not found in the query's parameters: {sorted(missing)}")
            fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
            klass_info, select = compiler.klass_info, compiler.select
            first, last = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            plan = _Plan(
                sql=sql,
                params=marked,
                converters=tuple(
                    (pos, tuple(convs), expression)
                    for pos, (convs, expression) in compiler.get_converters(fields).items()
                ),
                model=klass_info["model"],
                model_columns=slice(first, last),
                init_list=tuple(f[0].target.attname for f in select[first:last]),
                related_populators=tuple(get_related_populators(klass_info, select, using)),
                annotations=tuple(compiler.annotation_col_map.items()),
            )
            self._plans[using] = plan
            return plan
