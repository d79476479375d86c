"""Ingestion: everything that brings data in, whichever the route (page, REST API, resumable
upload, command line).

- `services`: the upload checks (names, sizes, .zip archives), written once; a dataset from
  an upload; starting and running its processing.
- `imzml`: an imzML/ibd pair -> ion images, in stages; `rows`: the image rows.
- `pictures`: PNG/TIFF collections (folders or .zip) -> datasets, with their labels.
- `resumable` + `api/uploads`: tus 1.0 resumable uploads.
- `pipeline`: the step after a successful ingestion (the first scoring).
- `forms`, `api/`, `tasks`, `management/commands/`: the routes in.

No models: the Dataset, IonImage and Upload tables stay in `webapp.datasets`, because moving a
table between apps needs migrations. `ingestion` may import `datasets` and `classifier`;
neither imports `ingestion`.
"""
