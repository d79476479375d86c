"""gunicorn settings for IonSieve (gunicorn -c deploy/gunicorn.conf.py webapp.wsgi:application).

Sized for a small shared server; raise `workers` with the cores. Put nginx (or another TLS
proxy) in front: it terminates HTTPS, sets X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER) and
buffers slow uploads so a gunicorn thread is not held by a slow client.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
# Threads let a worker answer page and API reads while another thread streams a thumbnail.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
# Import Django (numpy, DRF, ...) once in the master: forks start warm, first requests are fast.
preload_app = True
# Uploads of multi-GB imzML/ibd pairs stream to FILE_UPLOAD_TEMP_DIR; allow them time.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 600))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (bounded memory growth from long-lived numpy buffers).
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
loglevel = "info"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
