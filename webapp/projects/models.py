"""Projects own a label schema; Memberships give users a role in them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class Task(models.TextChoices):
    BINARY = "binary", "Binary (two classes)"
    MULTICLASS = "multiclass", "Multi-class (one label per image)"
    MULTILABEL = "multilabel", "Multi-label (any subset of classes per image)"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ANNOTATOR = "annotator", "Annotator"
    VIEWER = "viewer", "Viewer"


# What each role may do grows with its rank; `need` in the access helper compares ranks.
ROLE_RANK = {Role.VIEWER: 1, Role.ANNOTATOR: 2, Role.OWNER: 3}

DEFAULT_BINARY_CLASSES = ["off", "on"]
# Friendly names shown for the default binary classes.
CLASS_DISPLAY = {"off": "off-sample", "on": "on-sample"}


# Keys the gallery uses for moving, unsure and undo; never given to a class.
RESERVED_KEYS = frozenset("jkxu")
# Enough for 32 classes (the 28 protein-localisation classes fit).
DEFAULT_KEYS = [*"1234567890", *(c for c in "abcdefghilmnopqrstvwyz" if c not in RESERVED_KEYS)]


class ProjectQuerySet(models.QuerySet):
    def for_user(self, user) -> ProjectQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    task = models.CharField(max_length=16, choices=Task.choices, default=Task.BINARY)
    classes = models.JSONField(default=list)
    # Channel order for multi-channel microscopy images (e.g. red, green, blue, yellow).
    channels = models.JSONField(default=list, blank=True)
    # One labelling key per class, in class order; empty means the defaults (DEFAULT_KEYS).
    hotkeys = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("pages:project", args=[self.slug])

    @property
    def class_keys(self) -> list[str]:
        """The key that labels each class in the gallery: the project's own, else 1-9, 0, letters."""
        if len(self.hotkeys) == len(self.classes):
            return list(self.hotkeys)
        return list(DEFAULT_KEYS[: len(self.classes)])

    @property
    def first_class(self) -> str:
        return self.classes[0]

    def class_label(self, name: str) -> str:
        return CLASS_DISPLAY.get(name, name) if self.task == Task.BINARY else name

    @property
    def class_labels(self) -> list[tuple[str, str]]:
        return [(c, self.class_label(c)) for c in self.classes]

    def role_of(self, user) -> str | None:
        if not user.is_authenticated:
            return None
        m = self.memberships.filter(user=user).only("role").first()
        return m.role if m else None


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]
        ordering = ["project", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"
