"""Lower layers never import upward (issue 10): only the HTTP layer knows Falcon, and
nothing below it imports the resources or the dashboard.

The HTTP layer is resources/, dashboard/, app.py (it adds every route), middleware.py,
errors.py (the one error shape), openapi.py (the description of the HTTP surface) and the
worker/WSGI glue (worker.py, gunicorn_conf.py). Everything else (ingestion, queries,
stacks, lifecycle, logins, seed, ...) is plain Python on the database.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hindsight

PACKAGE = Path(hindsight.__file__).resolve().parent
HTTP_PACKAGES = ("hindsight.resources", "hindsight.dashboard")
HTTP_MODULES = {"hindsight.app", "hindsight.middleware", "hindsight.errors", "hindsight.openapi",
                "hindsight.worker", "hindsight.gunicorn_conf", "hindsight.request_ids"}
UPWARD = ("falcon",) + HTTP_PACKAGES


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_http(module: str) -> bool:
    return module in HTTP_MODULES or any(module == p or module.startswith(p + ".") for p in HTTP_PACKAGES)


def _imports(path: Path, package_dir: Path = PACKAGE) -> list[str]:
    """Every module a file imports, as absolute names (relative imports resolved)."""
    module = _module_name(path, package_dir)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.append(target)
            # `from . import resources` imports a module by its name.
            found.extend(f"{target}.{alias.name}" for alias in node.names)
    return found


def _upward(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in UPWARD)


def test_only_the_http_layer_imports_falcon_resources_or_the_dashboard():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if _is_http(module):
            continue
        bad = sorted({name for name in _imports(path) if _upward(name)})
        if bad:
            offenders[module] = bad
    assert offenders == {}, f"lower layers importing the HTTP layer: {offenders}"


def test_the_rule_sees_relative_and_absolute_imports(tmp_path):
    # The checker itself: each way of writing an upward import is caught.
    fake = tmp_path / "hindsight"
    (fake / "queries").mkdir(parents=True)
    sample = fake / "queries" / "sample.py"
    sample.write_text("import falcon.media\nfrom ..resources import http\nfrom .. import dashboard\n"
                      "from hindsight.resources.track import Track\nfrom ..db import Conn\n")
    upward = sorted({n for n in _imports(sample, fake) if _upward(n)})
    assert upward == ["falcon.media", "hindsight.dashboard", "hindsight.resources",
                      "hindsight.resources.http", "hindsight.resources.track",
                      "hindsight.resources.track.Track"]


def test_routes_are_added_in_app_py_only():
    for path in sorted(PACKAGE.rglob("*.py")):
        if _module_name(path) == "hindsight.app":
            continue
        source = path.read_text()
        for verb in ("add_route(", "add_static_route(", "add_sink("):
            assert verb not in source, f"{path.relative_to(PACKAGE)} adds routes ({verb})"
