"""Who a command acts as: the named member, or else the project's first owner."""

from __future__ import annotations

from django.core.management.base import CommandError

from webapp.projects.models import Membership, Project, Role


def acting_member(
    project: Project, username: str | None, refuse_viewer: str | None = None
) -> Membership | None:
    """The membership to act as; `refuse_viewer` names what a viewer may not do."""
    members = project.memberships.select_related("user")
    if username:
        m = members.filter(user__username=username).first()
        if m is None:
            raise CommandError(f"'{username}' is not a member of {project.slug}.")
    else:
        m = members.filter(role=Role.OWNER).first()
    if m is not None and refuse_viewer and m.role == Role.VIEWER:
        raise CommandError(f"'{m.user.username}' is a viewer and cannot {refuse_viewer}.")
    return m
