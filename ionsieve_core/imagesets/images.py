"""One image file (PNG or TIFF) as a float32 array, with its size checked from the header first.

Values keep the file's own units, since the classifier scales every image to its own range:
integer greyscale as stored (0..255, 0..65535), float TIFFs as stored, viridis-coloured renders
as their position on the colour map (0..1), other colour pictures as the mean of R, G and B
(0..255). Pixels that are fully transparent (alpha 0) carry no data and become NaN, and so do
annotations drawn in other colours on a viridis render (scale bars, text).
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from ionsieve_core.imagesets.errors import ImageSetError
from ionsieve_core.imaging.colormaps import lut_float

VIRIDIS_LUT = lut_float("viridis")  # the one copy of the map, shared with thumbnails

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 40_000_000
# A TIFF page is one channel; more pages than this is a time series or a volume, not channels.
MAX_TIFF_PAGES = 256
# Renders saved from viridis sit within a couple of RGB units of the LUT (anti-aliasing, rounding);
# natural colour pictures are tens of units away on average.
VIRIDIS_MAX_MEAN_DISTANCE = 8.0
# Inside a viridis render, a colour this far (RGB units) from every entry is not data but an
# annotation drawn on top (white scale bar, its text): NaN, not the nearest colour (white would
# read as yellow, the maximum, and a scale bar in some images only would be a shortcut to learn).
VIRIDIS_MAX_PIXEL_DISTANCE = 30.0

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
Source = str | Path | bytes | bytearray | memoryview


def not_an_image(name: str) -> str:
    return f"{name} is not an image (PNG or TIFF expected)"


def _open(source: Source) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    return open(source, "rb")  # noqa: SIM115 - closed by the caller's `with`


def _name(source: Source, name: str) -> str:
    if name:
        return name
    return Path(source).name if isinstance(source, str | Path) else "the image"


def _kind(head: bytes) -> str | None:
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head[:4] in TIFF_SIGNATURES:
        return "tiff"
    return None


def _too_big(name: str, h: int, w: int, max_pixels: int) -> str:
    return (
        f"{name} is {w:,} x {h:,} pixels, more than the {max_pixels / 1e6:g} megapixels "
        "an image may have here"
    )


def _png_size(fh: BinaryIO, name: str) -> tuple[int, int, int]:
    """(height, width, colour type) straight from the IHDR chunk: no decoder involved, so a header
    claiming 100,000 x 100,000 pixels costs nothing."""
    head = fh.read(8 + 8 + 13)
    if len(head) < 29 or head[12:16] != b"IHDR":
        raise ImageSetError(f"{name} is a damaged PNG file (its header is missing)")
    w, h = struct.unpack(">II", head[16:24])
    return h, w, head[25]


def _tiff_pages(tf) -> list:
    # Reduced-resolution copies (pyramids, thumbnails) are not channels.
    return [p for p in tf.pages if not (int(getattr(p, "subfiletype", 0) or 0) & 1)]


def _tiff_shape(tf, name: str, max_pixels: int) -> tuple[int, int, int]:
    pages = _tiff_pages(tf)
    if not pages:
        raise ImageSetError(f"{name} is a TIFF file without any image in it")
    if len(pages) > MAX_TIFF_PAGES:
        raise ImageSetError(
            f"{name} has {len(pages):,} pages; at most {MAX_TIFF_PAGES} pages (channels) are read"
        )
    h, w = int(pages[0].imagelength), int(pages[0].imagewidth)
    channels = 0
    for p in pages:
        if (int(p.imagelength), int(p.imagewidth)) != (h, w):
            raise ImageSetError(f"{name} has pages of different sizes, so they cannot be its channels")
        channels += int(p.samplesperpixel) * max(1, int(getattr(p, "imagedepth", 1) or 1))
    if h * w > max_pixels:
        raise ImageSetError(_too_big(name, h, w, max_pixels))
    # A few channels of a maximal image are fine; a thousand-channel cube of one is not.
    if h * w * channels > 4 * max_pixels:
        raise ImageSetError(
            f"{name} holds {h * w * channels:,} values in {channels} channels, "
            f"more than {4 * max_pixels:,} allowed"
        )
    return h, w, channels


def image_shape(source: Source, name: str = "", max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int, int]:
    """(height, width, channels) from the header only; raises ImageSetError for non-images,
    damaged headers and images over `max_pixels`. PNG channels count colour planes (RGBA = 4)."""
    name = _name(source, name)
    try:
        with _open(source) as fh:
            kind = _kind(fh.read(8))
            fh.seek(0)
            if kind == "png":
                h, w, colour = _png_size(fh, name)
                if h * w > max_pixels:
                    raise ImageSetError(_too_big(name, h, w, max_pixels))
                return h, w, {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour, 1)
            if kind == "tiff":
                import tifffile

                with tifffile.TiffFile(fh) as tf:
                    return _tiff_shape(tf, name, max_pixels)
    except ImageSetError:
        raise
    except Exception as exc:  # a damaged header must not escape as an internal error
        raise ImageSetError(f"{name} could not be read as an image (the file may be damaged: {_why(exc)})")
    raise ImageSetError(not_an_image(name))


def _why(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def read_image(source: Source, name: str = "", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A PNG or TIFF file (path or bytes) as float32, (h, w) or (h, w, c) for multi-page or
    multi-sample TIFF stacks. Sizes are checked from the header before any pixel is decoded."""
    name = _name(source, name)
    image_shape(source, name, max_pixels)  # refuses non-images and huge ones before decoding
    try:
        with _open(source) as fh:
            kind = _kind(fh.read(8))
            fh.seek(0)
            return _read_png(fh) if kind == "png" else _read_tiff(fh)
    except ImageSetError:
        raise
    except Exception as exc:
        raise ImageSetError(f"{name} could not be read as an image (the file may be damaged: {_why(exc)})")


# ---------------------------------------------------------------- PNG (and anything Pillow opens)
def _read_png(fh: BinaryIO) -> np.ndarray:
    with warnings.catch_warnings():
        # Our own max_pixels check ran already; Pillow's bomb warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(fh)
        im.load()
    return _from_pillow(im)


def _from_pillow(im: Image.Image) -> np.ndarray:
    mode = im.mode
    transparency = im.info.get("transparency")
    if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
        a = np.asarray(im).astype(np.float32)
        if isinstance(transparency, int) and mode != "F":  # tRNS: one grey value means "no data"
            a[np.asarray(im) == transparency] = np.nan
        return a
    if mode in ("LA", "La"):
        la = np.asarray(im.convert("LA"))
        a = la[..., 0].astype(np.float32)
        a[la[..., 1] == 0] = np.nan
        return a
    rgba = np.asarray(im.convert("RGBA"))  # palettes, RGB (+ tRNS), CMYK, ...
    return colour_to_scalar(rgba[..., :3], rgba[..., 3] > 0)


# ---------------------------------------------------------------- colour renders
def _nearest_viridis(colours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest viridis entry and the distance to it, for (n, 3) colours."""
    lut = (VIRIDIS_LUT * 255).astype(np.float32)
    idx = np.empty(len(colours), dtype=np.int64)
    dist = np.empty(len(colours), dtype=np.float32)
    for start in range(0, len(colours), 8192):  # chunks keep the (n, 256) table small
        c = colours[start : start + 8192].astype(np.float32)
        d2 = ((c[:, None, :] - lut[None, :, :]) ** 2).sum(axis=-1)
        best = d2.argmin(axis=1)
        idx[start : start + 8192] = best
        dist[start : start + 8192] = np.sqrt(d2[np.arange(len(c)), best])
    return idx, dist


def colour_to_scalar(rgb: np.ndarray, opaque: np.ndarray | None = None) -> np.ndarray:
    """A colour render (h, w, 3) uint8 back to one value per pixel.

    Close to viridis on average: each pixel's position on the colour map, 0..1 (an intensity
    render, so the scalar is what was drawn); colours far from every viridis entry (annotations)
    are NaN. Otherwise: the mean of R, G and B. Pixels outside `opaque` are NaN.
    """
    rgb = np.asarray(rgb)
    if opaque is None:
        opaque = np.ones(rgb.shape[:2], dtype=bool)
    out = np.full(rgb.shape[:2], np.nan, dtype=np.float32)
    pixels = rgb[opaque].astype(np.uint32)
    if pixels.size == 0:
        return out
    if rgb.dtype == np.uint8:
        # Renders use a few hundred distinct colours: match those, not every pixel.
        packed = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
        uniq, inverse = np.unique(packed, return_inverse=True)
        colours = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1)
        idx, dist = _nearest_viridis(colours)
        if float(dist[inverse].mean()) <= VIRIDIS_MAX_MEAN_DISTANCE:
            values = idx.astype(np.float32) / 255.0
            values[dist > VIRIDIS_MAX_PIXEL_DISTANCE] = np.nan  # annotations, not data
            out[opaque] = values[inverse]
            return out
    out[opaque] = pixels.astype(np.float32).mean(axis=1)
    return out


# ---------------------------------------------------------------- TIFF
def _page_array(page) -> np.ndarray:
    """One TIFF page as (h, w, k): Y and X first, whatever else (samples, depth) as channels."""
    a = np.asarray(page.asarray())
    axes = str(getattr(page, "axes", "") or "")
    if len(axes) == a.ndim and "Y" in axes and "X" in axes:
        a = np.moveaxis(a, [axes.index("Y"), axes.index("X")], [0, 1])
    elif a.ndim == 3 and a.shape[0] < min(a.shape[1:]):  # no axes: guess planar (s, h, w)
        a = np.moveaxis(a, 0, -1)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _read_tiff(fh: BinaryIO) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(fh) as tf:
        pages = _tiff_pages(tf)
        arrays = [_page_array(p) for p in pages]
        if len(pages) == 1 and arrays[0].shape[2] in (3, 4) and arrays[0].dtype == np.uint8:
            # An 8-bit RGB(A) TIFF is a picture, read like an RGB PNG (viridis or grey).
            rgba = arrays[0]
            opaque = rgba[..., 3] > 0 if rgba.shape[2] == 4 else None
            return colour_to_scalar(rgba[..., :3], opaque)
    stack = np.concatenate([a.astype(np.float32) for a in arrays], axis=2)
    return stack[..., 0] if stack.shape[2] == 1 else stack
