from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.datasets.label_import import LabelImportError, import_labels
from webapp.datasets.management.commands._acting import acting_member
from webapp.datasets.models import Dataset


class Command(BaseCommand):
    help = "Import labels for a dataset from a CSV with 'mz' or 'name' and 'label' (never trains)."

    def add_arguments(self, parser):
        parser.add_argument("dataset_id", type=int)
        parser.add_argument("csv")
        parser.add_argument("--user", default=None, help="whose labels these are (default: a project owner)")

    def handle(self, *args, **o):
        dataset = Dataset.objects.filter(pk=o["dataset_id"]).select_related("project").first()
        if dataset is None:
            raise CommandError(f"No dataset {o['dataset_id']}.")
        path = Path(o["csv"])
        if not path.is_file():
            raise CommandError(f"No file '{path}'.")
        m = acting_member(dataset.project, o["user"], refuse_viewer="label")
        if m is None:
            raise CommandError(f"{dataset.project.slug} has no owner to label as: give --user.")
        try:
            n = import_labels(dataset, path, m.user)
        except LabelImportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{n} labels imported for {dataset.name} as {m.user.username}")
