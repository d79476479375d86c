from __future__ import annotations

from django import forms


class CollectionForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    datasets = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only labelled images are included. None ticked: every dataset.",
    )

    def __init__(self, *args, project=None, **kwargs):
        super().__init__(*args, **kwargs)
        if project is not None:
            self.fields["datasets"].choices = [
                (d.pk, d.name) for d in project.datasets.filter(status="ready")
            ]


class ShareForm(forms.Form):
    users = forms.CharField(required=False, label="Share with (usernames or e-mails, comma-separated)")
    public = forms.BooleanField(required=False, label="Visible to everyone on this server")

    def cleaned_users(self) -> list[str]:
        return [u.strip() for u in self.cleaned_data.get("users", "").split(",") if u.strip()]


class UseForm(forms.Form):
    collection = forms.TypedChoiceField(coerce=int, label="Collection")

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["collection"].choices = choices
