from __future__ import annotations

import csv
import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.datasets.models import Dataset


class Command(BaseCommand):
    help = "Write a dataset's ion_images.npy (k x h x w, float32) and ions.csv (index,mz,name) to OUTDIR."

    def add_arguments(self, parser):
        parser.add_argument("dataset_id", type=int)
        parser.add_argument("outdir")

    def handle(self, *args, **o):
        dataset = Dataset.objects.filter(pk=o["dataset_id"]).first()
        if dataset is None:
            raise CommandError(f"No dataset {o['dataset_id']}.")
        if not dataset.is_ready or not dataset.array_path.exists():
            raise CommandError(f"Dataset {dataset.pk} is not ready (status: {dataset.status}).")
        out = Path(o["outdir"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dataset.array_path, out / "ion_images.npy")
        with open(out / "ions.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "mz", "name"])
            for im in dataset.images.order_by("index").only("index", "mz", "name"):
                w.writerow([im.index, "" if im.mz is None else repr(im.mz), im.name])
        self.stdout.write(str(out))
