from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from classifier import scoring
from webapp.projects.models import Project


class Command(BaseCommand):
    help = "Score a project's datasets with its active model, or the default score when it has none."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--dataset", type=int, default=None)

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project '{o['project']}'.")
        version, bundle = scoring.active_bundle(project)
        if o["dataset"]:
            ds = project.datasets.filter(pk=o["dataset"]).first()
            if ds is None:
                raise CommandError(f"Dataset {o['dataset']} is not in {project.slug}.")
            n = scoring.score_dataset(ds, version=version, bundle=bundle)
        else:
            n = scoring.score_project(project)
        source = f"model v{version.number}" if bundle is not None else "the default score"
        if version is not None and bundle is None:
            source += f" (model v{version.number}'s file could not be read)"
        self.stdout.write(f"{n} images scored with {source}")
