"""Figures as JSON, fetched by the pages after they load (static/js/ionsieve.js).

Building Plotly figures inside page requests made the image page cost ~450 ms and the
dataset page ~220 ms (the mean spectrum alone is 5,000 points). Now the pages carry only the
URLs below, and:

- per-dataset figures (TIC, mean spectrum) are built once per dataset revision and file and
  kept in Django's cache (CACHES; Redis when CACHE_URL is set), as JSON bytes;
- the image's pixels (native resolution, base64 float32; drawn by static/js/image.js) only
  change with the revision too, so their URL carries `?r=<revision>` and the browser keeps
  them (private, immutable);
- the probability history changes with every model version and is never cached.
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.urls import reverse
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_safe

from classifier import evaluation
from ionsieve_core.imaging.downsample import block_mean, grid_json
from webapp.datasets import pixels
from webapp.datasets.access import dataset_for, image_for
from webapp.datasets.models import Dataset, IonImage
from webapp.pages import figures

DATASET_FIGURES = ("tic", "spectrum")
IMAGE_FIGURES = ("image", "history")
YEAR = 31536000


def dataset_figure_urls(ds: Dataset) -> dict[str, str]:
    """The figures a dataset has (by its files), as URLs for the page's data-figure-url."""
    return {
        name: f"{reverse('pages:dataset_figure', args=[ds.pk, name])}?r={ds.revision}"
        for name, path in (("tic", ds.tic_path), ("spectrum", ds.spectrum_path))
        if path.exists()
    }


def image_figure_urls(image: IonImage) -> dict[str, str]:
    """The image page's figures: its own heatmap and history, and its dataset's TIC and
    spectrum under the dataset's URLs, so that the browser fetches those once per dataset (the
    page marks the image's m/z on the spectrum itself: static/js/ionsieve.js)."""
    ds = image.dataset
    has = {
        "image": ds.array_path.exists(),
        # Any prediction leaves its copy on the row; the history itself is read when asked for.
        "history": image.probabilities is not None,
    }
    urls = {
        name: f"{reverse('pages:image_figure', args=[image.pk, name])}?r={ds.revision}"
        for name in IMAGE_FIGURES
        if has[name]
    }
    return {**urls, **dataset_figure_urls(ds)}


def cached_dataset_figure(ds: Dataset, name: str) -> bytes | None:
    """The dataset's TIC or spectrum figure as JSON bytes, built once per revision and file."""
    path = ds.tic_path if name == "tic" else ds.spectrum_path
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    # The file's mtime is in the key: a rewrite (or a test database reusing ids) is never stale.
    key = f"ionsieve:fig:{ds.pk}:{ds.revision}:{mtime}:{name}"
    data = cache.get(key)
    if data is None:
        fig = build_dataset_figure(ds, name)
        if fig is None:
            return None
        data = _dumps(fig)
        cache.set(key, data)
    return data


def _dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def build_dataset_figure(ds: Dataset, name: str) -> dict | None:
    if name == "tic":
        tic = pixels.tic_values(ds)
        if tic is None:
            return None
        small, f = block_mean(tic)
        return figures.heatmap(grid_json(small), "Total ion count (TIC)", hover_name="TIC", step=f)
    spec = pixels.spectrum(ds)
    if spec is None:
        return None
    return figures.spectrum(spec[0].tolist(), spec[1].tolist())


def _json(request, data: bytes, revision: int | None) -> HttpResponse:
    response = HttpResponse(data, content_type="application/json")
    if revision is not None and request.GET.get("r") == str(revision):
        # The URL names the revision the figure was drawn from: its bytes never change.
        response["Cache-Control"] = f"private, max-age={YEAR}, immutable"
    else:
        response["Cache-Control"] = "private, no-cache"
    return response


@login_required
@require_safe
def dataset_figure(request, pk: int, name: str):
    if name not in DATASET_FIGURES:
        raise Http404("No such figure.")
    ds = dataset_for(request.user, pk)
    data = cached_dataset_figure(ds, name)
    if data is None:
        raise Http404("This dataset has no such figure yet.")
    return _json(request, data, ds.revision)


@login_required
@require_safe
# An image's pixels are up to tens of MB of base64: gzip takes a quarter off dense images and
# more than half off MSI images, which are mostly zeros off the tissue (no secrets in them).
@gzip_page
def image_figure(request, pk: int, name: str):
    if name not in IMAGE_FIGURES:
        raise Http404("No such figure.")
    image = image_for(request.user, pk)
    ds = image.dataset
    if name == "image":
        data = _image_heatmap(image)
    else:
        project = ds.project
        history = evaluation.probability_history(image)
        if not history:
            raise Http404("No prediction yet.")
        labels = {c: label for c, label in project.class_labels}
        fig = figures.probability_history(history, project.classes, labels)
        return _json(request, _dumps(fig), None)
    if data is None:
        raise Http404("This image has no such figure.")
    return _json(request, data, ds.revision)


def _image_heatmap(image: IonImage) -> bytes | None:
    """Not a Plotly figure: the image's pixels at native resolution (static/js/image.js draws
    and scales them in the browser, so clips and colour maps change without a request)."""
    payload = pixels.pixels_payload(image)
    return None if payload is None else _dumps(payload)
