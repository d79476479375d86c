"""IonSieve's REST API over urllib: token auth, JSON in and out, streamed multipart uploads."""

from __future__ import annotations

import json
import mimetypes
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ionsieve_client.resumable import DEFAULT_PART, ResumableUpload

CHUNK = 1 << 20  # upload files in 1 MiB reads: memory stays flat for 50 GB .ibd files


class ApiError(RuntimeError):
    """The server refused a request; `status` is the HTTP status, `body` its parsed answer."""

    def __init__(self, status: int, body: Any, url: str):
        self.status, self.body, self.url = status, body, url
        detail = body.get("detail") if isinstance(body, dict) else None
        super().__init__(f"{status} from {url}: {detail or body}")


class IonSieve:
    def __init__(self, base_url: str, token: str, timeout: float = 60.0):
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # ------------------------------------------------------------------ plumbing
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict | None = None,
        data: Any = None,
        headers: dict | None = None,
    ) -> Any:
        """One API call; `path` starts with /api/. Returns the parsed JSON (None when empty)."""
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(
                {k: v for k, v in params.items() if v is not None}, doseq=True
            )
        h = {"Authorization": f"Token {self.token}", "Accept": "application/json", **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")[:500]
            raise ApiError(exc.code, parsed, url) from None
        return json.loads(raw) if raw else None

    def _multipart(self, path: str, files: dict[str, Path], fields: dict[str, Any]) -> Any:
        """POST multipart/form-data, streaming each file from disk."""
        boundary = uuid.uuid4().hex
        parts: list[bytes | Path] = []
        for name, value in fields.items():
            if value is None:
                continue
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
        for name, path_ in files.items():
            ctype = mimetypes.guess_type(path_.name)[0] or "application/octet-stream"
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{path_.name}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n".encode()
            )
            parts.append(path_)
            parts.append(b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        length = sum(os.path.getsize(p) if isinstance(p, Path) else len(p) for p in parts)

        def stream() -> Iterator[bytes]:
            for p in parts:
                if isinstance(p, Path):
                    with open(p, "rb") as f:
                        while block := f.read(CHUNK):
                            yield block
                else:
                    yield p

        return self.request(
            "POST",
            path,
            data=stream(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length),
            },
        )

    def _pages(self, path: str, params: dict | None = None) -> Iterator[dict]:
        page = self.request("GET", path, params=params)
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            nxt = urllib.parse.urlsplit(page["next"])
            page = self.request("GET", nxt.path + ("?" + nxt.query if nxt.query else ""))

    # ------------------------------------------------------------------ projects and datasets
    def projects(self) -> list[dict]:
        result = self.request("GET", "/api/projects/")
        return result["results"] if isinstance(result, dict) and "results" in result else result

    def datasets(self, slug: str) -> list[dict]:
        return self.request("GET", f"/api/projects/{slug}/datasets/")

    def dataset(self, dataset_id: int) -> dict:
        return self.request("GET", f"/api/datasets/{dataset_id}/")

    def upload_imzml(
        self,
        slug: str,
        imzml: str | Path,
        ibd: str | Path,
        name: str | None = None,
        mz_list: str | Path | None = None,
        ppm: float | None = None,
        top: int | None = None,
        tic: bool | None = None,
    ) -> dict:
        """Upload an imzML + ibd pair; processing starts at once (see wait_for_dataset)."""
        files = {"imzml": Path(imzml), "ibd": Path(ibd)}
        if mz_list:
            files["mz_list"] = Path(mz_list)
        fields = {"name": name, "ppm": ppm, "top": top, "tic": None if tic is None else str(tic).lower()}
        return self._multipart(f"/api/projects/{slug}/datasets/", files, fields)

    def upload_file(
        self,
        slug: str,
        path: str | Path,
        progress=None,
        part_size: int | None = None,
        state: str | Path | None = None,
    ) -> dict:
        """Send one file resumably (tus 1.0, a SHA-1 per part); run again after a failure to resume.
        Returns {'id': upload id, 'crc32': whole-file CRC-32, 'bytes_sent'}."""
        up = ResumableUpload(
            self.base,
            self.token,
            slug,
            Path(path),
            progress=progress,
            state=state,
            part_size=part_size or DEFAULT_PART,
            timeout=max(self.timeout, 120.0),
        )
        return up.run()

    def upload_imzml_resumable(
        self,
        slug: str,
        imzml: str | Path,
        ibd: str | Path,
        name: str | None = None,
        mz_list: str | Path | None = None,
        ppm: float | None = None,
        top: int | None = None,
        tic: bool | None = None,
        progress=None,
        state: str | Path | None = None,
    ) -> dict:
        """As upload_imzml, but each file goes in checked parts that survive a cut connection;
        the server verifies each assembled file's CRC-32 before processing starts."""
        sent = {
            "imzml": self.upload_file(slug, imzml, progress, state=state),
            "ibd": self.upload_file(slug, ibd, progress, state=state),
        }
        if mz_list:
            sent["mz_list"] = self.upload_file(slug, mz_list, progress, state=state)
        body: dict[str, Any] = {k: v["id"] for k, v in sent.items()}
        body.update({f"{k}_crc32": v["crc32"] for k, v in sent.items()})
        body.update(
            {k: v for k, v in {"name": name, "ppm": ppm, "top": top, "tic": tic}.items() if v is not None}
        )
        return self.request("POST", f"/api/projects/{slug}/datasets/from-uploads/", body=body)

    def import_images_resumable(
        self,
        slug: str,
        archive: str | Path,
        labels: str | Path | None = None,
        layout: str | None = None,
        channels: str | None = None,
        progress=None,
        state: str | Path | None = None,
    ) -> dict:
        """Upload a .zip of images resumably and start its import; returns {'job': id}."""
        sent = self.upload_file(slug, archive, progress, state=state)
        body: dict[str, Any] = {"archive": sent["id"], "archive_crc32": sent["crc32"]}
        if labels:
            lab = self.upload_file(slug, labels, progress, state=state)
            body.update(labels=lab["id"], labels_crc32=lab["crc32"])
        body.update({k: v for k, v in {"layout": layout, "channels": channels}.items() if v})
        return self.request("POST", f"/api/projects/{slug}/imports/from-upload/", body=body)

    def job(self, job_id: int) -> dict:
        return self.request("GET", f"/api/jobs/{job_id}/")

    def wait_for_job(self, job_id: int, timeout: float = 3600, poll: float = 1.0) -> dict:
        """Poll until the job is done, failed or cancelled; raises TimeoutError after `timeout` s."""
        end = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in ("done", "failed", "cancelled"):
                return job
            if time.monotonic() > end:
                raise TimeoutError(f"job {job_id} is still {job['status']} ({job.get('percent')}%)")
            time.sleep(poll)

    def wait_for_dataset(
        self, dataset_id: int, timeout: float = 3600, poll: float = 1.0, scored: bool = True
    ) -> dict:
        """Poll until the dataset is ready (and, with `scored`, every image has a score) or failed."""
        end = time.monotonic() + timeout
        while True:
            ds = self.dataset(dataset_id)
            if ds["status"] == "failed":
                raise ApiError(422, {"detail": ds["error"]}, f"/api/datasets/{dataset_id}/")
            if ds["status"] == "ready" and (
                not scored or self.counts(dataset_id)["scored"] == ds["image_count"]
            ):
                return ds
            if time.monotonic() > end:
                raise TimeoutError(f"dataset {dataset_id} is still {ds['status']} ({ds['progress']:.0%})")
            time.sleep(poll)

    # ------------------------------------------------------------------ images, predictions, labels
    def images(self, dataset_id: int, **filters: Any) -> Iterator[dict]:
        """Every image, page by page; filters as in the gallery (ordering, predicted, labelled...)."""
        yield from self._pages(f"/api/datasets/{dataset_id}/images/", filters)

    def counts(self, dataset_id: int, **filters: Any) -> dict:
        return self.request("GET", f"/api/datasets/{dataset_id}/images/counts/", params=filters)

    def predictions(self, dataset_id: int) -> list[dict]:
        """id, name, m/z, P(first class), predicted class and consensus label of every image,
        most likely off-sample (first class) first."""
        keys = ("id", "name", "mz", "probability", "probabilities", "predicted", "label", "model_version")
        return [{k: im.get(k) for k in keys} for im in self.images(dataset_id, ordering="-probability")]

    def set_label(self, image_id: int, label: str | list[str] | None = None, unsure: bool = False) -> dict:
        return self.request("PUT", f"/api/images/{image_id}/label/", body={"label": label, "unsure": unsure})

    def remove_label(self, image_id: int) -> dict:
        return self.request("DELETE", f"/api/images/{image_id}/label/")

    def label_many(self, slug: str, image_ids: list[int], label: str | list[str], mode: str = "set") -> dict:
        """One label on many images (one undo step); mode 'add'/'remove' for one class in multi-label."""
        return self.request(
            "POST",
            f"/api/projects/{slug}/labels/",
            body={"images": list(image_ids), "label": label, "mode": mode},
        )

    def label_history(self, image_id: int) -> list[dict]:
        return self.request("GET", f"/api/images/{image_id}/labels/history/")

    def restore_labels(self, slug: str, at: str, user: str | None = None) -> int:
        """Owners: labels back as they were at `at` (ISO time); returns how many changed."""
        return self.request("POST", f"/api/projects/{slug}/labels/restore/", body={"at": at, "user": user})[
            "changed"
        ]

    # ------------------------------------------------------------------ models and accuracy
    def train(self, slug: str, **options: Any) -> dict:
        return self.request("POST", f"/api/projects/{slug}/train/", body=options)

    def review(self, slug: str, version: str | int | None = None) -> dict:
        """Held-out, since-training and training-fit accuracy per dataset (see the review page)."""
        return self.request("GET", f"/api/projects/{slug}/review/", params={"version": version})
