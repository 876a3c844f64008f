"""Our beam search and MCTS against llm-reasoners' own (its code, installed), on one policy and one PRM.

The same tiny policy folder, the same PRM (``rewards.load_step_scorer``, min over steps), the same
held-out arith problems (``ArithTask().problems("test", n, seed)``) and the same budget on every
side: N=16, width M=4, temperature 1, steps cut at the task's delimiter "\\n", at most 64 tokens a
step and 12 steps. Each side writes one JSON; ``--side table`` merges them into a markdown table
(accuracy with its 95% Wilson interval, generated tokens and wall seconds per problem).

Sides (each in its own environment; vLLM and llm-reasoners cannot share the project's pins):

- ``ours`` (/work/venv, HFPolicy) and ``vllm`` (/work/venv-vllm, VLLMPolicy): ``search.registry``'s
  ``beam`` (N beams of width M: N first steps, then the N/M best expanded M ways per depth) and
  ``mcts`` (N simulations, each one M-way expansion, PUCT, progressive widening), through
  ``roadmap.app.evaluate.evaluate_search`` (problems batched 32 at a time).
- ``peer`` (its own venv): ``reasoners.Reasoner`` with ``reasoners.algorithm.BeamSearch``
  (beam_size N/M, every state expanded M ways, N first steps at the root as ours, ranked by the
  last reward) and ``reasoners.algorithm.MCTS`` (n_iters N, M actions per expansion, its default
  UCT w_exp=1, sum of rewards along a path, mean Q, 'max' simulation by fast reward, 'max_reward'
  output), on ``reasoners.lm.HFModel`` loading the policy folder. World model: the state is the
  list of steps so far; an action is the next step, sampled by HFModel.generate (top_k off, stop
  at "\\n"); a state is terminal when its last step states an answer, the policy ended (no "\\n"),
  or at 12 steps. SearchConfig: ``get_actions`` samples the steps and scores every new prefix
  with our PRM in one batch; that score is both ``fast_reward`` and ``reward`` (a partial
  solution's min step score, the number our beam ranks by). HFModel reports no token counts:
  a subclass counts the tokens of every returned step (re-encoded; an EOS that ended a
  solution is not counted, as decoding drops it). Problems run one at a time, as
  llm-reasoners' Evaluator runs them.

Regenerate (every run under the shared lock, one thread). The policy and PRM of the 2026-12-01 run:
``roadmap sft --policy p700 --max-steps 400 --seed 1 --out peer_policy`` (p700: 700 SFT steps from the
tiny model; 69.0% greedy on these 200), ``roadmap label --policy peer_policy --n 400 --samples 4
--method binary --rollouts 8 --out peer_labels``, ``roadmap train-prm --labels peer_labels --init
peer_policy --out peer_prm --epochs 2`` (eval AUC 0.803). Then:

    P=/work/artifacts/peer_policy PRM=/work/artifacts/peer_prm R=benchmarks/results
    flock /work/heavy.lock env OMP_NUM_THREADS=1 PYTHONPATH=$PWD /work/venv/bin/python \\
        benchmarks/peer_llm_reasoners.py --side ours --policy $P --prm $PRM --out $R/peer_ours.json
    flock /work/heavy.lock env OMP_NUM_THREADS=1 PYTHONPATH=$PWD /work/venv-vllm/bin/python \\
        benchmarks/peer_llm_reasoners.py --side vllm --policy $P --prm $PRM --out $R/peer_vllm.json
    flock /work/heavy.lock env OMP_NUM_THREADS=1 PYTHONPATH=$PWD /work/venv-peer/bin/python \\
        benchmarks/peer_llm_reasoners.py --side peer --policy $P --prm $PRM --out $R/peer_peer.json
    python benchmarks/peer_llm_reasoners.py --side table $R/peer_ours.json $R/peer_vllm.json $R/peer_peer.json

The peer environment: ``python3.11 -m venv /work/venv-peer && /work/venv-peer/bin/pip install
-c constraints/cpu.txt llm-reasoners==1.0.2 && /work/venv-peer/bin/pip install -c
constraints/cpu.txt -e .`` (llm-reasoners 1.0.2 resolves to the project's own torch 2.13.0+cpu and
transformers 5.24.0, so no further pins are needed).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

METHODS = ("beam", "mcts")


def _row(side, method, problems, correct, tokens, seconds, **extra):
    from roadmap.core.stats import wilson_interval

    n = len(problems)
    return {"side": side, "method": method, "problems": n, "accuracy": correct / n,
            "ci95": list(wilson_interval(correct, n)), "tokens_per_problem": tokens / n,
            "seconds_per_problem": seconds / n, "generated_tokens": tokens, "wall_seconds": seconds, **extra}


def run_ours(args, task, problems, scorer, backend):
    from roadmap.app.evaluate import evaluate_search
    from roadmap.core.backends import ModelOptions, load_policy

    t0 = time.perf_counter()
    policy = load_policy(args.policy, backend=backend, batch_size=64, options=ModelOptions(dtype="float32"))
    load_seconds = time.perf_counter() - t0
    rows = []
    for method in args.methods:
        report = evaluate_search(policy, task, problems, method=method, budget=args.budget, scorer=scorer,
                                 seed=args.seed, width=args.width, temperature=1.0, progress=False)
        rows.append(_row(f"ours-{backend}", method, problems, report.correct, report.generated_tokens,
                         report.wall_seconds, load_seconds=load_seconds))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _peer_classes(task, scorer, args):
    """llm-reasoners' LM wrapper, WorldModel and SearchConfig for arith, built on its installed base classes."""
    import numpy as np
    from reasoners import SearchConfig, WorldModel
    from reasoners.lm import HFModel

    class CountingHFModel(HFModel):
        """HFModel as shipped; it reports no token counts, so every returned text is re-encoded and counted."""

        generated_tokens = 0

        def generate(self, inputs, **kwargs):
            out = super().generate(inputs, **kwargs)
            self.generated_tokens += sum(len(self.tokenizer.encode(t, add_special_tokens=False)) for t in out.text)
            return out

    class ArithWorld(WorldModel):
        """State: the tuple of steps so far (each ends with the delimiter); action: the next step."""

        def init_state(self):
            return ()

        def step(self, state, action):
            return state + (action,), {}

        def is_terminal(self, state):
            if not state:
                return False
            last = state[-1]
            return (len(state) >= args.max_depth or not last.endswith(task.step_delimiter)
                    or task.extract_answer(last) is not None)

    class ArithPRMConfig(SearchConfig):
        """Actions sampled by the policy through HFModel; rewards from our PRM, scored in one batch per expansion."""

        def __init__(self, lm, root_actions, actions):
            super().__init__()
            self.lm, self.root_actions, self.actions = lm, root_actions, actions
            self.scores: dict[tuple, float] = {}

        def get_actions(self, state):
            k = self.root_actions if not state else self.actions
            prefix = task.prompt(self.example) + "".join(state)
            steps = self.lm.generate([prefix], num_return_sequences=k, do_sample=True, temperature=1.0, top_k=0,
                                     top_p=1.0, max_new_tokens=args.max_step_tokens,
                                     eos_token_id=task.step_delimiter, hide_input=True).text
            steps = [s for s in dict.fromkeys(steps) if s.strip()]  # duplicate siblings merged, as ours does
            new = [s for s in steps if state + (s,) not in self.scores]
            if new:
                for s, x in zip(new, scorer.score(self.example, ["".join(state) + s for s in new])):
                    self.scores[state + (s,)] = float(x)
            return steps

        def fast_reward(self, state, action):
            x = self.scores[state + (action,)]
            return x, {"prm": x}

        def reward(self, state, action, prm=None, **kwargs):
            return (self.scores[state + (action,)] if prm is None else prm), {}

    return CountingHFModel, ArithWorld, ArithPRMConfig, np


def run_peer(args, task, problems, scorer):
    import random
    import warnings

    import torch
    import transformers
    from reasoners import Reasoner
    from reasoners.algorithm import MCTS, BeamSearch

    # HFModel warns on every call (max_length beside max_new_tokens; a multi-token eos): noise, not news
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", module="reasoners")

    CountingHFModel, ArithWorld, ArithPRMConfig, np = _peer_classes(task, scorer, args)
    t0 = time.perf_counter()
    lm = CountingHFModel(args.policy, args.policy, device="cpu", max_batch_size=args.budget, max_length=256)
    load_seconds = time.perf_counter() - t0
    m = min(args.width, args.budget)
    rows = []
    for method in args.methods:
        picked = problems[: args.peer_problems.get(method, len(problems))]
        if method == "beam":
            algo = BeamSearch(beam_size=args.budget // m, max_depth=args.max_depth, sampling_strategy="argmax",
                              reward_aggregator="last")
            config = ArithPRMConfig(lm, root_actions=args.budget, actions=m)
        else:
            algo = MCTS(n_iters=args.budget, depth_limit=args.max_depth, w_exp=1.0, output_strategy="max_reward",
                        disable_tqdm=True)
            config = ArithPRMConfig(lm, root_actions=m, actions=m)
        reasoner = Reasoner(world_model=ArithWorld(), search_config=config, search_algo=algo)
        before, correct, t0 = lm.generated_tokens, 0, time.perf_counter()
        for i, problem in enumerate(picked):
            torch.manual_seed(args.seed + i)
            np.random.seed(args.seed + i)
            random.seed(args.seed + i)
            config.scores = {}
            result = reasoner(problem)
            state = result.terminal_state
            answer = task.extract_answer(state[-1]) if state else None
            correct += answer is not None and task.answers_match(answer, problem.answer)
        seconds = time.perf_counter() - t0
        rows.append(_row("llm-reasoners", method, picked, correct, lm.generated_tokens - before, seconds,
                         load_seconds=load_seconds))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(paths) -> str:
    from roadmap.core.io import format_table

    rows = [r for p in paths for r in json.load(open(p))["rows"]]
    shown = [{"search": f"{r['side']} {r['method']}", "problems": r["problems"],
              "accuracy (95% CI)": f"{r['accuracy']:.3f} ({r['ci95'][0]:.3f}–{r['ci95'][1]:.3f})",
              "tokens / problem": f"{r['tokens_per_problem']:.0f}",
              "seconds / problem": f"{r['seconds_per_problem']:.3f}"} for r in rows]
    return format_table(shown, list(shown[0]), markdown=True)


def _peer_problems(text: str) -> dict[str, int]:
    out = {}
    for part in filter(None, text.split(",")):
        method, _, n = part.partition("=")
        if method not in METHODS or not n.isdigit():
            raise SystemExit(f"--peer-problems {text!r}: expected METHOD=N pairs, e.g. mcts=50 (methods {METHODS})")
        out[method] = int(n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", required=True, choices=("ours", "vllm", "peer", "table"))
    ap.add_argument("inputs", nargs="*", help="--side table: the JSON files of the sides")
    ap.add_argument("--policy", help="policy folder (SFT checkpoint of the tiny model)")
    ap.add_argument("--prm", help="PRM folder (roadmap train-prm) scoring every side")
    ap.add_argument("--problems", type=int, default=200, help="held-out arith problems")
    ap.add_argument("--peer-problems", type=_peer_problems, default={},
                    help="fewer problems for a slow peer method, e.g. mcts=50 (the first ones of --problems)")
    ap.add_argument("--methods", type=lambda s: tuple(s.split(",")), default=METHODS)
    ap.add_argument("--budget", type=int, default=16, help="N: beams / simulations (iterations)")
    ap.add_argument("--width", type=int, default=4, help="M: steps sampled per expansion")
    ap.add_argument("--max-step-tokens", type=int, default=64)
    ap.add_argument("--max-depth", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.side == "table":
        print(table(args.inputs))
        return
    if not (args.policy and args.prm and args.out):
        ap.error("--policy, --prm and --out are required for --side ours|vllm|peer")

    from rewards import load_step_scorer
    from roadmap.core.io import write_json
    from roadmap.core.tasks import ArithTask

    task = ArithTask()
    problems = task.problems("test", n=args.problems, seed=args.seed)
    scorer = load_step_scorer(args.prm, task, "min")
    if args.side == "peer":
        rows = run_peer(args, task, problems, scorer)
    else:
        rows = run_ours(args, task, problems, scorer, "hf" if args.side == "ours" else "vllm")
    write_json(args.out, {"rows": rows, "settings": vars(args), "machine": platform.platform()})
    print(table([args.out]))


if __name__ == "__main__":
    main()
