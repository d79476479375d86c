from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from webapp.projects import services
from webapp.projects.models import Project, Role


class Command(BaseCommand):
    help = "Give USERNAME a role in project SLUG (or change it)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, default=Role.ANNOTATOR)

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["slug"]).first()
        if project is None:
            raise CommandError(f"No project '{opts['slug']}'.")
        try:
            m = services.set_member(project, opts["username"], opts["role"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"{m.user.username} is {m.role} in {project.slug}")
