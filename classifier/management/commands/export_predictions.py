from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from webapp.datasets.export import write_predictions
from webapp.projects.models import Project


class Command(BaseCommand):
    help = "Write one CSV row per image: probabilities, predicted class, consensus label, model version."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("out")

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project '{o['project']}'.")
        with open(o["out"], "w", newline="", encoding="utf-8") as f:
            n = write_predictions(project, f)
        self.stdout.write(f"{n} rows written to {o['out']}")
