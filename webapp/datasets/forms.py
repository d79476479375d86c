from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from webapp.datasets import label_history
from webapp.projects.models import Project


class RestoreLabelsForm(forms.Form):
    """Owners: put labels back as they were at a time (one user's, or everyone's)."""

    at = forms.DateTimeField(
        label="As they were at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="In UTC, as the times in the history below; e.g. just before a mistaken bulk label.",
    )
    user = forms.ChoiceField(label="Whose labels", required=False)

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        names = (
            get_user_model()
            .objects.filter(labels__image__dataset__project=project)
            .distinct()
            .order_by("username")
            .values_list("username", flat=True)
        )
        self.fields["user"].choices = [("", "everyone's"), *((n, n) for n in names)]

    def save(self, actor) -> int:
        name = self.cleaned_data["user"]
        user = get_user_model().objects.get(username=name) if name else None
        return label_history.restore(self.project, self.cleaned_data["at"], user=user, actor=actor)
