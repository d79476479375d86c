"""A small Python client for IonSieve's REST API (standard library only: copy this folder
next to a script, or `pip install` the repository, and it runs anywhere Python 3.9+ does).

    from ionsieve_client import IonSieve
    ion = IonSieve("http://127.0.0.1:8000", token="...")      # token: your profile page
    ds = ion.upload_imzml("mouse-brain", "run1.imzML", "run1.ibd")
    ds = ion.wait_for_dataset(ds["id"])                       # processing, then first scoring
    for row in ion.predictions(ds["id"]):                     # most likely off-sample first
        print(row["name"], row["probability"], row["predicted"])
    ion.set_label(row["id"], "on")
    ds = ion.upload_imzml_resumable("mouse-brain", "big.imzML", "big.ibd")  # parts; rerun resumes

Every call maps to one endpoint of the OpenAPI schema at /api/schema/ (the tests check it).
"""

from __future__ import annotations

from ionsieve_client.client import ApiError, IonSieve
from ionsieve_client.resumable import ResumableUpload, UploadFailed

__all__ = ["ApiError", "IonSieve", "ResumableUpload", "UploadFailed"]
