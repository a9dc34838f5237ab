"""Observing the pipeline, in plain Python: log lines (logs.py), per-account ingestion
warnings (warnings.py) and per-batch pipeline traces (traces.py). The request metrics are
hindsight.metrics; the middleware that sees each request is hindsight.request_ids."""
