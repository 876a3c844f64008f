"""Plugins: the modules named in ``ROADMAP_PLUGINS`` are imported before a command runs.

A plugin is any importable module whose import registers something: a search method
(``search.register_search``), a learner (``learning.register_learner``), a task
(``roadmap.core.tasks.register_task``). ``roadmap`` imports them before it builds its parser, so
their names are valid ``--method``/``--methods`` choices and recipe values; the learn subprocess
(``roadmap.app.learn_launch``) and each Ray actor (``roadmap.app.actors.ModelSpec.load``) import them
too. ``docs/extending.md`` walks through it.
"""

from __future__ import annotations

import importlib
import os

from roadmap.core.errors import ConfigError

__all__ = ["PLUGINS_ENV", "load_plugins", "plugin_names"]

#: the environment variable: comma-separated module names, e.g. ``ROADMAP_PLUGINS=mypkg.methods,mypkg.tasks``
PLUGINS_ENV = "ROADMAP_PLUGINS"


def plugin_names(value: str | None = None) -> list[str]:
    """The module names of ``value`` (default: the ``ROADMAP_PLUGINS`` environment variable)."""
    raw = os.environ.get(PLUGINS_ENV, "") if value is None else value
    return [name.strip() for name in raw.split(",") if name.strip()]


def load_plugins(value: str | None = None) -> list[str]:
    """Import every plugin module of ``value`` (default: ``ROADMAP_PLUGINS``); the names imported.

    A module that cannot be found raises ``ConfigError`` naming it; an error inside a plugin propagates
    with its traceback (a bug in the plugin)."""
    names = plugin_names(value)
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not (name == err.name or name.startswith(f"{err.name}.")):
                raise  # a module the plugin itself imports is missing: the plugin's own error
            raise ConfigError(f"{PLUGINS_ENV}={os.environ.get(PLUGINS_ENV, value)!r}: module {name!r} cannot be "
                              "imported; put its folder on PYTHONPATH or install its package, or drop it") from err
    return names
