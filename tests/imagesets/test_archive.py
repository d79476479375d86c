from __future__ import annotations

import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ionsieve_core.imagesets.archive import entry_parts, safe_extract
from ionsieve_core.imagesets.errors import ImageSetError
from ionsieve_core.imagesets.layouts import plan_import
from tests.imagesets.helpers import listing, make_zip, png_bytes

PNG = png_bytes(np.arange(64, dtype=np.uint8).reshape(8, 8))


def refused(tmp_path: Path, zip_path: Path, **limits) -> ImageSetError:
    dest = tmp_path / "dest"
    with pytest.raises(ImageSetError) as err:
        safe_extract(zip_path, dest, **limits)
    assert listing(dest) == [], "nothing may be left behind"
    return err.value


def test_it_extracts_a_gold_standard_tree_that_plans_as_its_datasets(tmp_path):
    z = make_zip(
        tmp_path / "gs.zip",
        {
            "ds1/on/a.png": PNG,
            "ds1/off/b.png": PNG,
            "ds2/on/c.png": PNG,
            "__MACOSX/ds1/._a.png": b"junk",
            "ds1/.DS_Store": b"junk",
        },
    )
    root = safe_extract(z, tmp_path / "x")
    assert root == tmp_path / "x" / "gs"
    assert listing(root) == [
        "ds1",
        "ds1/off",
        "ds1/off/b.png",
        "ds1/on",
        "ds1/on/a.png",
        "ds2",
        "ds2/on",
        "ds2/on/c.png",
    ]
    plan = plan_import(root)
    assert plan.layout == "gs"
    assert [(d.name, [(i.name, i.labels) for i in d.items]) for d in plan.datasets] == [
        ("ds1", [("a", ["on"]), ("b", ["off"])]),
        ("ds2", [("c", ["on"])]),
    ]


def test_it_plans_a_zipped_single_dataset_folder_by_its_name(tmp_path):
    z = make_zip(tmp_path / "upload.zip", {"spheroids/on/a.png": PNG, "spheroids/off/b.png": PNG})
    plan = plan_import(safe_extract(z, tmp_path / "x"))
    assert [(d.name, len(d.items)) for d in plan.datasets] == [("spheroids", 2)]
    z = make_zip(tmp_path / "labels.zip", {"on/a.png": PNG, "off/b.png": PNG})
    plan = plan_import(safe_extract(z, tmp_path / "y"), classes=["off", "on"])
    assert plan.datasets[0].name == "labels" and plan.classes_seen == ["off", "on"]
    z = make_zip(tmp_path / "only_on.zip", {"on/a.png": PNG})  # a lone label folder is not a wrapper
    plan = plan_import(safe_extract(z, tmp_path / "z"), classes=["off", "on"])
    assert plan.layout == "gs" and plan.datasets[0].items[0].labels == ["on"]


def test_it_never_overwrites_or_cleans_an_existing_folder(tmp_path):
    (tmp_path / "x" / "gs").mkdir(parents=True)
    (tmp_path / "x" / "gs" / "keep.txt").write_text("mine")
    root = safe_extract(make_zip(tmp_path / "gs.zip", {"on/a.png": PNG}), tmp_path / "x")
    assert root.name == "gs-2" and (tmp_path / "x" / "gs" / "keep.txt").read_text() == "mine"
    with pytest.raises(ImageSetError):
        safe_extract(make_zip(tmp_path / "gs.zip", {"../a.png": PNG}), tmp_path / "x")
    assert listing(tmp_path / "x") == ["gs", "gs-2", "gs-2/on", "gs-2/on/a.png", "gs/keep.txt"]


@pytest.mark.parametrize(
    "name",
    [
        "../evil.png",
        "../../../../tmp/ionsieve-evil.png",
        "/tmp/ionsieve-abs.png",
        "C:/evil.png",
        "C:evil.png",
        "on\\..\\..\\evil.png",
        "..\\evil.png",
        "on/../../evil.png",
        "\\\\server\\share\\evil.png",
    ],
)
def test_it_refuses_entries_escaping_the_target(tmp_path, name):
    z = make_zip(tmp_path / "slip.zip", {"on/a.png": PNG, name: PNG})
    err = refused(tmp_path, z)
    assert "outside the archive's folder" in str(err)
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/ionsieve-evil.png").exists()
    assert not Path("/tmp/ionsieve-abs.png").exists() and not Path("/evil.png").exists()


def test_it_refuses_control_characters_in_names(tmp_path):
    z = make_zip(tmp_path / "ctl.zip", {"on/a.png": PNG, "on/b\x1b[31m.png": PNG})
    assert "control characters" in str(refused(tmp_path, z))


def test_it_reads_windows_backslash_folders_as_folders(tmp_path):
    assert entry_parts("on\\a.png") == ("on", "a.png")
    root = safe_extract(make_zip(tmp_path / "w.zip", {"on\\a.png": PNG, "off\\b.png": PNG}), tmp_path / "x")
    assert listing(root) == ["off", "off/b.png", "on", "on/a.png"]


def test_it_refuses_symlink_entries(tmp_path):
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("on/a.png", PNG)
        info = zipfile.ZipInfo("on/passwd.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    err = refused(tmp_path, z)
    assert "on/passwd.png" in str(err) and "symbolic link" in str(err)


def test_it_refuses_a_zip_bomb_by_size_and_by_ratio(tmp_path):
    z = make_zip(tmp_path / "bomb.zip", {"on/bomb.png": b"\x00" * (50 << 20)})
    err = refused(tmp_path, z, max_total_bytes=10_000_000)
    assert "more than the 0.01 GB allowed" in str(err) and "zip bomb" in str(err)
    assert "zip bomb" in str(refused(tmp_path, z))  # default size limit: the ratio alone refuses it


def test_it_counts_real_bytes_when_the_header_lies(tmp_path):
    z = make_zip(tmp_path / "liar.zip", {"on/a.png": PNG, "on/big.png": b"\x00" * (5 << 20)})
    data = bytearray(z.read_bytes())
    # Declare big.png as 1,000 bytes uncompressed, in the local and the central headers.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (i := data.find(sig, start)) >= 0:
            name_at = i + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at : name_at + 10] == b"on/big.png":
                struct.pack_into("<I", data, i + offset, 1000)
            start = i + 4
    z.write_bytes(bytes(data))
    with zipfile.ZipFile(z) as zf:
        assert zf.getinfo("on/big.png").file_size == 1000
    err = refused(tmp_path, z)
    assert "big.png" in str(err) or "damaged" in str(err)


def test_it_refuses_too_many_entries(tmp_path):
    z = make_zip(tmp_path / "many.zip", {f"on/{i}.png": PNG for i in range(6)})
    assert "6 entries, more than the 5 allowed" in str(refused(tmp_path, z, max_entries=5))


def test_it_refuses_an_empty_archive(tmp_path):
    assert "empty" in str(refused(tmp_path, make_zip(tmp_path / "empty.zip", {})))
    only_litter = make_zip(tmp_path / "litter.zip", {"__MACOSX/._a.png": b"x", ".DS_Store": b"x", "on/": b""})
    assert "empty" in str(refused(tmp_path, only_litter))


def test_it_refuses_encrypted_entries(tmp_path):
    z = make_zip(tmp_path / "secret.zip", {"on/a.png": PNG})
    data = bytearray(z.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.find(sig)
        struct.pack_into("<H", data, i + offset, struct.unpack_from("<H", data, i + offset)[0] | 1)
    z.write_bytes(bytes(data))
    assert "password-protected" in str(refused(tmp_path, z))


def test_it_refuses_files_that_are_not_zips(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    assert "fake.zip is not a zip archive" in str(refused(tmp_path, tmp_path / "fake.zip"))
    (tmp_path / "pic.zip").write_bytes(PNG)
    assert "not a zip archive" in str(refused(tmp_path, tmp_path / "pic.zip"))


def test_it_lists_every_problem_at_once(tmp_path):
    z = tmp_path / "bad.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../a.png", PNG)
        zf.writestr("/b.png", PNG)
        info = zipfile.ZipInfo("c.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "x")
    err = refused(tmp_path, z)
    assert len(err.problems) == 3 and str(err).startswith("3 problems, nothing imported: ")


def test_it_streams_a_large_entry_in_chunks(tmp_path):
    rng = np.random.default_rng(0)
    blob = rng.integers(0, 255, 3 << 20, dtype=np.uint8).tobytes()  # incompressible, 3 MB
    root = safe_extract(make_zip(tmp_path / "big.zip", {"on/a.tif": blob}), tmp_path / "x")
    assert (root / "on" / "a.tif").read_bytes() == blob
