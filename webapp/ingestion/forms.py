"""The picture import's four fields (archive, layout, labels, channels) and their checks, once:
the page's form and the API's serializers (api/serializers.py) take the layouts from here and
hand what they parsed to `checked_import`, which also starts the import."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.db import transaction

from webapp.ingestion import services

# Layout value -> what it reads, as the page offers it; the API takes the same values.
LAYOUTS = {
    "gs": "folders <dataset>/<label>/<image> (METASPACE gold standard)",
    "flat": "flat folder(s), labels from a CSV (file,label) or none",
    "channels": "multi-channel <id>_<channel>.png with a CSV Id,Target",
}


@dataclass
class PictureImport:
    """A checked picture import, ready to start (archive and labels: uploaded or received files)."""

    archive: object
    layout: str | None
    labels: object | None
    channels: list[str] | None

    def start(self, project, user):
        """Keep the files and queue the import as a Job (returned)."""
        from webapp.ingestion.pictures import start_import  # heavy (Pillow, tifffile): after the checks

        with transaction.atomic():
            return start_import(
                project,
                user,
                self.archive,
                layout=self.layout,
                labels_csv=self.labels,
                channels=self.channels,
            )


def checked_import(
    archive, layout: str | None = None, labels=None, channels: str | None = None
) -> PictureImport:
    """The one validation of an import request; raises services.UploadError."""
    services.check_archive(archive.name, archive.size)
    return PictureImport(archive, layout or None, labels, services.parse_channels(channels))


class ImportForm(forms.Form):
    """The import page's form; once valid, `picture_import` is the checked request."""

    picture_import: PictureImport | None = None
    archive = forms.FileField(label=".zip of images")
    layout = forms.ChoiceField(required=False, choices=[("", "detect"), *LAYOUTS.items()])
    labels = forms.FileField(required=False, label="Labels CSV (optional)")
    channels = forms.CharField(required=False, help_text="Channel order, e.g. red,green,blue,yellow")

    def clean(self):
        data = super().clean()
        if "archive" in data:
            try:
                self.picture_import = checked_import(
                    data["archive"], data.get("layout"), data.get("labels"), data.get("channels")
                )
            except services.UploadError as exc:
                self.add_error("archive", str(exc))
        return data
