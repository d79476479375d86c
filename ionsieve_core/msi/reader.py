"""Fast imzML metadata reader.

Only what extraction needs is kept: per-spectrum pixel coordinates and the position of its
two arrays in the .ibd file, as compact numpy arrays (about 40 bytes per spectrum), plus
file-level facts (dtypes, storage mode, UUID, instrument).

Binary data may be uncompressed or zlib-compressed (per array kind), in any of the number
types the PSI-MS and imzML vocabularies name (8/16/32/64-bit integers, 16/32/64-bit floats).
Files whose XML the scans below cannot make sense of are handed to pyimzml's parser before
giving up; only what neither can read is refused.

Speed: the <spectrum> blocks are scanned as bytes with compiled regular expressions, one
chunk of the file at a time (bounded memory). That is an order of magnitude faster than a
DOM/iterparse walk. Files whose layout the scan cannot vouch for (counts that do not line
up, arrays described inline instead of by reference) go through a general
ElementTree.iterparse path instead. pyimzml stays the reference in the tests.

Safety: documents with a DOCTYPE/ENTITY declaration are refused before any XML parser sees
them ("billion laughs"); the regex scan never expands entities at all.
"""

from __future__ import annotations

import html
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse as safe_iterparse
from pyimzml.ontology.ontology import ACCESSION_FIX_MAPPING

from ionsieve_core.msi.errors import MSIError

# Read the spectrum list in pieces of this size: bounds memory for multi-GB .imzML files.
_CHUNK_BYTES = 32 << 20
# The part before <spectrumList> (header) is small in practice; refuse absurd ones.
_MAX_HEADER_BYTES = 64 << 20

# cvParam accessions we act on.
_DTYPES = {
    "MS:1000521": np.dtype("<f4"),  # 32-bit float
    "MS:1000523": np.dtype("<f8"),  # 64-bit float
    "MS:1000519": np.dtype("<i4"),  # 32-bit integer
    "MS:1000522": np.dtype("<i8"),  # 64-bit integer
    "IMS:1000141": np.dtype("<i4"),  # 32-bit integer (older IMS term)
    "IMS:1000142": np.dtype("<i8"),  # 64-bit integer (older IMS term)
    "MS:1000520": np.dtype("<f2"),  # 16-bit float
    "IMS:1100000": np.dtype("<i1"),  # 8-bit integer
    "IMS:1100001": np.dtype("<i2"),  # 16-bit integer
}
# Compression we decode ourselves (zlib is in the standard library; pyimzml's parser does not
# decompress at all, so it cannot be the fallback here).
_CODECS = {"MS:1000574": "zlib", "MS:1000576": None}  # None: "no compression"
# Compression nobody here decodes: refused with its name.
_UNSUPPORTED_CODECS = {
    "MS:1002312": "MS-Numpress linear prediction",
    "MS:1002313": "MS-Numpress positive integer",
    "MS:1002314": "MS-Numpress short logged float",
    "MS:1002746": "MS-Numpress linear prediction + zlib",
    "MS:1002747": "MS-Numpress positive integer + zlib",
    "MS:1002748": "MS-Numpress short logged float + zlib",
    "MS:1003088": "truncation + zlib",
    "MS:1003089": "truncation, delta prediction + zlib",
    "MS:1003090": "truncation, linear prediction + zlib",
    "IMS:1005001": "xz",
    "IMS:1005002": "lz4",
    "IMS:1005003": "zstd",
}
# Any of these inside a <spectrum> means compression is declared per array, not per group:
# the byte scan hands such files to the XML parser, which reads inline cvParams.
_INLINE_CODEC_MARKS = (b"MS:100057", b"MS:100231", b"MS:100274", b"MS:100308", b"IMS:100500")
_MZ_ARRAY, _INT_ARRAY = "MS:1000514", "MS:1000515"

_RE_ATTR = re.compile(rb'([\w:]+)\s*=\s*"([^"]*)"')
_RE_CVPARAM = re.compile(rb"<cvParam\b([^>]*)>")
_RE_GROUP = re.compile(rb"<referenceableParamGroup\b([^>]*)>(.*?)</referenceableParamGroup>", re.S)
_RE_BLOCK = {
    name: re.compile(rb"<%s\b[^>]*>(.*?)</%s>" % (name, name), re.S)
    for name in (
        b"fileContent",
        b"scanSettings",
        b"instrumentConfiguration",
        b"source",
        b"analyzer",
        b"detector",
    )
}
_RE_SPECTRUM_LIST = re.compile(rb"<spectrumList\b([^>]*)>")


def _re_value(accession: bytes) -> re.Pattern[bytes]:
    # accession then value inside one cvParam tag; value may be signed (broken 32-bit writers)
    return re.compile(rb'accession="' + accession + rb'"[^>]*?value="\s*(-?\d+)\s*"')


_RE_X = _re_value(rb"IMS:1000050")
_RE_Y = _re_value(rb"IMS:1000051")
_RE_Z = _re_value(rb"IMS:1000052")
_RE_OFFSET = _re_value(rb"IMS:1000102")
_RE_LENGTH = _re_value(rb"IMS:1000103")
_RE_ENCODED = _re_value(rb"IMS:1000104")
_RE_REF = re.compile(rb'<referenceableParamGroupRef\s+ref="([^"]*)"')
_RE_INLINE_KIND = re.compile(rb'accession="MS:100051([45])"')


@dataclass
class ImzMLMeta:
    """Everything needed to read ion images out of an imzML/ibd pair.

    Coordinates are 0-based: file pixel (x=1, y=1) is image[0, 0]; y goes down, x across.
    """

    imzml_path: str
    ibd_path: str
    uuid: str | None
    continuous: bool
    centroid: bool | None
    mz_dtype: np.dtype
    int_dtype: np.dtype
    xs: np.ndarray  # int32, 0-based column
    ys: np.ndarray  # int32, 0-based row
    mz_offsets: np.ndarray  # int64 byte offsets into the .ibd
    mz_lengths: np.ndarray  # int32 number of values
    mz_encoded_lengths: np.ndarray  # int64 bytes, as written in the file (-1 if absent)
    int_offsets: np.ndarray
    int_lengths: np.ndarray
    int_encoded_lengths: np.ndarray
    shape: tuple[int, int]  # (height, width)
    ibd_size: int
    instrument: dict[str, str] = field(default_factory=dict)
    mz_compression: str | None = None  # "zlib" or None (plain)
    int_compression: str | None = None

    @property
    def compressed(self) -> bool:
        return self.mz_compression is not None or self.int_compression is not None

    @property
    def n_spectra(self) -> int:
        return int(self.xs.shape[0])

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def shared_mz(self) -> bool:
        """True when every spectrum points at the same m/z array (continuous storage)."""
        return bool(
            self.n_spectra > 0
            and np.all(self.mz_offsets == self.mz_offsets[0])
            and np.all(self.mz_lengths == self.mz_lengths[0])
        )


@dataclass
class _Group:
    kind: str | None = None  # "mz" | "int" | None
    dtype: np.dtype | None = None
    codec: str | None = None  # accession of a compression cvParam, if any
    accessions: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)  # accession -> name


def _attrs(raw: bytes) -> dict[str, str]:
    return {
        k.decode("latin-1"): html.unescape(v.decode("utf-8", "replace")) for k, v in _RE_ATTR.findall(raw)
    }


def _cvparams(block: bytes) -> list[dict[str, str]]:
    return [_attrs(m) for m in _RE_CVPARAM.findall(block)]


def _fmt(n: int) -> str:
    return f"{n:,}"


def _find_ibd(imzml: Path) -> Path:
    for suffix in (".ibd", ".IBD", ".Ibd"):
        cand = imzml.with_suffix(suffix)
        if cand.exists():
            return cand
    raise MSIError(f"no .ibd file was found next to {imzml.name}")


def _read_header(f) -> tuple[bytes, int]:  # noqa: ANN001 - binary file object
    """Return (header bytes before <spectrumList>, file offset where it starts)."""
    buf = b""
    while True:
        piece = f.read(1 << 20)
        if not buf:
            _check_prolog(piece)
        if not piece:
            idx = buf.find(b"<spectrumList")
            return buf, (idx if idx >= 0 else -1)
        buf += piece
        idx = buf.find(b"<spectrumList", max(0, len(buf) - len(piece) - 20))
        if idx >= 0:
            return buf[:idx], idx
        if len(buf) > _MAX_HEADER_BYTES:
            if b"<mzML" not in buf[: 1 << 20]:
                raise MSIError("this XML file is not imzML")
            raise MSIError("the .imzML file lists no spectra")


def _check_prolog(first: bytes) -> None:
    head = first.lstrip(b"\xef\xbb\xbf").lstrip()
    if not head.startswith(b"<") or b"\x00" in first[:4096]:
        raise MSIError("this file is not XML")
    root_at = head.find(b"<mzML")
    prolog = head[: root_at if root_at >= 0 else 1 << 16]
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise MSIError("the file contains XML entity declarations, which are refused for safety")


def _fixed_accession(acc: str, name: str) -> str:
    # Known exporter bugs (e.g. "32-bit float" under the 64-bit accession): pyimzml's table of
    # them says which of the two to believe. Reading 32-bit data as 64-bit is pure garbage.
    return ACCESSION_FIX_MAPPING.get((acc, name), acc)


def _parse_groups(header: bytes) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for attrs_raw, body in _RE_GROUP.findall(header):
        gid = _attrs(attrs_raw).get("id", "")
        g = _Group()
        for p in _cvparams(body):
            acc = _fixed_accession(p.get("accession", ""), p.get("name", ""))
            g.accessions.add(acc)
            g.names[acc] = p.get("name", "")
            if acc == _MZ_ARRAY:
                g.kind = "mz"
            elif acc == _INT_ARRAY:
                g.kind = "int"
            elif acc in _DTYPES:
                g.dtype = _DTYPES[acc]
            elif acc in _CODECS or acc in _UNSUPPORTED_CODECS:
                g.codec = acc
        groups[gid] = g
    return groups


def _instrument(header: bytes, all_accs: set[str]) -> dict[str, str]:
    info: dict[str, str] = {}
    m = _RE_BLOCK[b"instrumentConfiguration"].search(header)
    if m:
        body = m.group(1)
        top = re.sub(rb"<componentList\b.*?</componentList>", b"", body, flags=re.S)
        for p in _cvparams(top):
            if p.get("accession") == "MS:1000529":  # serial number is not a model
                continue
            info["instrument_model"] = p.get("value") or p.get("name", "")
            break
        for key, tag in (("ion_source", b"source"), ("analyzer", b"analyzer"), ("detector", b"detector")):
            names = [
                p.get("name", "")
                for blk in _RE_BLOCK[tag].findall(body)
                for p in _cvparams(blk)
                if not p.get("value")
            ]
            if names:
                info[key] = ", ".join(names[:2])
    m = _RE_BLOCK[b"scanSettings"].search(header)
    if m:
        for p in _cvparams(m.group(1)):
            acc = p.get("accession")
            if acc in ("IMS:1000046", "IMS:1000047"):
                unit = p.get("unitName", "")
                axis = "x" if acc.endswith("6") else "y"
                info[f"pixel_size_{axis}"] = (p.get("value", "") + " " + unit).strip()
    if "MS:1000130" in all_accs:
        info["polarity"] = "positive"
    elif "MS:1000129" in all_accs:
        info["polarity"] = "negative"
    return info


def _fix_offsets(values: np.ndarray) -> np.ndarray:
    # Same repair as pyimzml: some writers store offsets > 2 GiB as signed 32-bit numbers.
    if values.size == 0 or values.min() >= 0:
        return values
    neg = values < 0
    prev_nonneg = np.concatenate([[False], ~neg[:-1]])
    wraps = np.cumsum(neg & prev_nonneg).astype(np.int64)
    return values + wraps * (1 << 32)


class _NeedGeneralParser(Exception):
    """The fast byte scan cannot vouch for this layout; use iterparse."""


def _ints(found: list[bytes]) -> np.ndarray:
    if not found:
        return np.zeros(0, np.int64)
    # one C-level text parse is ~2x faster than int() per item or an S-array astype
    return np.fromstring(b" ".join(found), dtype=np.int64, sep=" ")


_RE_NUMVALUE = re.compile(rb'value="(\d+)"')
_RE_ACCESSION = re.compile(rb'accession="([^"]*)"')
_RE_BDA = re.compile(rb"<binaryDataArray\b.*?</binaryDataArray>", re.S)


@dataclass
class _Template:
    """Where each number sits in a spectrum block, learnt from one block.

    Most writers emit every <spectrum> with the same tags in the same order, so a single
    `value="123"` scan of a whole chunk, reshaped to (n, K), yields all columns at once.
    """

    signature: tuple[tuple[str, str | None], ...]  # (accession, array kind) per number
    cols: dict[str, int]

    @property
    def k(self) -> int:
        return len(self.signature)


def _learn_template(block: bytes, groups: dict[str, _Group]) -> _Template | None:
    arrays = []  # (start, end, kind)
    for m in _RE_BDA.finditer(block):
        body = m.group(0)
        kind = None
        for ref in _RE_REF.findall(body):
            g = groups.get(ref.decode("utf-8", "replace"))
            if g is not None and g.kind:
                kind = g.kind
        inline = _RE_INLINE_KIND.findall(body)
        if inline:
            kind = "int" if inline[0] == b"5" else "mz"
        arrays.append((m.start(), m.end(), kind))
    sig = []
    for m in _RE_NUMVALUE.finditer(block):
        tag_start = block.rfind(b"<", 0, m.start())
        acc = _RE_ACCESSION.search(block, tag_start, m.start())
        kind = next((k for a, b, k in arrays if a <= m.start() < b), None)
        sig.append((acc.group(1).decode("latin-1") if acc else "", kind))
    cols: dict[str, int] = {}
    names = {("IMS:1000050", None): "x", ("IMS:1000051", None): "y"}
    for kind in ("mz", "int"):
        names[("IMS:1000102", kind)] = f"{kind}_off"
        names[("IMS:1000103", kind)] = f"{kind}_len"
        names[("IMS:1000104", kind)] = f"{kind}_enc"
    for i, key in enumerate(sig):
        name = names.get(key)
        if name is not None:
            if name in cols:
                return None  # the same field twice: not a layout we can trust
            cols[name] = i
    needed = {"x", "y", "mz_off", "mz_len", "int_off", "int_len"}
    if not needed <= cols.keys():
        return None
    return _Template(signature=tuple(sig), cols=cols)


def _scan_chunk_template(
    buf: bytes, end: int, tpl: _Template, groups: dict[str, _Group], out: dict[str, list]
) -> bool:
    """One regex pass over buf[:end]; False when the chunk does not fit the template.

    Alignment is guarded by: the chunk's last spectrum has the same signature, the number of
    values is a multiple of K, and (later) encoded lengths equal length x item size.
    """
    last_start = buf.rfind(b"<spectrum ", 0, end)
    if last_start < 0:
        return True
    last = _learn_template(buf[last_start:end], groups)
    if last is None or last.signature != tpl.signature:
        return False
    vals = _RE_NUMVALUE.findall(buf, 0, end)
    c = tpl.cols
    has_enc = "mz_enc" in c and "int_enc" in c
    n = len(vals) // tpl.k
    if len(vals) % tpl.k or (not has_enc and buf.count(b"<spectrum ", 0, end) != n):
        return False
    table = _ints(vals).reshape(n, tpl.k)
    for name in ("x", "y", "mz_off", "mz_len", "int_off", "int_len"):
        out[name].append(table[:, c[name]].copy())
    for kind in ("mz", "int"):
        col = c.get(f"{kind}_enc")
        out[f"{kind}_enc"].append(table[:, col].copy() if col is not None else np.full(n, -1, np.int64))
    return True


def _scan_chunk(chunk: bytes, groups: dict[str, _Group], out: dict[str, list]) -> None:
    """Per-field regex scan of complete <spectrum> blocks (layouts the template misses)."""
    n = chunk.count(b"<spectrum ")
    if n == 0:
        return
    xs, ys = _RE_X.findall(chunk), _RE_Y.findall(chunk)
    offs, lens = _RE_OFFSET.findall(chunk), _RE_LENGTH.findall(chunk)
    encs = _RE_ENCODED.findall(chunk)
    if len(xs) != n or len(ys) != n or len(offs) != 2 * n or len(lens) != 2 * n:
        raise _NeedGeneralParser
    if len(encs) not in (0, 2 * n):
        raise _NeedGeneralParser
    if b"MS:100051" in chunk:
        kinds_raw = _RE_INLINE_KIND.findall(chunk)
        if len(kinds_raw) != 2 * n:
            raise _NeedGeneralParser
        is_int = np.array([k == b"5" for k in kinds_raw])
    else:
        refs = [r.decode("utf-8", "replace") for r in _RE_REF.findall(chunk)]
        kinds = [groups[r].kind for r in refs if r in groups and groups[r].kind]
        if len(kinds) != 2 * n:
            raise _NeedGeneralParser
        is_int = np.array([k == "int" for k in kinds])
    pairs = is_int.reshape(n, 2)
    if not np.all(pairs.sum(axis=1) == 1):
        raise _NeedGeneralParser
    off = _ints(offs).reshape(n, 2)
    ln = _ints(lens).reshape(n, 2)
    enc = _ints(encs).reshape(n, 2) if encs else np.full((n, 2), -1, np.int64)
    mz_col = pairs[:, 0].astype(np.intp)  # column holding the m/z array (0 or 1)
    rows = np.arange(n)
    out["x"].append(_ints(xs))
    out["y"].append(_ints(ys))
    out["mz_off"].append(off[rows, mz_col])
    out["mz_len"].append(ln[rows, mz_col])
    out["mz_enc"].append(enc[rows, mz_col])
    out["int_off"].append(off[rows, 1 - mz_col])
    out["int_len"].append(ln[rows, 1 - mz_col])
    out["int_enc"].append(enc[rows, 1 - mz_col])


def _fast_scan(f, start: int, groups: dict[str, _Group]) -> dict[str, list]:  # noqa: ANN001
    """Scan the spectrum list chunk by chunk: template pass, else per-field pass."""
    out: dict[str, list] = {
        k: [] for k in ("x", "y", "mz_off", "mz_len", "mz_enc", "int_off", "int_len", "int_enc", "z")
    }
    f.seek(start)
    carry = b""
    tpl: list[_Template | None] = []

    def scan(buf: bytes, end: int) -> None:
        # Writers that state compression per array do it in every spectrum: looking at the
        # first and last of each chunk costs nothing, searching whole chunks cost 40%.
        a = buf.find(b"<spectrum ", 0, end)
        last = buf.rfind(b"<spectrum ", 0, end)
        ends = (buf.find(b"</spectrum>", a, end) if a >= 0 else -1, end)
        for start, stop in zip((a, last), ends, strict=True):
            if start >= 0 and any(buf.find(m, start, stop) >= 0 for m in _INLINE_CODEC_MARKS):
                raise _NeedGeneralParser
        if any(s >= 0 and buf.find(b"IMS:1000052", s, e) >= 0 for s, e in zip((a, last), ends, strict=True)):
            # positions along z (3-D acquisitions): only which values occur matters
            out["z"].append(np.unique(_ints(_RE_Z.findall(buf, 0, end))))
        if not tpl:
            a = buf.find(b"<spectrum ", 0, end)
            b = buf.find(b"</spectrum>", 0, end)
            tpl.append(_learn_template(buf[a : b + 11], groups) if 0 <= a < b else None)
        if tpl[0] is None or not _scan_chunk_template(buf, end, tpl[0], groups, out):
            _scan_chunk(buf[:end], groups, out)

    while True:
        piece = f.read(_CHUNK_BYTES)
        buf = carry + piece if carry else piece
        end_list = buf.find(b"</spectrumList>", max(0, len(carry) - 16))
        if end_list >= 0:
            scan(buf, end_list)
            return out
        cut = buf.rfind(b"</spectrum>")
        if not piece:
            # file ends inside the spectrum list: scan what is complete
            if cut >= 0:
                scan(buf, cut + len(b"</spectrum>"))
            return out
        if cut < 0:
            carry = buf
            continue
        cut += len(b"</spectrum>")
        scan(buf, cut)
        carry = buf[cut:]


class _Unreadable(MSIError):
    """Our parsers cannot make sense of the spectrum list; pyimzml gets a try before this is
    shown to the user."""


@dataclass
class _Found:
    """Array facts declared per spectrum rather than in referenceable groups."""

    dtypes: dict[str, np.dtype] = field(default_factory=dict)
    codecs: dict[str, set[str | None]] = field(default_factory=dict)  # kind -> accessions


_POSITION = {"IMS:1000050": "x", "IMS:1000051": "y", "IMS:1000052": "z"}


def _binary_array(
    sub: ET.Element, groups: dict[str, _Group]
) -> tuple[str | None, int | None, int | None, int, np.dtype | None, str | None]:
    """One <binaryDataArray>: kind, offset, length, encoded length, number type, codec."""
    kind, off, ln, enc = None, None, None, -1
    dt = None
    codec: str | None = None
    for c in sub.iter():
        ctag = c.tag.rpartition("}")[2]
        if ctag == "referenceableParamGroupRef":
            g = groups.get(c.get("ref", ""))
            if g is not None:
                kind, dt, codec = kind or g.kind, dt or g.dtype, codec or g.codec
            continue
        if ctag != "cvParam":
            continue
        acc = _fixed_accession(c.get("accession", ""), c.get("name", ""))
        if acc == _MZ_ARRAY:
            kind = "mz"
        elif acc == _INT_ARRAY:
            kind = "int"
        elif acc in _DTYPES:
            dt = _DTYPES[acc]
        elif acc in _CODECS or acc in _UNSUPPORTED_CODECS:
            codec = acc
        elif acc == "IMS:1000102":
            off = int(c.get("value"))
        elif acc == "IMS:1000103":
            ln = int(c.get("value"))
        elif acc == "IMS:1000104":
            enc = int(c.get("value"))
    return kind, off, ln, enc, dt, codec


def _add_spectrum(elem: ET.Element, groups: dict[str, _Group], cols: dict[str, list], found: _Found) -> None:
    """Append one <spectrum>'s position and array locations to the columns."""
    pos: dict[str, int] = {}
    arrays: dict[str, tuple[int, int, int]] = {}
    for sub in elem.iter():
        stag = sub.tag.rpartition("}")[2]
        if stag == "cvParam" and sub.get("accession") in _POSITION:
            axis = _POSITION[sub.get("accession")]
            if axis == "z":
                cols["z"].append(int(sub.get("value")))
            else:
                pos[axis] = int(sub.get("value"))
        elif stag == "binaryDataArray":
            kind, off, ln, enc, dt, codec = _binary_array(sub, groups)
            if kind and off is not None and ln is not None:
                arrays[kind] = (off, ln, enc)
                if dt is not None:
                    found.dtypes.setdefault(kind, dt)
                found.codecs.setdefault(kind, set()).add(codec)
    if "x" not in pos or "y" not in pos or "mz" not in arrays or "int" not in arrays:
        raise _Unreadable("a spectrum in this .imzML file lacks its position or its arrays")
    cols["x"].append(pos["x"])
    cols["y"].append(pos["y"])
    for kind in ("mz", "int"):
        off, ln, enc = arrays[kind]
        cols[f"{kind}_off"].append(off)
        cols[f"{kind}_len"].append(ln)
        cols[f"{kind}_enc"].append(enc)


def _general_scan(path: Path, groups: dict[str, _Group]) -> tuple[dict[str, list], _Found]:
    """ElementTree.iterparse walk for layouts the byte scan does not cover.

    Safe because documents with DOCTYPE were refused earlier (no entity expansion possible).
    """
    cols: dict[str, list] = {
        k: [] for k in ("x", "y", "mz_off", "mz_len", "mz_enc", "int_off", "int_len", "int_enc", "z")
    }
    found = _Found()
    slist = None
    try:
        for event, elem in safe_iterparse(str(path), events=("start", "end"), forbid_dtd=True):
            tag = elem.tag.rpartition("}")[2]
            if event == "start":
                if tag == "spectrumList":
                    slist = elem
                continue
            if tag != "spectrum":
                continue
            _add_spectrum(elem, groups, cols, found)
            elem.clear()
            if slist is not None:
                slist.clear()  # drop finished spectra so memory stays flat
    except ET.ParseError as exc:
        raise MSIError(f"the .imzML file is not well-formed XML ({exc})") from None
    except DefusedXmlException:
        raise MSIError("the file contains XML entity declarations, which are refused for safety") from None
    out = {k: [np.asarray(v, dtype=np.int64)] for k, v in cols.items() if k != "z"}
    out["z"] = [np.unique(np.asarray(cols["z"], dtype=np.int64))]
    return out, found


def _pyimzml_scan(path: Path) -> tuple[dict[str, list], _Found]:
    """Last resort for XML our scans cannot read: pyimzml's own parser (the reference reader).

    It finds number types by name as well as accession, which rescues files written with a
    wrong accession. DOCTYPEs were refused before, so its XML parser expands no entities.
    """
    import warnings

    from pyimzml.ImzMLParser import ImzMLParser

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns about cvParam names it does not know
            p = ImzMLParser(str(path), parse_lib="ElementTree", ibd_file=None)
    except Exception:  # noqa: BLE001 - any failure there means "neither reader can read it"
        return {}, _Found()
    chars = {"f": "<f4", "d": "<f8", "i": "<i4", "l": "<i8"}
    found = _Found()
    for kind, prec in (("mz", p.mzPrecision), ("int", p.intensityPrecision)):
        if prec in chars:
            found.dtypes[kind] = np.dtype(chars[prec])
    coords = np.asarray(p.coordinates, dtype=np.int64).reshape(-1, 3)
    n = coords.shape[0]
    cols = {
        "x": [coords[:, 0]],
        "y": [coords[:, 1]],
        "mz_off": [np.asarray(p.mzOffsets, np.int64)],
        "mz_len": [np.asarray(p.mzLengths, np.int64)],
        "mz_enc": [np.full(n, -1, np.int64)],
        "int_off": [np.asarray(p.intensityOffsets, np.int64)],
        "int_len": [np.asarray(p.intensityLengths, np.int64)],
        "int_enc": [np.full(n, -1, np.int64)],
        "z": [np.unique(coords[:, 2])],
    }
    return cols, found


def _encoded_lengths_agree(cols: dict[str, list], groups: dict[str, _Group]) -> bool:
    for kind in ("mz", "int"):
        dt = next((g.dtype for g in groups.values() if g.kind == kind and g.dtype), None)
        codec = next((g.codec for g in groups.values() if g.kind == kind and g.codec), None)
        if dt is None or not cols[f"{kind}_enc"] or _CODECS.get(codec or "") is not None:
            continue  # compressed arrays are shorter than length x item size
        enc = np.concatenate(cols[f"{kind}_enc"])
        ln = np.concatenate(cols[f"{kind}_len"])
        given = enc >= 0
        if np.any(enc[given] != ln[given] * dt.itemsize):
            return False
    return True


def _check_header(header: bytes, list_at: int) -> None:
    # Entity declarations anywhere before the spectra (not only in the prolog) are refused.
    if b"<!DOCTYPE" in header or b"<!ENTITY" in header:
        raise MSIError("the file contains XML entity declarations, which are refused for safety")
    if b"<mzML" not in header and b"<indexedmzML" not in header:
        raise MSIError("this XML file is not imzML")
    if b"IMS:" not in header and b"imagingMS" not in header:
        raise MSIError("this XML file is not imzML (it has no imaging metadata)")
    if list_at < 0:
        raise MSIError("the .imzML file lists no spectra")


def _scan_spectra(
    path: Path, force_general: bool, force_pyimzml: bool
) -> tuple[bytes, dict[str, _Group], dict[str, list], _Found]:
    """The header and the spectrum index: byte scan first, then the XML parser, then pyimzml."""
    with open(path, "rb") as f:
        header, list_at = _read_header(f)
        _check_header(header, list_at)
        groups = _parse_groups(header)
        for kind in ("mz", "int"):
            _codec(kind, groups, _Found())  # refuse unreadable compression before any scan
        cols: dict[str, list] | None = None
        found = _Found()
        if not (force_general or force_pyimzml):
            try:
                cols = _fast_scan(f, list_at, groups)
            except _NeedGeneralParser:
                cols = None
    if force_pyimzml:
        cols, found = _pyimzml_scan(path)
        if not cols:
            raise MSIError("pyimzml cannot read this .imzML file")
    elif (
        cols is None
        or not _encoded_lengths_agree(cols, groups)
        or not all(any(g.kind == k and g.dtype for g in groups.values()) for k in ("mz", "int"))
    ):
        # (a byte scan whose encoded lengths disagree may have misread a layout, and number
        # types stated on each array are read by the XML parser only)
        try:
            cols, found = _general_scan(path, groups)
        except _Unreadable as exc:
            cols, found = _pyimzml_scan(path)
            if not cols:
                raise MSIError(str(exc)) from None
    return header, groups, cols, found


def _columns(cols: dict[str, list]) -> dict[str, np.ndarray]:
    zs = np.unique(np.concatenate(cols.pop("z", []) or [np.zeros(0, np.int64)]))
    arr = {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in cols.items()}
    if int(arr["x"].shape[0]) == 0:
        raise MSIError("the .imzML file lists no spectra")
    if zs.size > 1:
        # planes would silently overwrite each other in one 2-D image
        raise MSIError(
            f"this is a 3-D dataset with {zs.size:,} sections along z; IonSieve "
            "images one section at a time: export each section as its own imzML"
        )
    return arr


def _number_types(
    path: Path, groups: dict[str, _Group], found: _Found, force_pyimzml: bool
) -> tuple[np.dtype, np.dtype]:
    mz_dtype = next((g.dtype for g in groups.values() if g.kind == "mz" and g.dtype), None)
    int_dtype = next((g.dtype for g in groups.values() if g.kind == "int" and g.dtype), None)
    mz_dtype = mz_dtype or found.dtypes.get("mz")
    int_dtype = int_dtype or found.dtypes.get("int")
    if (mz_dtype is None or int_dtype is None) and not force_pyimzml:
        # e.g. a number type given by its name under a wrong accession: pyimzml goes by name
        fallback = _pyimzml_scan(path)[1].dtypes
        mz_dtype = mz_dtype or fallback.get("mz")
        int_dtype = int_dtype or fallback.get("int")
    if mz_dtype is None or int_dtype is None:
        raise MSIError(
            "the .imzML file does not say which number type its m/z values or "
            "intensities are stored in (32- or 64-bit float or integer)"
        )
    return mz_dtype, int_dtype


def _grid(arr: dict[str, np.ndarray], max_pixels: int) -> tuple[int, int]:
    if arr["x"].min() < 1 or arr["y"].min() < 1:
        raise MSIError("the .imzML file has pixel positions below 1, which imzML does not allow")
    width, height = int(arr["x"].max()), int(arr["y"].max())
    if width * height > max_pixels:
        raise MSIError(
            f"the image grid {_fmt(width)} x {_fmt(height)} pixels is too large "
            f"(limit: {_fmt(max_pixels)} pixels)"
        )
    return width, height


def _acquisition_mode(accs: set[str]) -> tuple[bool, bool | None]:
    """(continuous, centroid): centroid None where the file does not say."""
    continuous = "IMS:1000030" in accs and "IMS:1000031" not in accs
    centroid: bool | None = None
    if "MS:1000127" in accs:
        centroid = True
    elif "MS:1000128" in accs:
        centroid = False
    return continuous, centroid


def _matching_ibd(path: Path, ibd_path: str | os.PathLike[str] | None, uuid: str | None) -> Path:
    ibd = Path(ibd_path) if ibd_path is not None else _find_ibd(path)
    if not ibd.is_file():
        raise MSIError(f"no .ibd file was found next to {path.name}")
    if uuid:
        hexid = re.sub(r"[^0-9a-fA-F]", "", uuid).lower()
        with open(ibd, "rb") as fb:
            head16 = fb.read(16)
        if len(hexid) == 32 and head16.hex() != hexid:
            raise MSIError("the .ibd file does not belong to this .imzML: UUIDs differ")
    return ibd


def _check_arrays(
    arr: dict[str, np.ndarray],
    dtypes: tuple[np.dtype, np.dtype],
    codecs: dict[str, str | None],
    ibd_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Offsets and lengths of both arrays, refused where they cannot describe this .ibd."""
    n = int(arr["x"].shape[0])
    mz_off = _fix_offsets(arr["mz_off"])
    int_off = _fix_offsets(arr["int_off"])
    mz_len = arr["mz_len"].astype(np.int32)
    int_len = arr["int_len"].astype(np.int32)
    if np.any(mz_len != int_len):
        bad = int(np.argmax(mz_len != int_len))
        raise MSIError(
            f"spectrum {_fmt(bad + 1)} has {_fmt(int(mz_len[bad]))} m/z values but "
            f"{_fmt(int(int_len[bad]))} intensities"
        )
    mz_end = _array_ends(mz_off, mz_len, arr["mz_enc"], dtypes[0], codecs["mz"])
    int_end = _array_ends(int_off, int_len, arr["int_enc"], dtypes[1], codecs["int"])
    cut = np.maximum(mz_end, int_end) > ibd_size
    if np.any(cut) or np.any(mz_off < 0) or np.any(int_off < 0):
        first = int(np.argmax(cut | (mz_off < 0) | (int_off < 0)))
        raise MSIError(f"the .ibd file is truncated at spectrum {_fmt(first + 1)} of {_fmt(n)}")
    # An array that overlaps its partner means the offsets describe some other .ibd.
    both = (mz_len > 0) & (int_len > 0)
    overlap = both & (mz_off < int_end) & (int_off < mz_end)
    if np.any(overlap):
        first = int(np.argmax(overlap))
        raise MSIError(
            "the .ibd file does not match its .imzML: the m/z and intensity arrays "
            f"of spectrum {_fmt(first + 1)} overlap"
        )
    return mz_off, mz_len, int_off, int_len


def read_metadata(
    imzml_path: str | os.PathLike[str],
    ibd_path: str | os.PathLike[str] | None = None,
    max_pixels: int = 50_000_000,
    *,
    _force_general: bool = False,
    _force_pyimzml: bool = False,
) -> ImzMLMeta:
    """Read an imzML file's spectrum index and check it against its .ibd file.

    Raises MSIError with a plain-language sentence for every input we refuse.
    """
    path = Path(imzml_path)
    if not path.is_file():
        raise MSIError(f"the file {path.name} does not exist")
    header, groups, cols, found = _scan_spectra(path, _force_general, _force_pyimzml)
    all_accs = {p.get("accession", "") for p in _cvparams(header)}
    arr = _columns(cols)
    mz_dtype, int_dtype = _number_types(path, groups, found, _force_pyimzml)
    codecs = {kind: _codec(kind, groups, found) for kind in ("mz", "int")}
    width, height = _grid(arr, max_pixels)
    continuous, centroid = _acquisition_mode(all_accs)
    m = re.search(rb'accession="IMS:1000080"[^>]*?value="([^"]*)"', header)
    uuid = m.group(1).decode("ascii", "replace") if m else None
    ibd = _matching_ibd(path, ibd_path, uuid)
    ibd_size = ibd.stat().st_size
    mz_off, mz_len, int_off, int_len = _check_arrays(arr, (mz_dtype, int_dtype), codecs, ibd_size)
    return ImzMLMeta(
        imzml_path=str(path),
        ibd_path=str(ibd),
        uuid=uuid,
        continuous=continuous,
        centroid=centroid,
        mz_dtype=mz_dtype,
        int_dtype=int_dtype,
        xs=(arr["x"] - 1).astype(np.int32),
        ys=(arr["y"] - 1).astype(np.int32),
        mz_offsets=mz_off.astype(np.int64),
        mz_lengths=mz_len,
        mz_encoded_lengths=arr["mz_enc"].astype(np.int64),
        int_offsets=int_off.astype(np.int64),
        int_lengths=int_len,
        int_encoded_lengths=arr["int_enc"].astype(np.int64),
        shape=(height, width),
        ibd_size=int(ibd_size),
        instrument=_instrument(header, all_accs),
        mz_compression=codecs["mz"],
        int_compression=codecs["int"],
    )


def _codec(kind: str, groups: dict[str, _Group], found: _Found) -> str | None:
    """The compression of one array kind ("zlib" or None); refuses what nobody here decodes."""
    accs = set(found.codecs.get(kind, set()))
    accs |= {g.codec for g in groups.values() if g.kind == kind and g.codec}
    accs.discard(None)
    what = "m/z values" if kind == "mz" else "intensities"
    bad = sorted(_UNSUPPORTED_CODECS[a] for a in accs if a in _UNSUPPORTED_CODECS)
    if bad:
        raise MSIError(
            f"the {what} are stored with {bad[0]} compression, which neither "
            "IonSieve nor pyimzml can read; export the dataset again without "
            "compression or with zlib compression"
        )
    names = {_CODECS[a] for a in accs}
    if len(names) > 1:
        # group and spectrum disagree, or spectra differ: no single reading is right
        raise MSIError(
            f"the .imzML file declares both compressed and uncompressed {what}; "
            "export the dataset again with one setting"
        )
    return names.pop() if names else None


def _array_ends(
    off: np.ndarray, ln: np.ndarray, enc: np.ndarray, dtype: np.dtype, codec: str | None
) -> np.ndarray:
    """Byte just past each array in the .ibd (compressed: its encoded length, when given)."""
    if codec is None:
        return off + ln.astype(np.int64) * dtype.itemsize
    # without an encoded length only the start can be checked; the decoder finds the end
    return off + np.where(enc >= 0, enc, np.minimum(ln, 1))
