from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.datasets.export import ExportError, export_zip
from webapp.datasets.models import IonImage
from webapp.projects.models import Project


class Command(BaseCommand):
    help = (
        "Write a project's (or one dataset's) images as a .zip in the import layouts, with labels.csv, "
        "scales.csv, predictions.csv and, for on/off projects, GS.csv."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("out", help="the .zip to write")
        parser.add_argument("--dataset", type=int, default=None)
        parser.add_argument("--layout", choices=["gs", "flat", "channels"], default=None)
        parser.add_argument("--labelled-only", action="store_true")
        parser.add_argument("--arrays", action="store_true", help="also each dataset's ion_images.npy")

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["slug"]).first()
        if project is None:
            raise CommandError(f"No project '{o['slug']}'.")
        images = IonImage.objects.filter(dataset__project=project, dataset__status="ready")
        if o["dataset"]:
            images = images.filter(dataset_id=o["dataset"])
        if o["labelled_only"]:
            images = images.exclude(consensus__isnull=True)
        try:
            n = export_zip(project, images, Path(o["out"]), o["layout"], with_arrays=o["arrays"])
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{n} images written to {o['out']}")
