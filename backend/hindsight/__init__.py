"""Hindsight: self-hosted session replay and behaviour analytics on TimescaleDB."""

__version__ = "0.1.0"
