from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from ionsieve_core.msi.synthetic import write_synthetic_imzml
from webapp.ingestion import services
from webapp.projects import services as projects
from webapp.projects.models import Project

DEMO_USER, DEMO_PASSWORD, DEMO_PROJECT = "demo", "demo-ionsieve", "demo"


class Command(BaseCommand):
    help = "Create the demo account and a demo project with a small generated MSI dataset (idempotent)."

    def handle(self, *args, **o):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=DEMO_USER, defaults={"email": "demo@example.org"})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        project = Project.objects.filter(slug=DEMO_PROJECT).first()
        if project is None:
            project = projects.create_project(
                user,
                "Demo: mouse section (generated)",
                slug=DEMO_PROJECT,
                description="A generated MSI dataset: a tissue section on a matrix-coated slide, with on- and "
                "off-sample ions. Sort them, label a few with keys 1/2, then train.",
            )
        if project.datasets.filter(status="ready").exists():
            self.stdout.write(f"Demo ready: log in as '{DEMO_USER}' / '{DEMO_PASSWORD}'")
            return
        work = Path(settings.VAR_DIR) / "demo"
        work.mkdir(parents=True, exist_ok=True)
        truth = write_synthetic_imzml(work / "demo_section", 64, 80, n_on=30, n_off=30, seed=7)
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as f:
            w = csv.writer(f)
            w.writerow(["mz", "name"])
            for n, (mz, _label) in enumerate(truth.ions):
                w.writerow([f"{mz:.5f}", f"ion {n + 1:02d}"])
            mz_list = Path(f.name)
        dataset = services.create_imzml_dataset(
            project,
            user,
            name="Generated section",
            imzml=Path(truth.imzml_path),
            ibd=Path(truth.ibd_path),
            mz_list=mz_list,
        )
        mz_list.unlink()
        print("Processing the demo dataset...", file=sys.stderr)
        services.run_ingestion(dataset, inline=True)
        self.stdout.write(f"Demo ready: log in as '{DEMO_USER}' / '{DEMO_PASSWORD}'")
