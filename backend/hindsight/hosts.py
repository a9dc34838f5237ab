"""Which host a browser request comes from, and whether a registered domain covers it."""

from __future__ import annotations

from urllib.parse import urlsplit

import falcon


def hostname_of(url: str | None) -> str | None:
    """Return the lower-cased host name of a URL (no port), or None."""
    if not url or url == "null":
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".") if host else None


def requesting_host(req: falcon.Request) -> str | None:
    """Return the host of the page that made the request: Origin, else Referer."""
    return hostname_of(req.get_header("Origin")) or hostname_of(req.get_header("Referer"))


def covers(domain: str, host: str) -> bool:
    """A registered domain covers itself and its subdomains."""
    return host == domain or host.endswith("." + domain)


def candidate_domains(host: str) -> list[str]:
    """Return the host and each parent domain: a.b.example.com -> [a.b.example.com, b.example.com, example.com, com]."""
    parts = host.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]


def strip_query(url: str | None) -> str | None:
    """Drop the query string and fragment of a URL."""
    if not url:
        return url
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    return url if cut < 0 else url[:cut]
