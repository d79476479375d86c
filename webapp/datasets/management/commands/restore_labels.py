from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from webapp.datasets import label_history
from webapp.projects.models import Project


class Command(BaseCommand):
    help = "Set a project's labels (one user's, or everyone's) back to what they were at a time."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--at", required=True, help="ISO time, e.g. 2026-11-30T09:15:00+00:00")
        parser.add_argument("--user", default=None, help="only this user's labels (default: everyone's)")

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project '{o['project']}'.")
        at = parse_datetime(o["at"])
        if at is None:
            raise CommandError(f"'{o['at']}' is not an ISO time (e.g. 2026-11-30T09:15:00+00:00).")
        if timezone.is_naive(at):
            at = timezone.make_aware(at)  # in the server's time zone, as the pages show times
        user = None
        if o["user"]:
            user = get_user_model().objects.filter(username=o["user"]).first()
            if user is None:
                raise CommandError(f"There is no user '{o['user']}'.")
        n = label_history.restore(project, at, user=user)
        whose = f"{user.username}'s" if user else "all"
        self.stdout.write(
            f"{n} labels changed: {whose} labels in {project.slug} are as they were at {at.isoformat()}"
        )
