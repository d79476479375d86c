"""Serving media files: signed thumbnail URLs, and handing files to the front server.

A gallery page shows 100 thumbnails; checking the project membership for each one costs
database queries and a Django request per tile. The API therefore hands out *signed*
thumbnail URLs: an HMAC (keyed by SECRET_KEY) over the dataset id, image index, dataset
revision and an expiry time, which `signed_thumbnail` verifies without touching the
database. The permission check happens once, when the API page that lists the URL is served.

The expiry is rounded up to a bucket (IONSIEVE_SIGNED_URL_SECONDS, a day by default) so
that the same thumbnail keeps the same URL for a while and the browser's cache can serve it;
a URL stays valid between one and two buckets. Removing someone from a project therefore
stops their thumbnail URLs within two buckets at most (every other endpoint at once).

With IONSIEVE_MEDIA_ACCEL set, Django only checks and answers with a header; the front
server (nginx: X-Accel-Redirect, Apache/lighttpd: X-Sendfile) sends the bytes. See
deploy/nginx.conf and docs/production.md.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_safe

SALT = "ionsieve.datasets.thumbnail"
YEAR = 31536000


def bucket_seconds() -> int:
    return max(60, int(settings.IONSIEVE_SIGNED_URL_SECONDS))


def expiry(now: float | None = None) -> int:
    """End of the bucket after the current one: stable URLs within a bucket, valid >= 1 bucket."""
    b = bucket_seconds()
    return (int(now if now is not None else time.time()) // b + 2) * b


def signature(dataset_id: int, index: int, revision: int, expires: int) -> str:
    # salted_hmac's result, with its key derived once per SECRET_KEY instead of once per URL
    # (a gallery page signs 100 of them); tests/datasets/test_thumbnails.py checks they agree.
    msg = f"{dataset_id}:{index}:{revision}:{expires}".encode()
    return hmac.new(_hmac_key(settings.SECRET_KEY), msg, hashlib.sha256).hexdigest()[:32]


@functools.lru_cache(maxsize=4)
def _hmac_key(secret: str) -> bytes:
    return hashlib.sha256((SALT + secret).encode()).digest()


def signed_thumbnail_url(dataset_id: int, index: int, revision: int, now: float | None = None) -> str:
    exp = expiry(now)
    return f"{_url_prefix()}{dataset_id}/{index}/{revision}/{exp}/{signature(dataset_id, index, revision, exp)}.png"


@functools.lru_cache(maxsize=1)
def _url_prefix() -> str:
    # reverse() once: per URL it was most of the signing cost of a 100-image gallery page.
    url = reverse("signed-thumbnail", args=[1, 2, 3, 4, "s"])
    return url[: -len("1/2/3/4/s.png")]


def thumb_path(dataset_id: int, index: int) -> Path:
    # The same layout as Dataset.thumb_path, from integers only (URL converters give ints).
    return Path(settings.MEDIA_ROOT) / "datasets" / str(int(dataset_id)) / "thumbs" / f"{int(index)}.png"


def etag_for(path: Path, *parts) -> str:
    st = path.stat()
    return (
        '"' + hashlib.md5("-".join(map(str, (*parts, st.st_mtime_ns, st.st_size))).encode()).hexdigest() + '"'
    )


def serve_file(
    request, path: Path, content_type: str, cache_control: str, etag: str | None = None
) -> HttpResponse:
    """The file at `path` (inside MEDIA_ROOT), after the caller checked permissions."""
    if etag and request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    else:
        mode = (settings.IONSIEVE_MEDIA_ACCEL or "").lower()
        if mode in ("nginx", "x-accel-redirect"):
            rel = path.resolve().relative_to(Path(settings.MEDIA_ROOT).resolve()).as_posix()
            response = HttpResponse(content_type=content_type)
            response["X-Accel-Redirect"] = settings.IONSIEVE_MEDIA_ACCEL_PREFIX.rstrip("/") + "/" + quote(rel)
        elif mode in ("sendfile", "x-sendfile"):
            response = HttpResponse(content_type=content_type)
            response["X-Sendfile"] = str(path.resolve())
        else:
            response = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115 - closed by Django
    if etag:
        response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response


@require_safe
def signed_thumbnail(request, dataset: int, index: int, revision: int, expires: int, sig: str):
    """A thumbnail reached by a signed URL: no session, no database, cached by the browser."""
    if not constant_time_compare(sig, signature(dataset, index, revision, expires)):
        raise Http404("No such thumbnail.")
    remaining = expires - int(time.time())
    if remaining <= 0:
        # 404 rather than 403: the gallery fetches a fresh page (and fresh URLs) anyway.
        raise Http404("This thumbnail link has expired.")
    path = thumb_path(dataset, index)
    if not path.is_file():
        raise Http404("No thumbnail yet.")
    # The URL names the revision, so its bytes never change: immutable until it expires.
    return serve_file(
        request,
        path,
        "image/png",
        f"private, max-age={min(remaining, YEAR)}, immutable",
        etag=etag_for(path, dataset, index, revision),
    )
