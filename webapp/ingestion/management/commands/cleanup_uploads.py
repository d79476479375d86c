"""Delete resumable uploads that expired (no progress for IONSIEVE_UPLOAD_EXPIRY_SECONDS) and
their files. Each worker also runs this every hour (webapp/ingestion/apps.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from webapp.ingestion.resumable import cleanup


class Command(BaseCommand):
    help = "Free the disk space of abandoned resumable uploads."

    def handle(self, *args, **options) -> None:
        removed, freed = cleanup()
        self.stdout.write(f"{removed} abandoned upload(s) removed, {freed / 1e6:.1f} MB freed")
