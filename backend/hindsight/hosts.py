"""Host names: the host of a URL, and the registered domains that may cover a host.

Whether a registered domain covers the page that sent a write is decided in SQL, with the
rest of the write's checks (hindsight.queries.writers); `covers` is the same rule for the
site flow, where the domain comes from a widget JWT rather than from a token's row.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def hostname_of(url: str | None) -> str | None:
    """Return the lower-cased host name of a URL (no port), or None."""
    if not url or url == "null":
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".") if host else None


def covers(domain: str, host: str) -> bool:
    """A registered domain covers itself and its subdomains."""
    return host == domain or host.endswith("." + domain)


def candidate_domains(host: str) -> list[str]:
    """Return the host and each parent domain: a.b.example.com -> [a.b.example.com, b.example.com, example.com, com]."""
    parts = host.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]

