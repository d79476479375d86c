from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.datasets.management.commands._acting import acting_member
from webapp.datasets.storage import delete_dataset
from webapp.ingestion import services
from webapp.ingestion.imzml import IngestError
from webapp.ingestion.services import sentence
from webapp.projects.models import Project


class Command(BaseCommand):
    help = "Import an imzML/ibd pair into a project and make its ion images (in this process)."
    # The system checks import every URL module (the whole API and its ML imports): seconds
    # of a command that otherwise takes a few. `manage.py check` and the server still run them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("path", help="the .imzML file; the .ibd must lie beside it")
        parser.add_argument("--project", required=True)
        parser.add_argument("--name", default=None)
        parser.add_argument("--mz-list", default=None, help="CSV with an mz column (METASPACE exports work)")
        parser.add_argument("--ppm", type=float, default=3.0)
        parser.add_argument("--top", type=int, default=500, help="without --mz-list: the N strongest peaks")
        parser.add_argument("--tic", action="store_true", help="normalise each pixel by its TIC")
        parser.add_argument("--user", default=None, help="recorded as the uploader (default: an owner)")

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project '{o['project']}'.")
        path = Path(o["path"])
        if not path.is_file():
            raise CommandError(f"No file '{path}'.")
        try:
            ibd, mz_list = _checked_files(path, o["mz_list"])
        except services.UploadError as exc:
            raise CommandError(sentence(str(exc))) from None
        member = acting_member(project, o["user"])
        try:
            dataset = services.create_imzml_dataset(
                project,
                member.user if member else None,
                name=o["name"] or path.stem,
                imzml=path,
                ibd=ibd,
                mz_list=mz_list,
                ppm=o["ppm"],
                top=o["top"],
                tic=o["tic"],
            )
            services.run_ingestion(dataset, inline=True, report=_every_5_percent())
        except services.UploadError as exc:
            raise CommandError(sentence(str(exc))) from None
        except IngestError as exc:
            delete_dataset(dataset)  # nothing half-imported stays behind
            raise CommandError(sentence(str(exc))) from None
        dataset.refresh_from_db()
        for w in dataset.metadata.get("warnings", []):
            print(f"warning: {w}", file=sys.stderr)
        print(
            f"{dataset.name}: {dataset.image_count} ion images, {dataset.height} x {dataset.width} pixels",
            file=sys.stderr,
        )
        self.stdout.write(str(dataset.pk))


def _checked_files(path: Path, mz_list_arg: str | None) -> tuple[Path, Path | None]:
    """The .ibd beside the .imzML and the m/z list, through the uploads' checks."""
    ibd = next((p for p in (path.with_suffix(".ibd"), path.with_suffix(".IBD")) if p.is_file()), None)
    services.check_upload_names(path.name, ibd.name if ibd else None)
    mz_list = Path(mz_list_arg) if mz_list_arg else None
    if mz_list is not None and not mz_list.is_file():
        raise services.UploadError(f"no m/z list file '{mz_list}'")
    services.check_size(path.stat().st_size + ibd.stat().st_size)
    return ibd, mz_list


def _every_5_percent():
    last = [-1]

    def report(fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if pct >= last[0] + 5:
            last[0] = pct
            print(f"{pct:3d}% {message}", file=sys.stderr, flush=True)

    return report
