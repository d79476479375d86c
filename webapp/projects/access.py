"""The one access helper: every view and API decides permissions here.

Non-members get 404 (a project's existence is not revealed); members whose role is too
low get 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

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
    return Membership.objects.filter(project=project, user=user).first()


def check_project(user, project: Project, need: str = Role.VIEWER) -> str:
    """Return the user's role in `project`, or raise 404/403."""
    membership = membership_for(user, project)
    if membership is None:
        raise Http404("No such project.")
    if not role_allows(membership.role, need):
        raise PermissionDenied(ROLE_NEEDED_MESSAGE[Role(need)])
    return membership.role


def project_for(user, slug: str, need: str = Role.VIEWER) -> Project:
    """The project `slug` if `user` holds at least the role `need` in it."""
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise Http404("No such project.")
    project.user_role = check_project(user, project, need)
    return project
