"""m/z lists as people upload them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ionsieve_core.msi import MSIError, check_in_range, parse_mz_list
from ionsieve_core.msi.mzlist import Ion


def test_it_reads_a_plain_csv(tmp_path: Path) -> None:
    f = tmp_path / "ions.csv"
    f.write_text("MZ,Name\n760.5851,PC 34:1\n782.5670,\n798.5410,PC 34:1 K\n")
    ions = parse_mz_list(f)
    assert [i.mz for i in ions] == [760.5851, 782.5670, 798.5410]
    assert ions[0].name == "PC 34:1"
    assert ions[1].name == "782.5670"  # default name when none given


def test_it_reads_a_metaspace_export_with_preamble() -> None:
    text = (
        '"Generated at 2/3/2020 4:05:06 PM. For help see https://bit.ly/2HO2uz4"\n'
        '"URL: https://metaspace2020.eu/annotations?db=HMDB-v4"\n'
        "group,datasetName,datasetId,formula,adduct,mz,msm,fdr,rhoSpatial,moleculeNames\n"
        'Lab,Brain,2020-01-01_00h00m,C42H82NO8P,+H,760.585088,0.95,0.05,0.9,"PC(34:1), PE"\n'
        "Lab,Brain,2020-01-01_00h00m,C40H80NO8P,+K,772.525,0.9,0.1,0.8,\n"
    )
    ions = parse_mz_list(text)
    assert len(ions) == 2
    assert ions[0] == Ion(mz=760.585088, name="PC(34:1), PE", formula="C42H82NO8P", adduct="+H")
    assert ions[1].name == "C40H80NO8P+K"  # formula + adduct when no name


def test_it_reads_semicolons_with_decimal_commas() -> None:
    ions = parse_mz_list("name;m/z\nA;760,585\nB;798.541\n")
    assert [(i.name, i.mz) for i in ions] == [("A", 760.585), ("B", 798.541)]


def test_it_reads_tabs_and_latin1_bytes() -> None:
    data = "mz\tname\n500.25\tCéramide\n".encode("latin-1")
    ions = parse_mz_list(data)
    assert ions[0].name == "Céramide" and ions[0].mz == 500.25
    assert parse_mz_list("\ufeffmz\n100.5\n".encode())[0].mz == 100.5  # UTF-8 with BOM


def test_it_skips_and_counts_unusable_rows() -> None:
    ions = parse_mz_list("mz,name\n100.1,a\nabc,b\n-5,c\n,d\n200.2,e\n")
    assert [i.mz for i in ions] == [100.1, 200.2]
    assert ions.skipped == 3


def test_it_refuses_a_list_without_usable_rows() -> None:
    with pytest.raises(MSIError, match="no usable rows: expected a column named mz"):
        parse_mz_list("mass_to_charge_whatever,name\n1,2\n")
    with pytest.raises(MSIError, match="no usable rows"):
        parse_mz_list("mz,name\nx,y\n")


def test_it_checks_the_dataset_range() -> None:
    ions = [Ion(mz=float(m), name=str(m)) for m in range(100, 1300, 100)]
    assert [i.mz for i in check_in_range(ions, 250.0, 650.0)] == [300.0, 400.0, 500.0, 600.0]
    with pytest.raises(MSIError) as exc:
        check_in_range(ions[:12], 1500.0, 1900.0)
    assert str(exc.value) == ("none of the 12 m/z values lies in this dataset's range 1500.0-1900.0")
