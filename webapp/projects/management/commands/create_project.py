from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from webapp.projects import services
from webapp.projects.models import Task


class Command(BaseCommand):
    help = "Create a project owned by USERNAME."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--owner", required=True)
        parser.add_argument("--name", default=None)
        parser.add_argument("--description", default="")
        parser.add_argument("--task", choices=Task.values, default=Task.BINARY)
        parser.add_argument("--classes", default=None, help="comma-separated class names")
        parser.add_argument("--channels", default=None, help="comma-separated channel order")

    def handle(self, *args, **opts):
        owner = get_user_model().objects.filter(username=opts["owner"]).first()
        if owner is None:
            raise CommandError(f"No user named '{opts['owner']}'.")
        channels = [c.strip() for c in (opts["channels"] or "").split(",") if c.strip()]
        try:
            project = services.create_project(
                owner,
                opts["name"] or opts["slug"],
                slug=opts["slug"],
                description=opts["description"],
                task=opts["task"],
                classes=opts["classes"],
                channels=channels,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(project.slug)
