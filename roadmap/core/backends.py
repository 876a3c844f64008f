"""Where a policy comes from: one loader for every command, recipe and phase.

``load_policy(path, backend=..., options=...)`` is the only place a sampling policy is built
from a folder (or Hub id). ``ModelOptions`` carries what a GPU user sets for a real model
(``dtype``, ``device_map``, ``attn_implementation``, ``trust_remote_code``); the CLI's
``--backend/--dtype/--device-map/--attn-implementation/--trust-remote-code`` flags and a
recipe's ``backend:``/``model:`` keys fill it. The ``hf`` backend is ``HFPolicy``; ``vllm``
is the vLLM engine (an optional install).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from roadmap.core.errors import ConfigError

__all__ = ["BACKENDS", "DTYPES", "ModelOptions", "load_policy"]

#: sampling backends ``load_policy`` knows
BACKENDS = ("hf", "vllm")
#: accepted ``dtype`` names ("auto": the checkpoint's own dtype)
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class ModelOptions:
    """How a model folder is loaded (the ``from_pretrained`` options a GPU user needs).

    Attributes:
        dtype: "auto" (the dtype the checkpoint was saved in), "float32", "bfloat16" or "float16".
        device: where to run ("cpu", "cuda", "cuda:1"); None: where the model loads.
        device_map: transformers' ``device_map`` ("auto" spreads a large model over GPUs); None: off.
        attn_implementation: "eager", "sdpa", "flash_attention_2", ...; None: transformers' default.
        trust_remote_code: run modelling code shipped in the model folder. Off by default: turn
            it on only for folders you trust.
    """

    dtype: str = field(default="auto", metadata={"help": "auto | float32 | bfloat16 | float16."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: where the model loads)."})
    device_map: str | None = field(default=None, metadata={"help": "transformers device_map, e.g. auto."})
    attn_implementation: str | None = field(default=None, metadata={"help": "eager | sdpa | flash_attention_2 ..."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Run code shipped in the model folder."})

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype={self.dtype!r} is not a dtype; use one of {DTYPES}")
        if self.device is not None and self.device_map is not None:
            raise ConfigError(f"device={self.device!r} and device_map={self.device_map!r} both place the model; "
                              "pass one of them")

    def to_dict(self) -> dict:
        return asdict(self)


def load_policy(path, *, backend: str = "hf", batch_size: int = 64, options: ModelOptions | None = None):
    """The sampling policy stored in ``path`` on ``backend`` ("hf": ``HFPolicy``; "vllm": ``VLLMPolicy``).

    The vllm backend keeps one engine per process: a later call for another checkpoint of the
    same model reloads its weights in place. Without vLLM installed it raises a ``ConfigError``
    that says how to install it.
    """
    options = options or ModelOptions()
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r} is not a sampling backend; use one of {BACKENDS}")
    if backend == "hf":
        from roadmap.core.hf_policy import HFPolicy

        return HFPolicy.from_pretrained(path, batch_size=batch_size, **options.to_dict())
    from roadmap.core.vllm_policy import VLLMPolicy  # imports vLLM only when called: it is optional

    return VLLMPolicy.from_pretrained(path, batch_size=batch_size, options=options)
