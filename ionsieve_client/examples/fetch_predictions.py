"""Write a dataset's predictions to CSV, most likely off-sample first.

python -m ionsieve_client.examples.fetch_predictions URL TOKEN DATASET_ID out.csv
"""

from __future__ import annotations

import argparse
import csv

from ionsieve_client import IonSieve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url"), p.add_argument("token"), p.add_argument("dataset", type=int), p.add_argument("out")
    a = p.parse_args(argv)
    rows = IonSieve(a.url, a.token).predictions(a.dataset)
    with open(a.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "mz", "probability", "predicted", "label", "model_version"])
        for r in rows:
            w.writerow(
                [
                    r["id"],
                    r["name"],
                    r["mz"],
                    r["probability"],
                    r["predicted"],
                    r["label"],
                    r["model_version"],
                ]
            )
    print(f"{len(rows)} rows written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
