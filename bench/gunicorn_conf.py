"""Gunicorn settings for the benchmark: the project's gunicorn.conf.py with the benchmark's overrides.

The runner sets BENCH_GUNICORN_BIND, BENCH_GUNICORN_WORKERS and BENCH_GUNICORN_MAX_REQUESTS.
"""

import os
import runpy
from pathlib import Path

_PROJECT_CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
if _PROJECT_CONF.is_file():
    globals().update({k: v for k, v in runpy.run_path(str(_PROJECT_CONF)).items() if not k.startswith("__")})

bind = os.environ["BENCH_GUNICORN_BIND"]
workers = int(os.environ["BENCH_GUNICORN_WORKERS"])
worker_class = "sync"
accesslog = None
errorlog = "-"
# Recycling a worker in the middle of a ten-second scenario measures Django's start-up, not requests.
max_requests = int(os.environ.get("BENCH_GUNICORN_MAX_REQUESTS", "0"))
