"""Upload an imzML + ibd pair and wait until its images are sorted.

python -m ionsieve_client.examples.upload_and_wait URL TOKEN PROJECT run1.imzML run1.ibd
"""

from __future__ import annotations

import argparse

from ionsieve_client import IonSieve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url"), p.add_argument("token"), p.add_argument("project")
    p.add_argument("imzml"), p.add_argument("ibd")
    p.add_argument("--top", type=int, default=None, help="how many ion images (default: the server's)")
    a = p.parse_args(argv)
    ion = IonSieve(a.url, a.token)
    ds = ion.upload_imzml(a.project, a.imzml, a.ibd, top=a.top)
    print(f"uploaded as dataset {ds['id']}; processing...")
    ds = ion.wait_for_dataset(ds["id"])
    print(f"{ds['name']}: {ds['image_count']} ion images, sorted by P(off-sample)")
    print(ds["id"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
