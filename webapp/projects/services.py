"""Creating projects and managing their members."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify

from webapp.projects.models import DEFAULT_BINARY_CLASSES, Membership, Project, Role, Task

CLASS_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")


def parse_classes(task: str, raw: str | list[str] | None) -> list[str]:
    """Validate class names for a task; binary defaults to off,on."""
    if raw is None or raw == "" or raw == []:
        if task == Task.BINARY:
            return list(DEFAULT_BINARY_CLASSES)
        raise ValidationError("List the class names, separated by commas.")
    names = raw if isinstance(raw, list) else [c.strip() for c in re.split(r"[,\n]", raw)]
    names = [c for c in names if c]
    bad = [c for c in names if not CLASS_NAME_RE.match(c)]
    if bad:
        raise ValidationError(
            "Class names may use letters, digits, '-', '_' and '.', without spaces "
            f"(up to 40 characters): {', '.join(bad)}"
        )
    if len(set(names)) != len(names):
        raise ValidationError("Each class name must be different.")
    if task == Task.BINARY and len(names) != 2:
        raise ValidationError("A binary project has exactly two classes, e.g. off,on.")
    if task != Task.BINARY and len(names) < 2:
        raise ValidationError("A project needs at least two classes.")
    if len(names) > 200:
        raise ValidationError("At most 200 classes are supported.")
    return names


def unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "project"
    slug, n = base, 2
    while Project.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def create_project(
    owner,
    name: str,
    *,
    slug: str | None = None,
    description: str = "",
    task: str = Task.BINARY,
    classes: str | list[str] | None = None,
    channels: list[str] | None = None,
) -> Project:
    if task not in Task.values:
        raise ValidationError(f"Unknown task '{task}': choose binary, multiclass or multilabel.")
    classes_list = parse_classes(task, classes)
    if Project.objects.filter(created_by=owner, name__iexact=name).exists():
        raise ValidationError(f"You already have a project named '{name}'.")
    if slug:
        if Project.objects.filter(slug=slug).exists():
            raise ValidationError(f"The project id '{slug}' is taken.")
    else:
        slug = unique_slug(name)
    project = Project.objects.create(
        slug=slug,
        name=name,
        description=description,
        task=task,
        classes=classes_list,
        channels=channels or [],
        created_by=owner,
    )
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


def find_user(identifier: str):
    User = get_user_model()
    identifier = identifier.strip()
    user = User.objects.filter(Q(username__iexact=identifier) | Q(email__iexact=identifier)).first()
    if user is None or not identifier:
        raise ValidationError(f"No user with the username or e-mail '{identifier}'.")
    return user


def set_member(project: Project, identifier: str, role: str) -> Membership:
    """Invite a user or change their role."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role '{role}': choose owner, annotator or viewer.")
    user = find_user(identifier)
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            project=project, user=user, defaults={"role": role}
        )
        if not created and membership.role != role:
            _keep_an_owner(project, membership, role)
            membership.role = role
            membership.save(update_fields=["role"])
    return membership


def remove_member(project: Project, membership: Membership) -> None:
    with transaction.atomic():
        _keep_an_owner(project, membership, None)
        membership.delete()


def _keep_an_owner(project: Project, membership: Membership, new_role: str | None) -> None:
    if membership.role == Role.OWNER and new_role != Role.OWNER:
        others = project.memberships.filter(role=Role.OWNER).exclude(pk=membership.pk)
        if not others.exists():
            raise ValidationError("A project needs at least one owner: add another owner first.")
