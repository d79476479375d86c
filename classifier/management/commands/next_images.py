from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from classifier import active
from ionsieve_core.ml.active import STRATEGIES
from webapp.datasets.models import Dataset


class Command(BaseCommand):
    help = (
        "Print the names of the K unlabelled images of a dataset to label next, best first "
        "(the name column of export_predictions; m/z when an image has no name)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", type=int, required=True)
        parser.add_argument("--n", type=int, default=10)
        parser.add_argument("--user", help="images this user has not labelled (default: nobody has)")
        parser.add_argument(
            "--strategy",
            default="active",
            choices=STRATEGIES,
            help="active: uncertain and unlike what is labelled (default); random; "
            "probability: most likely off-sample (first class) first",
        )

    def handle(self, *args, **o):
        dataset = Dataset.objects.filter(pk=o["dataset"]).select_related("project").first()
        if dataset is None:
            raise CommandError(f"No dataset {o['dataset']}.")
        if not dataset.is_ready:
            raise CommandError(f"Dataset {dataset.pk} is {dataset.get_status_display().lower()}, not ready.")
        if o["n"] < 1:
            raise CommandError("--n must be at least 1.")
        user = None
        if o["user"]:
            user = get_user_model().objects.filter(username=o["user"]).first()
            if user is None:
                raise CommandError(f"No user '{o['user']}'.")
        for im in active.next_images(dataset, o["n"], o["strategy"], user=user):
            self.stdout.write(active.image_name(im))
