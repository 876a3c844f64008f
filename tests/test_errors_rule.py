"""Errors as a rule (issue 31, item 5): every exception class the library defines lives in
``roadmap.core.errors`` and is a ``RoadmapError``, and the CLI prints one line for those only.

The scan reads the packages' source (``ast``), so it needs none of their optional dependencies
and cannot miss a module that fails to import. A class counts as an exception when one of its
bases is a built-in exception, a class of ``roadmap.core.errors``, another exception class found
by the scan, or a dotted name ending in Error/Exception/Warning (a third-party exception).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from roadmap.app import cli
from roadmap.app.cli import main
from roadmap.app.cli_checks import BUG_NOTE
from roadmap.core import errors
from roadmap.core.errors import ConfigError, RoadmapError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("roadmap", "policy_init", "rewards", "search", "learning")
HOME = "roadmap/core/errors.py"

#: exception classes allowed outside errors.py: internal control flow, never seen by a user
ALLOWED = {
    ("roadmap/core/tasks/countdown_traces.py", "_Capped"): "unwinds the trace DFS at max_chars; caught in search_trace",
    ("learning/registry.py", "NothingToLearn"): "a learner's 'nothing to learn'; the loop catches it and keeps the policy",
}

#: the old homes of the moved classes, which still re-export them (nothing that imported them breaks)
OLD_HOMES = {
    "roadmap.app.loop_config": ["RecipeError"], "roadmap.core.tasks._source": ["SourceUnavailableError"],
    "roadmap.core.tasks": ["BadRowError", "SourceUnavailableError"], "roadmap.core.outputs": ["OutputExistsError"],
    "roadmap.core.vllm_policy": ["EngineDeadError"], "roadmap.core.io": ["RunLockedError"],
    "roadmap.core.distributed": ["ShardError"], "roadmap.app.learn_launch": ["LearnLaunchError"],
    "policy_init.gguf_import": ["GGUFError", "GGUFDependencyError"], "rewards.prm": ["PRMLengthError"],
    "rewards.public_prm": ["PRMFormatError"], "learning.rl_async": ["RLActorError"],
}


def _builtin_exceptions() -> set[str]:
    return {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}


def _base_name(node: ast.expr) -> tuple[str, bool]:
    """(the base's last name, whether it was dotted)."""
    if isinstance(node, ast.Attribute):
        return node.attr, True
    if isinstance(node, ast.Name):
        return node.id, False
    return "", False


def exception_classes() -> list[tuple[str, str]]:
    """(file relative to the repo, class name) of every exception class defined in the packages."""
    classes = []  # (file, name, [(base, dotted)])
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    classes.append((path.relative_to(ROOT).as_posix(), node.name, [_base_name(b) for b in node.bases]))
    known = _builtin_exceptions() | set(errors.__all__)
    found: dict[tuple[str, str], None] = {}
    changed = True
    while changed:  # a class whose base is an exception found in the previous pass is one too
        changed = False
        for file, name, bases in classes:
            if (file, name) in found:
                continue
            if any(b in known or (dotted and b.endswith(("Error", "Exception", "Warning"))) for b, dotted in bases):
                found[(file, name)] = None
                known.add(name)
                changed = True
    return list(found)


def test_the_scan_finds_exception_classes_wherever_they_are():
    found = exception_classes()
    # the scan sees errors.py's own classes, subclasses of them, and the allowed internal ones
    assert (HOME, "RoadmapError") in found and (HOME, "GGUFDependencyError") in found
    assert set(ALLOWED) <= set(found)
    assert len([f for f in found if f[0] == HOME]) == len(errors.__all__)


def test_every_exception_class_is_defined_in_errors_py():
    outside = [f"{file}: class {name}" for file, name in exception_classes()
               if file != HOME and (file, name) not in ALLOWED]
    assert not outside, ("define these in roadmap/core/errors.py as RoadmapError subclasses and re-export them "
                         f"from their module, or allow-list them here with the reason: {outside}")


def test_errors_py_holds_roadmap_errors_and_imports_nothing_of_the_library():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, RoadmapError), name
        assert cls.__module__ == "roadmap.core.errors", name
    tree = ast.parse((ROOT / HOME).read_text(encoding="utf-8"))
    imported = [n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in (n.names if isinstance(n, ast.Import) else [n])]
    assert [m for m in imported if m and m.split(".")[0] in PACKAGES] == []


@pytest.mark.parametrize("module", sorted(OLD_HOMES))
def test_moved_classes_are_still_importable_from_their_old_homes(module):
    mod = importlib.import_module(module)
    for name in OLD_HOMES[module]:
        assert getattr(mod, name) is getattr(errors, name)
        assert name in getattr(mod, "__all__", [name]), f"{module}.__all__ lacks {name}"


def test_config_errors_still_catch_as_the_builtins_they_replaced():
    from learning.rl import RLConfig
    from rewards.shaping import get_soft_overlong_reward
    from rewards.verifier import get_verifier_reward
    from roadmap.core.tasks.countdown_traces import search_trace

    with pytest.raises(ConfigError, match="soft_cache_length=0"):
        get_soft_overlong_reward(100, 0)
    with pytest.raises(ConfigError, match="max_chars=3 cannot hold a trace"):
        search_trace([1, 2], 3, max_chars=3)
    with pytest.raises(ConfigError, match="must map shaping reward names") as e:
        RLConfig(shaping=["format"])
    assert isinstance(e.value, ValueError)

    class Task:
        name = "t"

    with pytest.raises(KeyError) as e:  # a missing dataset column: a KeyError as before, and bad input
        get_verifier_reward(Task())(prompts=["q"], completions=["x"], solution=["1"])
    assert isinstance(e.value, RoadmapError) and str(e.value).startswith("the reward needs the reference answers")


def test_a_roadmap_error_in_a_command_is_one_line(tmp_path, capsys, monkeypatch):
    def bad_input(args):
        raise ConfigError("--budget=-1 must be a positive whole number; pass e.g. --budget 16")

    monkeypatch.setitem(cli.COMMANDS, "fit", bad_input)
    assert main(["fit", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "roadmap fit: error: --budget=-1 must be a positive whole number; pass e.g. --budget 16"


def test_any_other_exception_in_a_command_keeps_its_traceback_and_asks_for_a_report(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from roadmap.app import cli

        def bug(args):
            raise RuntimeError("an internal invariant broke")

        cli.COMMANDS["fit"] = bug
        sys.exit(cli.main(["fit", {str(tmp_path)!r}]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "Traceback (most recent call last)" in out.stderr
    assert "RuntimeError: an internal invariant broke" in out.stderr
    assert f"roadmap fit: {BUG_NOTE}" in out.stderr
    assert "roadmap fit: error:" not in out.stderr
