from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from webapp.projects import services
from webapp.projects.models import RESERVED_KEYS, Project, Role, Task


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    task = forms.ChoiceField(choices=Task.choices, initial=Task.BINARY)
    classes = forms.CharField(
        required=False,
        initial="off,on",
        help_text="Class names separated by commas. For binary projects the first class is "
        "the one galleries sort by (default: off,on = off-sample, on-sample).",
    )
    channels = forms.CharField(
        required=False,
        help_text="Optional, for multi-channel microscopy: channel order, e.g. red,green,blue,yellow.",
    )

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Project.objects.filter(created_by=self.owner, name__iexact=name).exists():
            raise ValidationError(f"You already have a project named '{name}'.")
        return name

    def clean(self):
        data = super().clean()
        if "task" in data:
            try:
                data["classes"] = services.parse_classes(data["task"], data.get("classes"))
            except ValidationError as exc:
                self.add_error("classes", exc)
        data["channels"] = [c.strip() for c in (data.get("channels") or "").split(",") if c.strip()]
        return data

    def save(self) -> Project:
        d = self.cleaned_data
        return services.create_project(
            self.owner,
            d["name"],
            description=d["description"],
            task=d["task"],
            classes=d["classes"],
            channels=d["channels"],
        )


class MemberForm(forms.Form):
    user = forms.CharField(label="Username or e-mail", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_user(self):
        return services.find_user(self.cleaned_data["user"])

    def save(self):
        return services.set_member(
            self.project, self.cleaned_data["user"].username, self.cleaned_data["role"]
        )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class HotkeysForm(forms.Form):
    """One key per class; the form builds a field for each class of the project."""

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        for i, (name, label) in enumerate(project.class_labels):
            self.fields[f"key_{i}"] = forms.CharField(
                label=label,
                max_length=1,
                min_length=1,
                initial=project.class_keys[i],
                strip=True,
                widget=forms.TextInput(attrs={"size": 2, "autocomplete": "off", "data-class": name}),
            )

    def clean(self):
        data = super().clean()
        keys = [str(data.get(f"key_{i}", "")).lower() for i in range(len(self.project.classes))]
        if any(not k for k in keys):
            return data
        bad = [k for k in keys if k in RESERVED_KEYS or not k.isalnum()]
        if bad:
            raise ValidationError(
                f"Choose letters or digits other than {', '.join(sorted(RESERVED_KEYS))} "
                f"(they move, mark unsure and undo): {', '.join(bad)}"
            )
        doubles = sorted({k for k in keys if keys.count(k) > 1})
        if doubles:
            raise ValidationError(f"Each class needs its own key; used twice: {', '.join(doubles)}")
        data["keys"] = keys
        return data

    def save(self) -> None:
        self.project.hotkeys = self.cleaned_data["keys"]
        self.project.save(update_fields=["hotkeys"])
