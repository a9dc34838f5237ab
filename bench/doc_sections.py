"""Each benchmark owns one section of docs/BENCHMARKS.md, between its own markers."""

from __future__ import annotations

from pathlib import Path

HEADER = (
    "# Benchmarks\n\n"
    "Each section is written by the benchmark it names; run that command again rather than\n"
    "editing it. Speed is shown as a ratio against a reference measured in the same run on\n"
    "the same machine, never as an absolute promise.\n"
)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}: begin -->", f"<!-- {name}: end -->"


def write_section(doc: Path, name: str, body: str) -> None:
    """Replace the section of benchmark `name` (or append it), leaving the others alone."""
    begin, end = markers(name)
    section = f"{begin}\n{body.strip()}\n{end}\n"
    text = doc.read_text() if doc.exists() else HEADER
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
