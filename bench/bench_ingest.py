"""Ingestion benchmark: our reader + one-pass extraction against imzy, pyimzml and a plain read.

    python bench/bench_ingest.py [--pixels 100000 --ions 500 --noise 250]

Generates a processed-mode (centroid, 64-bit m/z, 32-bit intensity) synthetic dataset with
`ionsieve_core.msi.synthetic`, picks `--ions` m/z values that exist in the data, then times, each
in a fresh subprocess so that peak memory (RSS high-water mark) is per contestant:

  ours         read_metadata + extract (ion images, TIC, mean spectrum)
  imzy         get_reader + get_ion_images, same ions and ppm (its index cache removed first)
  getionimage  pyimzml's getionimage loop, timed on a sample of ions and extrapolated
  pyimzml      ImzMLParser(...) alone (metadata parse)
  plain read   reading the .imzML and .ibd start to end in 16 MiB blocks (the floor), and
               the .ibd again with one numpy pass over its 32-bit words

All runs read from a warm page cache (the files were just written).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PPM = 3.0


def _peak_rss_mb() -> float:
    """RSS high-water mark of this process (mapped file pages included).

    /proc VmHWM rather than getrusage: ru_maxrss survives exec, so a worker would inherit
    the generator's footprint from the fork.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---- workers (run in subprocesses) -----------------------------------------------------


def work_ours(imzml: str, mzs_path: str) -> dict:
    from ionsieve_core.msi import extract, read_metadata

    mzs = np.load(mzs_path)
    base = _peak_rss_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    meta = read_metadata(imzml)
    t1 = time.perf_counter()
    ex = extract(meta, mzs, ppm=PPM)
    t2 = time.perf_counter()
    cpu = time.process_time() - c0
    np.save(Path(mzs_path).with_name("ours_images.npy"), ex.images)
    return {
        "meta_s": t1 - t0,
        "extract_s": t2 - t1,
        "total_s": t2 - t0,
        "cpu_s": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "baseline_rss_mb": base,
        "output_mb": ex.images.nbytes / 2**20,
    }


def work_imzy(imzml: str, mzs_path: str) -> dict:
    from imzy import get_reader

    mzs = np.load(mzs_path)
    base = _peak_rss_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    reader = get_reader(imzml)
    t1 = time.perf_counter()
    images = reader.get_ion_images(mzs, ppm=PPM, silent=True)
    t2 = time.perf_counter()
    cpu = time.process_time() - c0
    np.save(Path(mzs_path).with_name("imzy_images.npy"), np.asarray(images, np.float32))
    return {
        "open_s": t1 - t0,
        "ions_s": t2 - t1,
        "total_s": t2 - t0,
        "cpu_s": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "baseline_rss_mb": base,
    }


def work_pyimzml(imzml: str, mzs_path: str, sample: int) -> dict:
    from pyimzml.ImzMLParser import ImzMLParser, getionimage

    mzs = np.load(mzs_path)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    parser = ImzMLParser(imzml)
    t1 = time.perf_counter()
    picks = mzs[np.linspace(0, mzs.size - 1, sample).astype(int)]
    for mz in picks:
        getionimage(parser, mz, tol=mz * PPM * 1e-6)
    t2 = time.perf_counter()
    return {
        "parse_s": t1 - t0,
        "per_ion_s": (t2 - t1) / sample,
        "sample": sample,
        "peak_rss_mb": _peak_rss_mb(),
    }


def work_plain(imzml: str, ibd: str) -> dict:
    t0 = time.perf_counter()
    total = 0
    buf = bytearray(16 << 20)
    for path in (imzml, ibd):
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                total += n
    t1 = time.perf_counter()
    # a second floor: the same bytes plus one numpy pass over them (sum as 32-bit words)
    acc = 0.0
    with open(ibd, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            acc += float(np.frombuffer(buf, dtype=np.uint32, count=n // 4).sum())
    t2 = time.perf_counter()
    return {"total_s": t1 - t0, "bytes": total, "ibd_numpy_pass_s": t2 - t1}


def _run_worker(*args: str) -> dict:
    """One contestant in a fresh process; a failed contestant stops the benchmark (exit 1):
    a table with a missing row would read as a figure nobody measured."""
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        sys.exit(
            f"bench_ingest: the {args[0]} worker failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


PEERS = {"imzy": "imzy", "pyimzml": "pyimzml.ImzMLParser"}


def check_peers() -> None:
    """Every comparison peer must be installed (requirements-dev.txt pins them): fail before
    spending minutes on the dataset rather than print a table without the peer's row."""
    import importlib.util

    missing = [
        name for name, module in PEERS.items() if importlib.util.find_spec(module.split(".")[0]) is None
    ]
    if missing:
        sys.exit(
            f"bench_ingest: comparison peer(s) not installed: {', '.join(missing)}. "
            "Install the dev requirements: .venv/bin/pip install -r requirements-dev.txt"
        )


# ---- driver ----------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pixels", type=int, default=100_000)
    ap.add_argument("--ions", type=int, default=500)
    ap.add_argument("--noise", type=int, default=250, help="noise peaks per spectrum")
    ap.add_argument("--sample", type=int, default=5, help="ions timed with getionimage")
    ap.add_argument("--dir", default=None, help="where to write the dataset (default: tmp)")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        kind, *rest = args.worker
        result = {"ours": work_ours, "imzy": work_imzy, "plain": work_plain}.get(kind)
        if kind == "pyimzml":
            out = work_pyimzml(rest[0], rest[1], int(rest[2]))
        else:
            out = result(*rest)
        print(json.dumps(out))
        return

    check_peers()
    from ionsieve_core.msi.synthetic import write_synthetic_imzml

    side = math.ceil(math.sqrt(args.pixels))
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="ionsieve_bench_"))
    tmp.mkdir(parents=True, exist_ok=True)
    print(
        f"generating {side} x {side} = {side * side:,} pixels, processed centroid, "
        f"~{args.noise} noise peaks/spectrum ...",
        flush=True,
    )
    t0 = time.perf_counter()
    truth = write_synthetic_imzml(
        tmp / "bench", side, side, n_on=20, n_off=20, peaks_per_spectrum_noise=args.noise, seed=0
    )
    gen_s = time.perf_counter() - t0
    xml_mb = os.path.getsize(truth.imzml_path) / 2**20
    ibd_mb = os.path.getsize(truth.ibd_path) / 2**20
    print(f"  written in {gen_s:.1f} s: .imzML {xml_mb:.0f} MiB, .ibd {ibd_mb:.0f} MiB")

    # ions that exist: the 40 generated ones plus noise peaks of a few spectra
    from ionsieve_core.msi import read_metadata

    meta = read_metadata(truth.imzml_path)
    rng = np.random.default_rng(0)
    raw = np.memmap(truth.ibd_path, dtype=np.uint8, mode="r")
    pool = []
    for i in rng.choice(meta.n_spectra, 20, replace=False):
        pool.append(
            np.frombuffer(
                raw, dtype=meta.mz_dtype, count=int(meta.mz_lengths[i]), offset=int(meta.mz_offsets[i])
            )
        )
    pool = np.unique(np.concatenate(pool))
    ions = np.array([mz for mz, _ in truth.ions])
    extra = rng.choice(pool, args.ions - ions.size, replace=False)
    mzs = np.concatenate([ions, extra])[: args.ions]
    mzs_path = tmp / "mzs.npy"
    np.save(mzs_path, mzs)
    del raw

    print("plain read ...", flush=True)
    plain = _run_worker("plain", truth.imzml_path, truth.ibd_path)
    print("ours (3 runs, median kept: the machine may be shared) ...", flush=True)
    runs = [_run_worker("ours", truth.imzml_path, str(mzs_path)) for _ in range(3)]
    ours = sorted(runs, key=lambda r: r["total_s"])[len(runs) // 2]
    print("imzy ...", flush=True)
    icache = Path(truth.imzml_path).with_suffix(".icache")
    if icache.exists():
        import shutil

        shutil.rmtree(icache, ignore_errors=True)
    imzy_res = _run_worker("imzy", truth.imzml_path, str(mzs_path))
    print("pyimzml ...", flush=True)
    pyi = _run_worker("pyimzml", truth.imzml_path, str(mzs_path), str(args.sample))

    # ---- report
    out_mb = ours["output_mb"]
    rows = [
        ("ours: read_metadata + extract", ours["total_s"], ours["peak_rss_mb"], ours["cpu_s"]),
        ("  of which read_metadata", ours["meta_s"], None, None),
        ("  of which extract", ours["extract_s"], None, None),
        (
            "imzy: get_reader + get_ion_images",
            imzy_res["total_s"],
            imzy_res["peak_rss_mb"],
            imzy_res["cpu_s"],
        ),
        ("  of which get_reader (index)", imzy_res["open_s"], None, None),
        (
            f"pyimzml getionimage x {args.ions} (extrap. from {pyi['sample']})",
            pyi["parse_s"] + pyi["per_ion_s"] * args.ions,
            None,
            None,
        ),
        ("pyimzml ImzMLParser parse alone", pyi["parse_s"], None, None),
        ("plain sequential read .imzML + .ibd", plain["total_s"], None, None),
        ("  .ibd read + one numpy pass over its words", plain["ibd_numpy_pass_s"], None, None),
    ]
    print()
    print(
        f"dataset: {meta.n_spectra:,} spectra ({side}x{side}), "
        f"{int(meta.mz_lengths.sum()):,} peaks, .imzML {xml_mb:.0f} MiB + .ibd "
        f"{ibd_mb:.0f} MiB; {args.ions} ions at ±{PPM:g} ppm; output {out_mb:.0f} MiB"
    )
    print(f"{'step':<52}{'wall s':>8}{'CPU s':>8}{'peak RSS MiB':>14}")
    for name, sec, rss, cpu in rows:
        cpu_s = f"{cpu:8.2f}" if cpu is not None else f"{'':>8}"
        rss_s = f"{rss:14.0f}" if rss is not None else ""
        print(f"{name:<52}{sec:8.2f}{cpu_s}{rss_s}")
    print(f"(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print()
    print(f"imzy / ours            = {imzy_res['total_s'] / ours['total_s']:.1f}x (target >= 3x)")
    a = np.load(tmp / "ours_images.npy")
    b = np.load(tmp / "imzy_images.npy")
    same = np.mean(
        [
            np.allclose(np.nan_to_num(a[i]), np.nan_to_num(b[i]), rtol=1e-4, atol=1e-3)
            for i in range(a.shape[0])
        ]
    )
    print(f"images equal to imzy's = {same:.1%} of {a.shape[0]} ions")
    print(f"ours / plain read      = {ours['total_s'] / plain['total_s']:.1f}x (target <= 3x)")
    t_gi = pyi["parse_s"] + pyi["per_ion_s"] * args.ions
    print(f"getionimage / ours     = {t_gi / ours['total_s']:.0f}x")
    over = ours["peak_rss_mb"] - out_mb
    print(
        f"peak RSS = output {out_mb:.0f} MiB + {over:.0f} MiB "
        f"(interpreter + numpy baseline {ours['baseline_rss_mb']:.0f} MiB; "
        "target: output + 300 MiB)"
    )
    print(f"\nfiles kept in {tmp}")


if __name__ == "__main__":
    main()
