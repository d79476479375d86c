"""Upload to sorted gallery: ingestion + first scoring as one measured path.

    python bench/bench_ingest_score.py [--height 120 --width 150 --ions 400 --runs 3]

Generates a processed-mode (centroid) synthetic dataset of 120 x 150 = 18,000 pixels and
picks 400 m/z values that exist in it, then times, each in a fresh process on a fresh SQLite
database (what `make run` and `import_imzml` use):

  import_imzml            `manage.py import_imzml --mz-list` start to end: Django start, reading,
                          extraction, thumbnails, image rows, default scoring (numpy plan of
                          the shipped model, ionsieve_core/ml/fastpredict.py), sorted rows stored
  stages                  the same path inside one process, timed per stage
  TensorFlow, cold        the same path scored by the Keras model in a fresh process (what
                          every import paid before: TensorFlow start-up + model load)
  TensorFlow, warm        scoring only, in a process that has TensorFlow and the model loaded
                          already (a long-lived worker after its first dataset)
  getionimage loop        pyimzml's ImzMLParser + getionimage for the same ions and ppm, timed
                          on a sample of ions and extrapolated (the comparison the issue asks),
                          run right after each import_imzml run, so each pair shares the load

Prints the figures and the ratios getionimage / import_imzml (target >= 12x) measured in this
run. Exits 1 when pyimzml is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
SLUG = "bench"


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _env(db: Path, media: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        DATABASE_URL=f"sqlite:///{db}",
        MEDIA_ROOT=str(media),
        DJANGO_SETTINGS_MODULE="webapp.settings",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=str(ROOT),
    )
    return env


def _fresh_site(tmp: Path, name: str) -> dict:
    """A migrated SQLite database with one project, in its own folder."""
    site = tmp / name
    site.mkdir(parents=True, exist_ok=True)
    env = _env(site / "db.sqlite3", site / "media")
    py = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*py, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=ROOT)
    subprocess.run(
        [
            *py,
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model as g;"
            "u = g().objects.create_user('bench', password='x');"
            "from webapp.projects.services import create_project as c;"
            f"c(u, 'bench', slug='{SLUG}')",
        ],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    return env


# ---- workers (fresh processes) ---------------------------------------------------------------
def work_stages(imzml: str, mz_list: str, scorer: str) -> dict:
    """The import path in this process, per stage; scorer 'plan' (default) or 'keras'."""
    t0 = time.perf_counter()
    import django

    django.setup()
    from classifier import scoring as cls_scoring
    from ionsieve_core.ml import bundle as ml_bundle
    from webapp.datasets.models import Dataset
    from webapp.ingestion import services
    from webapp.ingestion.imzml import ingest
    from webapp.projects.models import Project

    if scorer == "keras":  # how scoring ran before the plan: the Keras bundle, loaded here
        ml_bundle.load_plan = lambda *a, **k: None
    t1 = time.perf_counter()
    project = Project.objects.get(slug=SLUG)
    ds = services.create_imzml_dataset(
        project,
        None,
        name="bench",
        imzml=Path(imzml),
        ibd=Path(imzml).with_suffix(".ibd"),
        mz_list=Path(mz_list),
        ppm=PPM,
    )
    ingest(ds, lambda f, m: None)
    ds.refresh_from_db()
    Dataset.objects.filter(pk=ds.pk).update(status=Dataset.Status.READY)
    t2 = time.perf_counter()
    n = cls_scoring.score_dataset(ds)
    t3 = time.perf_counter()
    out = {
        "setup_s": t1 - t0,
        "ingest_s": t2 - t1,
        "score_s": t3 - t2,
        "images": n,
        "tensorflow_imported": "tensorflow" in sys.modules,
    }
    if scorer == "keras":  # the same again, warm: TensorFlow and the model already loaded
        t4 = time.perf_counter()
        cls_scoring.score_dataset(ds)
        out["score_warm_s"] = time.perf_counter() - t4
    first = ds.images.order_by("-probability").first()
    out["sorted"] = first is not None and first.probability is not None
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def work_getionimage(imzml: str, mzs_path: str, sample: int) -> dict:
    from pyimzml.ImzMLParser import ImzMLParser, getionimage

    mzs = np.load(mzs_path)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    parser = ImzMLParser(imzml)
    t1 = time.perf_counter()
    for mz in mzs[np.linspace(0, mzs.size - 1, sample).astype(int)]:
        getionimage(parser, mz, tol=mz * PPM * 1e-6)
    t2 = time.perf_counter()
    return {"parse_s": t1 - t0, "per_ion_s": (t2 - t1) / sample}


def _worker(env: dict, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )
    if proc.returncode != 0:
        sys.exit(
            f"bench_ingest_score: the {args[0]} worker failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _import_imzml(env: dict, imzml: str, mz_list: str) -> dict:
    """`manage.py import_imzml` as a user runs it: wall time from start to exit."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "import_imzml",
            imzml,
            "--project",
            SLUG,
            "--mz-list",
            mz_list,
            "--ppm",
            str(PPM),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bench_ingest_score: import_imzml failed:\n{proc.stderr[-2000:]}")
    return {"total_s": wall, "dataset": int(proc.stdout.split()[-1])}


# ---- driver ----------------------------------------------------------------------------------
def mz_list_from_data(
    truth, meta, n_ions: int, *, sampled: int, rng, outside_ions: bool = False
) -> np.ndarray:
    """An m/z list as a user would bring: the generated ions, then m/z values picked at random
    among the peaks of `sampled` random spectra (other than the ions' own with `outside_ions`)."""
    raw = np.memmap(truth.ibd_path, dtype=np.uint8, mode="r")
    pool = np.unique(
        np.concatenate(
            [
                np.frombuffer(
                    raw, dtype=meta.mz_dtype, count=int(meta.mz_lengths[i]), offset=int(meta.mz_offsets[i])
                )
                for i in rng.choice(meta.n_spectra, sampled, replace=False)
            ]
        )
    )
    del raw
    ions = np.array([mz for mz, _ in truth.ions])
    if outside_ions:
        pool = np.setdiff1d(pool, ions)
    return np.concatenate([ions, rng.choice(pool, n_ions - ions.size, replace=False)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--width", type=int, default=150)
    ap.add_argument("--ions", type=int, default=400)
    ap.add_argument("--noise", type=int, default=250, help="noise peaks per spectrum")
    ap.add_argument("--runs", type=int, default=3, help="import_imzml runs (median kept)")
    ap.add_argument("--sample", type=int, default=10, help="ions timed with getionimage")
    ap.add_argument("--worker", nargs="+")
    args = ap.parse_args()
    if args.worker:
        kind, *rest = args.worker
        fn = {"stages": work_stages, "getionimage": work_getionimage}[kind]
        if kind == "getionimage":
            rest[-1] = int(rest[-1])
        print(json.dumps(fn(*rest)))
        return
    import importlib.util

    if importlib.util.find_spec("pyimzml") is None:
        sys.exit("bench_ingest_score: pyimzml (the comparison peer) is not installed")

    from ionsieve_core.msi import read_metadata
    from ionsieve_core.msi.synthetic import write_synthetic_imzml

    tmp = Path(tempfile.mkdtemp(prefix="ionsieve_bench_score_"))
    n_px = args.height * args.width
    print(
        f"generating {args.height} x {args.width} = {n_px:,} pixels, processed centroid, "
        f"~{args.noise} noise peaks/spectrum; {args.ions} ions ...",
        flush=True,
    )
    truth = write_synthetic_imzml(
        tmp / "data", args.height, args.width, n_on=20, n_off=20, peaks_per_spectrum_noise=args.noise, seed=0
    )
    meta = read_metadata(truth.imzml_path)
    mzs = mz_list_from_data(truth, meta, args.ions, sampled=40, rng=np.random.default_rng(0))[: args.ions]
    np.save(tmp / "mzs.npy", mzs)
    mz_csv = tmp / "mzs.csv"
    mz_csv.write_text("mz\n" + "\n".join(repr(float(m)) for m in mzs) + "\n")
    size_mb = (os.path.getsize(truth.imzml_path) + os.path.getsize(truth.ibd_path)) / 1e6
    print(f"  .imzML + .ibd: {size_mb:.0f} MB", flush=True)

    print(
        f"import_imzml and the getionimage loop, alternating ({args.runs} runs each, import_imzml on a "
        "fresh database each time; medians kept) ...",
        flush=True,
    )
    # Alternating: a busy moment of a shared machine hits both alike, so each pair's ratio is fair.
    runs, gis = [], []
    for i in range(args.runs):
        runs.append(_import_imzml(_fresh_site(tmp, f"cli{i}"), truth.imzml_path, str(mz_csv)))
        gi = _worker(
            dict(os.environ), "getionimage", truth.imzml_path, str(tmp / "mzs.npy"), str(args.sample)
        )
        gis.append(gi["parse_s"] + gi["per_ion_s"] * args.ions)
    pair_ratios = [g / r["total_s"] for g, r in zip(gis, runs, strict=True)]
    cli = sorted(runs, key=lambda r: r["total_s"])[len(runs) // 2]
    gi_total = sorted(gis)[len(gis) // 2]
    print("stages, numpy plan ...", flush=True)
    plan = _worker(_fresh_site(tmp, "plan"), "stages", truth.imzml_path, str(mz_csv), "plan")
    print("stages, TensorFlow (cold, then warm) ...", flush=True)
    keras = _worker(_fresh_site(tmp, "keras"), "stages", truth.imzml_path, str(mz_csv), "keras")

    plan_total = plan["setup_s"] + plan["ingest_s"] + plan["score_s"]
    keras_total = keras["setup_s"] + keras["ingest_s"] + keras["score_s"]
    print()
    print(f"{n_px:,} px x {args.ions} ions, processed, {size_mb:.0f} MB; 2026 dev VM, {os.cpu_count()} cores")
    rows = [
        ("import_imzml, start to exit (median)", cli["total_s"]),
        ("  in one process: Django + imports", plan["setup_s"]),
        ("  ingest (read, extract, thumbnails, rows)", plan["ingest_s"]),
        (
            f"  first scoring, numpy plan (TensorFlow imported: {plan['tensorflow_imported']})",
            plan["score_s"],
        ),
        ("  = upload to sorted gallery, numpy plan", plan_total),
        ("same path, TensorFlow cold (before this change)", keras_total),
        ("  of which first scoring, TensorFlow cold", keras["score_s"]),
        ("  scoring again, TensorFlow warm (long-lived worker)", keras["score_warm_s"]),
        (f"pyimzml getionimage x {args.ions} (extrap. from {args.sample}; median)", gi_total),
    ]
    for label, s in rows:
        print(f"  {label:<66} {s:7.2f} s")
    print(f"  peak memory of the import process: {plan['peak_rss_mb']:.0f} MB")
    print()
    print(
        f"getionimage / import_imzml (whole command)        = {gi_total / cli['total_s']:.1f}x   (target >= 12x; "
        f"medians)"
    )
    imports = ", ".join(f"{r['total_s']:.2f}" for r in runs)
    loops = ", ".join(f"{g:.1f}" for g in gis)
    print(
        "  the same, run by run (each import_imzml with the getionimage loop timed right after it): "
        + ", ".join(f"{r:.1f}x" for r in pair_ratios)
        + f"  (import_imzml {imports} s; getionimage {loops} s; load average {os.getloadavg()[0]:.1f} at the end)"
    )
    print(f"getionimage / upload-to-sorted-gallery (plan)     = {gi_total / plan_total:.1f}x")
    print(f"getionimage / same path with TensorFlow cold      = {gi_total / keras_total:.1f}x")
    print(f"first scoring: TensorFlow cold / numpy plan       = {keras['score_s'] / plan['score_s']:.1f}x")
    print(
        f"first scoring: numpy plan / TensorFlow warm       = {plan['score_s'] / keras['score_warm_s']:.1f}x"
    )
    ok = plan["sorted"] and keras["sorted"]
    shutil.rmtree(tmp, ignore_errors=True)  # ~250 MB of generated files and databases per run
    if not ok:
        sys.exit("bench_ingest_score: the gallery was not sorted by a score")


if __name__ == "__main__":
    main()
