"""SQL, one module per subject; every statement the service runs on its tables is here
(the lifecycle jobs' and the stacks' flush excepted: lifecycle/, stacks/ledger.py).

writers.py (who may write), events.py, sessions.py, screenshots.py, recordings.py (the
writes and the API's reads), traffic.py (the roll-ups' numbers), replay.py and
heatmap_sources.py (the dashboard's replay and heatmaps), tenancy.py, tokens.py, usage.py,
journeys.py (accounts, statistics tokens, usage, journeys).
"""
