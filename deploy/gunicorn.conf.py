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
# No keep-alive: each request comes on its own connection and is accepted by a worker that is
# free. A kept-alive connection stays with the worker that accepted it, and a worker runs Python
# on one core at a time: at 150 requests/s from 50 users on 2 cores the busiest workers queued
# requests for 0.3-0.6 s while the cores were 74% busy; with a connection per request the same
# load had p95 < 125 ms (bench/README.md, "Connections, warm workers and a paced run"). nginx
# keeps the browsers' connections alive; its connections to gunicorn are on loopback.
keepalive = 0
# Recycle workers now and then (bounded memory growth from long-lived numpy buffers).
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
loglevel = "info"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
