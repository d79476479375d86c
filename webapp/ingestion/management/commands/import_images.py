from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.datasets.management.commands._acting import acting_member
from webapp.ingestion.pictures import PictureImportError, import_images
from webapp.ingestion.services import parse_channels
from webapp.projects.models import Project


class Command(BaseCommand):
    help = (
        "Import a folder or .zip of images (METASPACE gold-standard folders, a flat folder with a labels "
        "CSV, or multi-channel microscopy) into a project; prints the new dataset ids, one per line."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--project", required=True)
        parser.add_argument(
            "--layout",
            choices=["gs", "flat", "channels"],
            default=None,
            help="default: detected from the folder",
        )
        parser.add_argument("--labels", default=None, help="labels CSV (file,label or Id,Target)")
        parser.add_argument("--channels", default=None, help="channel order, e.g. red,green,blue,yellow")
        parser.add_argument("--user", default=None, help="whose labels these are (default: a project owner)")

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project '{o['project']}'.")
        path = Path(o["path"])
        if not path.exists():
            raise CommandError(f"No file or folder '{path}'.")
        labels = Path(o["labels"]) if o["labels"] else None
        if labels is not None and not labels.is_file():
            raise CommandError(f"No labels file '{labels}'.")
        m = acting_member(project, o["user"], refuse_viewer="import")
        if m is None:
            raise CommandError(f"{project.slug} has no owner to import as: give --user.")
        channels = parse_channels(o["channels"])
        try:
            datasets = import_images(
                project,
                path,
                m.user,
                layout=o["layout"],
                labels_csv=labels,
                channels=channels,
                inline=True,
                progress=lambda f, msg: print(f"{int(f * 100):3d}% {msg}", file=sys.stderr),
            )
        except PictureImportError as exc:
            text = str(exc)
            raise CommandError(text[:1].upper() + text[1:]) from None
        for ds in datasets:
            print(f"{ds.name}: {ds.image_count} images", file=sys.stderr)
            self.stdout.write(str(ds.pk))
