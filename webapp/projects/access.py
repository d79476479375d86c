"""The one access helper: every view and API decides permissions here.

Non-members get 404 (a project's existence is not revealed); members whose role is too
low get 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import CharField, OuterRef, QuerySet, Subquery, Value
from django.http import Http404

from webapp.prepared import PreparedQuery
from webapp.projects.models import ROLE_RANK, Membership, Project, Role

ROLE_NEEDED_MESSAGE = {
    Role.ANNOTATOR: "Only annotators and owners of this project can do this.",
    Role.OWNER: "Only owners of this project can do this.",
    Role.VIEWER: "You are not a member of this project.",
}


def role_allows(role: str | None, need: str) -> bool:
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(need)]


def membership_for(user, project: Project) -> Membership | None:
    if not user.is_authenticated:
        return None
    # order_by(): at most one row (unique per user), so no joins for the default ordering.
    return Membership.objects.filter(project=project, user=user).order_by().first()


def check_role(role: str | None, need: str = Role.VIEWER) -> str:
    """`role` (the user's, None for a non-member) if it allows `need`, else 404/403."""
    if role is None:
        raise Http404("No such project.")
    if not role_allows(role, need):
        raise PermissionDenied(ROLE_NEEDED_MESSAGE[Role(need)])
    return role


def check_project(user, project: Project, need: str = Role.VIEWER) -> str:
    """Return the user's role in `project`, or raise 404/403."""
    membership = membership_for(user, project)
    return check_role(membership.role if membership else None, need)


def with_viewer_role(qs: QuerySet, user, project_path: str) -> QuerySet:
    """`qs` with `viewer_role`: the user's role in the project at `project_path` (None for
    non-members), read in the same query as the rows. One query less per request than
    fetching the membership after the object."""
    if not user.is_authenticated:
        return qs.annotate(viewer_role=Value(None, output_field=CharField()))
    return qs.annotate(viewer_role=role_subquery(project_path, user.pk))


def role_subquery(project_path: str, user_id) -> Subquery:
    """The role of user `user_id` in the project at `project_path` of the outer query's rows."""
    # order_by(): Membership's default ordering joined the project and user tables into every
    # request's permission subquery, only to sort the one row it finds.
    role = Membership.objects.filter(project=OuterRef(project_path), user_id=user_id).order_by()
    return Subquery(role.values("role")[:1])


def first_with_role(qs: QuerySet, user, project_path: str):
    """The one row `qs` finds by a key, with `viewer_role` (see with_viewer_role), or None.
    Unordered: the models' default orderings joined other tables only to sort that one row."""
    return with_viewer_role(qs.order_by(), user, project_path).first()


class AccessQuery:
    """first_with_role for one shape of lookup, its SQL compiled once per process for members
    (webapp/prepared.py: building and compiling it was about half of every permission check).
    `rows(key)` gives the rows `key` finds; `key_placeholder` is a key of the same type that no
    real lookup uses, and which appears nowhere else in the query."""

    USER_PLACEHOLDER = -1_340_032_001  # in range for any integer key, negative: no real id

    def __init__(self, rows: Callable[[Any], QuerySet], project_path: str, key_placeholder: Any):
        self.rows, self.project_path = rows, project_path
        self.prepared = PreparedQuery(self._build, key=key_placeholder, user_id=self.USER_PLACEHOLDER)

    def _build(self, key, user_id: int) -> QuerySet:
        qs = self.rows(key).order_by().annotate(viewer_role=role_subquery(self.project_path, user_id))
        return qs.order_by("pk")[:1]  # as QuerySet.first() orders an unordered queryset

    def first(self, user, key):
        if not user.is_authenticated:
            return first_with_role(self.rows(key), user, self.project_path)
        return self.prepared.first(key=key, user_id=user.pk)


_PROJECT_BY_SLUG = AccessQuery(lambda slug: Project.objects.filter(slug=slug), "pk", "no such slug")


def project_for(user, slug: str, need: str = Role.VIEWER) -> Project:
    """The project `slug` if `user` holds at least the role `need` in it."""
    project = _PROJECT_BY_SLUG.first(user, slug)
    if project is None:
        raise Http404("No such project.")
    project.user_role = check_role(project.viewer_role, need)
    return project
