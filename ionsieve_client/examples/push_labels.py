"""Push labels from a CSV (columns: id or name, and label) to a dataset, one bulk call per label.

python -m ionsieve_client.examples.push_labels URL TOKEN PROJECT DATASET_ID labels.csv
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict

from ionsieve_client import IonSieve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url"), p.add_argument("token"), p.add_argument("project")
    p.add_argument("dataset", type=int), p.add_argument("csv")
    a = p.parse_args(argv)
    ion = IonSieve(a.url, a.token)
    by_name = {im["name"]: im["id"] for im in ion.images(a.dataset)}
    groups: dict[str, list[int]] = defaultdict(list)
    unknown = []
    with open(a.csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            image_id = int(row["id"]) if row.get("id") else by_name.get(row.get("name", ""))
            if image_id is None:
                unknown.append(row.get("name"))
            else:
                groups[row["label"]].append(image_id)
    if unknown:
        print(f"not in the dataset, nothing pushed: {', '.join(map(str, unknown[:10]))}")
        return 1
    for label, ids in groups.items():
        ion.label_many(a.project, ids, label)
        print(f"{len(ids)} images labelled {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
