"""IonSieve's pure libraries: importable with neither Django nor Celery loaded.

- ``msi``: imzML reading, one-pass ion image extraction, peaks, m/z lists, generated data.
- ``imagesets``: reading and writing labelled image collections (folders, zip) safely.
- ``imaging``: display scaling, colour maps and thumbnails: the one implementation that the
  web pages, the thumbnails on disk and the image page's JavaScript take their values from.
- ``ml``: models, preprocessing, training, grouped cross-validation, the default score, metrics.

The Django apps (``webapp/``, ``classifier/``) call into these; nothing here calls back.
"""
