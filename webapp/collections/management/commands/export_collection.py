from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.collections.export import export_version
from webapp.collections.models import Collection
from webapp.datasets.export import ExportError


class Command(BaseCommand):
    help = "Write a collection version as a .zip (gs, flat or channels layout, with labels and who labelled)."

    def add_arguments(self, parser):
        parser.add_argument("collection_id", type=int)
        parser.add_argument("out", help="the .zip to write")
        parser.add_argument("--version", type=int, default=None, help="default: the latest")
        parser.add_argument("--layout", choices=["gs", "flat", "channels"], default=None)

    def handle(self, *args, **o):
        collection = Collection.objects.filter(pk=o["collection_id"]).first()
        if collection is None:
            raise CommandError(f"No collection {o['collection_id']}.")
        version = (
            collection.versions.filter(number=o["version"]).first() if o["version"] else collection.latest
        )
        if version is None:
            raise CommandError("No such version.")
        try:
            n = export_version(version, Path(o["out"]), o["layout"])
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{n} images of {collection.name} v{version.number} written to {o['out']}")
