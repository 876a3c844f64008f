"""The self-improvement ladder: learning that climbs past its demonstrations (``roadmap run`` of a ladder recipe).

Worked solutions exist only for the seed set (``LadderConfig.seed_levels``); every other problem the
ladder sees is answer-only (``Problem.steps`` empty), so no training row outside the seed set can
carry a worked solution. The run folder::

    run/
      config.yaml                     the recipe as run
      tiny/                           the embedded tiny model (policy: tiny)
      seed.jsonl                      the seed set's worked solutions (the only demonstrations)
      iter_0/policy/ eval.json        the warm start on the seed set, evaluated per level (eval_solutions.json:
                                      its greedy outputs, in the test problems' order)
      iter_k/probe.done.json          pass rate per level on answer-only train problems
      iter_k/search/L<level>/         train-time search (roadmap.app.train_search) at each chosen level
      iter_k/rl_state/                learner: rl (roadmap.app.ladder_rl), in place of search: checkpoint, retired ids
      iter_k/data.jsonl               the kept solutions (with the step checker's verdict, for analysis only)
      iter_k/pairs.jsonl | traces.jsonl   learner tree_dpo | long_cot (roadmap.app.ladder_learners): what it trained on
      iter_k/policy/ eval.json        the policy after learning on new data and replay
      iter_k/<phase>.done.json        phase markers: a rerun skips finished phases
      report.md, metrics.json, levels.png, compute.png

The step checker (``Task.step_labels``) is read only to analyse the kept data (``kept_steps_right``),
never to choose or weight it. Every policy folder carries ``task.json`` (task and options, e.g. arith's
``solution_format``), which ``roadmap eval`` reads, so the plain CLI scores the ladder's policies.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from roadmap.app.ladder_config import LadderConfig, choose_levels, mix_rows, next_rung, select_solution
from roadmap.app.ladder_learners import learn_long_cot, learn_tree_dpo
from roadmap.app.ladder_rl import learn_rl, probe_window, rl_levels
from roadmap.core.io import atomic_write_text, write_json

logger = logging.getLogger(__name__)

__all__ = ["LadderConfig", "run_ladder", "load_ladder_recipe", "is_ladder_recipe", "TASK_FILE"]

#: the task a policy folder was trained on, read by ``roadmap eval`` (``task_options``)
TASK_FILE = "task.json"


def _answer_only(problem):
    return replace(problem, steps=())


def _steps_right(rows: list[dict]) -> int | None:
    """How many kept rows the step checker calls right in every step; None when a row's task has no checker."""
    return None if any(r["steps_right"] is None for r in rows) else sum(r["steps_right"] for r in rows)


def _share(count: int | None, n: int) -> float | None:
    return count / n if n and count is not None else None


class _Ladder:
    def __init__(self, config: LadderConfig, run_dir: Path, say: Callable[[str], None]) -> None:
        from roadmap.core.tasks import get_task

        self.c, self.dir, self.say = config, run_dir, say
        self.task = get_task(config.task, **config.task_args)
        self.rungs = {lv: self.task.level_task(lv) for lv in config.levels}
        self.lengths = config.lengths_config

    def phase(self, k: int, name: str, fn: Callable[..., dict]) -> dict:
        from roadmap.app.loop import run_phase

        return run_phase(self.dir, k, name, fn, self.say)

    def policy(self, k: int):
        from roadmap.core import HFPolicy

        return HFPolicy.from_pretrained(self.dir / f"iter_{k}" / "policy")

    def save_task(self, policy_dir: Path) -> None:
        """The policy folder's ``task.json``: the task and options it was trained on (read by ``roadmap eval``)."""
        write_json(policy_dir / TASK_FILE, {"task": self.c.task, "task_args": self.c.task_args})

    # ------------------------------------------------------------------ data
    def seed_rows(self) -> list[dict[str, Any]]:
        """The seed set: the only worked solutions, ``seed_problems`` split over ``seed_levels``."""
        path = self.dir / "seed.jsonl"
        if path.exists():
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        c, rows = self.c, []
        per = [c.seed_problems // len(c.seed_levels)] * len(c.seed_levels)
        per[0] += c.seed_problems - sum(per)
        from roadmap.core.tasks import get_task

        seed_task = get_task(c.task, **{**c.task_args, **c.seed_task_args}) if c.seed_task_args else None
        for lv, n in zip(c.seed_levels, per):
            rung = seed_task.level_task(lv) if seed_task is not None else self.rungs[lv]
            for p in rung.problems("train", n=n, seed=1000 + c.seed):
                prompt, completion = rung.training_pair(p, rung.reference_solution(p))
                rows.append({"prompt": prompt, "completion": completion, "id": p.id, "level": lv, "source": "seed"})
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
        return rows

    def kept_rows(self, before: int) -> list[dict[str, Any]]:
        rows = []
        for k in range(1, before):
            path = self.dir / f"iter_{k}" / "data.jsonl"
            if path.exists():
                rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return rows

    def answer_only(self, level: int, n: int, seed: int):
        return [_answer_only(p) for p in self.rungs[level].problems("train", n=n, seed=seed)]

    # ------------------------------------------------------------------ phases
    def sft(self, k: int, init: Path, rows: list[dict[str, Any]], steps: int, lr: float) -> dict:
        from datasets import Dataset

        from policy_init.sft import SFTWarmStartConfig, warm_start

        out = self.dir / f"iter_{k}" / "policy"
        data = Dataset.from_dict({x: [r[x] for r in rows] for x in ("prompt", "completion", "id")})
        cfg = SFTWarmStartConfig(output_dir=str(out), max_steps=steps, epochs=max(1.0, steps * self.c.batch_size / len(rows)),
                                 learning_rate=lr, batch_size=self.c.batch_size, seed=self.c.seed + 31 * k,
                                 overwrite=True, lengths=self.lengths, logging_steps=max(1, steps // 10))
        res = warm_start(init, self.task, cfg, train_dataset=data)
        self.save_task(out)
        return {"steps": res.steps, "train_tokens": res.train_tokens, "first_loss": res.first_loss,
                "final_loss": res.final_loss, "rows": len(rows), "train_seconds": res.wall_seconds}

    def warm_start(self) -> dict:
        from policy_init.tiny import TinyConfig, create_tiny

        c = self.c
        init = Path(c.policy)
        if c.policy == "tiny":
            init = self.dir / "tiny"
            # the tokenizer sees the longest rung, so every level's characters are in its vocabulary
            create_tiny(self.rungs[max(c.levels)], init, TinyConfig(seed=c.seed, **c.tiny), overwrite=True)
        seed = self.seed_rows()
        if c.warm_start_steps == 0:
            from roadmap.app.loop import _copy_policy

            _copy_policy(init, self.dir / "iter_0" / "policy")
            self.save_task(self.dir / "iter_0" / "policy")
            return {"steps": 0, "train_tokens": 0}
        return self.sft(0, init, mix_rows(seed, [], c.warm_start_steps * c.batch_size, 0.0, c.seed),
                        c.warm_start_steps, c.warm_start_learning_rate)

    def probe(self, k: int) -> dict:
        """Pass rate per level: the share of right answers among ``probe_samples`` samples of answer-only problems."""
        c, policy = self.c, self.policy(k - 1)
        before = policy.usage.copy()
        rates, at_k, solved = {}, {}, []
        for lv, rung in self.rungs.items():
            # learner rl probes a window of its own pool, so a problem solved in every probe sample is retired
            problems = probe_window(self.rl_pool(lv), k, c.probe_problems) if c.learner == "rl" else \
                self.answer_only(lv, c.probe_problems, seed=c.seed + 9973 * k + lv)
            outs = policy.sample([rung.prompt(p) for p in problems], c.probe_samples, stop=None,
                                 max_new_tokens=self.lengths.max_solution_tokens,
                                 temperature=self.c.search_config.temperature, seed=c.seed + 17 * k + lv)
            right = [[rung.is_correct(p, s.text) for s in comps] for p, comps in zip(problems, outs)]
            rates[lv] = sum(map(sum, right)) / (len(right) * c.probe_samples)
            at_k[lv] = sum(any(r) for r in right) / len(right)
            solved += [p.id for p, r in zip(problems, right) if all(r)]
        spent = policy.usage - before
        chosen = choose_levels(rates, c.band, c.max_levels, c.prefer)
        # lift: the next rung up is searched by lifting the rung below's solutions, beside the levels chosen
        nxt = next_rung(rates, c.band) if c.lift else None
        lifted = [nxt] if nxt is not None and nxt > min(c.levels) else []
        chosen = sorted(set(chosen) | set(lifted))
        self.say(f"iteration {k}: pass rates {_pct(rates)}; learning at levels {chosen}"
                 + (f" ({lifted[0]} by lifting)" if lifted else ""))
        # level keys as strings, as the phase marker reads them back: a resumed run sees the same dicts
        return {"pass_rate": _by_name(rates), "pass_at_k": _by_name(at_k), "chosen": chosen, "lifted": lifted,
                "data_tokens": spent.generated_tokens + spent.prefill_tokens,
                **({"solved": solved} if c.learner == "rl" else {})}

    def rl_pool(self, level: int):
        """Learner rl: the answer-only problems RL draws from at ``level``, the same in every iteration."""
        return self.answer_only(level, self.c.search_problems, seed=self.c.seed + 104729 + level)

    def search(self, k: int, levels: list[int], lifted: Sequence[int] = ()) -> dict:
        """Search each chosen level's answer-only problems; keep one selected solution per problem (``selection``).
        A level in ``lifted`` is searched by lifting (``search.lift``) with the search's budget and temperature."""
        from rewards import VerifierScorer
        from roadmap.app.train_search import search_train
        from search.trees import read_trees

        c = self.c
        if not levels:
            msg = f"iteration {k}: the band {c.band} selects no level; this iteration learns from replay alone"
            logger.warning(msg)
            self.say(msg)
        policy, kept, per_level, tokens = self.policy(k - 1), [], {}, 0
        for lv in levels:
            rung = self.rungs[lv]
            problems = self.answer_only(lv, c.search_problems, seed=c.seed + 104729 * k + lv)
            folder = self.dir / f"iter_{k}" / "search" / f"L{lv}"
            config = replace(c.search_config, seed=c.seed + 7919 * k + lv)
            if lv in lifted:
                summary, rows = self.lifted_search(policy, rung, lv, problems, folder, config)
            else:
                summary = search_train(policy, rung, problems, folder, config, verifier=VerifierScorer(rung),
                                       progress=True, overwrite=True)
                rows = read_trees(folder / "trees.jsonl")
            tokens += summary["usage"]["generated_tokens"] + summary["usage"]["prefill_tokens"]
            by_id = {p.id: p for p in problems}
            # the step checker is read here only to analyse the kept data, never to choose it; a task without one
            # (step_labels) leaves the figure unknown (None), not a crash
            check = getattr(rung, "step_labels", None)
            for row in rows:
                answers = [rung.extract_answer(t) for t in row["candidates"]]
                text = select_solution(row["candidates"], row["candidate_correct"], answers, c.selection)
                if text is None:
                    continue
                problem = by_id[row["problem_id"]]
                answer_right = rung.is_correct(problem, text)
                steps_right = (answer_right and all(check(problem, text))) if check is not None else None
                prompt, completion = rung.training_text(row["prompt"], text)
                kept.append({"prompt": prompt, "completion": completion, "id": row["problem_id"], "level": lv,
                             "source": f"iter_{k}", "answer_right": answer_right,
                             "steps_right": steps_right})
            level_rows = [r for r in kept if r["level"] == lv]
            n_kept = len(level_rows)
            per_level[lv] = {"searched": len(rows), "kept": n_kept, "steps_right": _steps_right(level_rows),
                             "search_accuracy": summary.get("accuracy"), "any_correct": summary.get("any_correct")}
            if n_kept == 0:
                logger.warning("iteration %d: level %s gave no kept solution in %d problems; it is skipped", k, lv,
                               len(rows))
                self.say(f"iteration {k}: level {lv}: no verified solution in {len(rows)} problems, skipped")
        atomic_write_text(self.dir / f"iter_{k}" / "data.jsonl", "".join(json.dumps(r) + "\n" for r in kept))
        n = len(kept)
        return {"levels": _by_name(per_level), "kept": n, "data_tokens": tokens,
                "kept_steps_right": _share(_steps_right(kept), n),
                "kept_answer_right": _share(sum(r["answer_right"] for r in kept), n)}

    def lifted_search(self, policy, rung, level: int, problems, folder: Path, config) -> tuple[dict, list[dict]]:
        """``search.lift`` on ``problems`` in shards of the search's ``shard_size``: rows shaped as ``trees.jsonl``'s
        (prompt, candidates, candidate_correct), written to ``folder/lifted.jsonl``, and a summary as
        ``search_train``'s (usage, accuracy of the verifier's pick, any_correct)."""
        from tqdm import tqdm

        from roadmap.core.types import Usage
        from search.lift import lifted_candidates

        rows, usage = [], Usage()
        size = config.shard_size or len(problems)
        for start in tqdm(range(0, len(problems), size), desc=f"lifted search, level {level}", unit="shard"):
            batch = problems[start:start + size]
            results = lifted_candidates(policy, rung, batch, config.budget, temperature=config.temperature,
                                        seed=config.seed + start, max_new_tokens=self.lengths.max_solution_tokens)
            for p, r in zip(batch, results):
                usage = usage + r.usage
                rows.append({"problem_id": p.id, "prompt": rung.prompt(p), "candidates": r.candidates,
                             "candidate_correct": [rung.is_correct(p, t) for t in r.candidates]})
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "lifted.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        # the verifier picks a right candidate whenever there is one, as search_train's verifier-guided accuracy
        solved = sum(any(r["candidate_correct"]) for r in rows) / (len(rows) or 1)
        return {"usage": usage.to_dict(), "any_correct": solved, "accuracy": solved}, rows

    def learn(self, k: int) -> dict:
        c = self.c
        if c.learner == "tree_dpo":
            return learn_tree_dpo(self, k)
        if c.learner == "long_cot":
            return learn_long_cot(self, k)
        new = [] if c.control == "more_sft" else [
            json.loads(x) for x in (self.dir / f"iter_{k}" / "data.jsonl").read_text().splitlines() if x.strip()]
        replay = self.seed_rows() + self.kept_rows(k)
        rows = mix_rows(new, replay, c.learn_steps * c.batch_size, c.replay_share, c.seed + k)
        return self.sft(k, self.dir / f"iter_{k - 1}" / "policy", rows, c.learn_steps, c.learning_rate)

    def evaluate(self, k: int) -> dict:
        from roadmap.app.evaluate import evaluate

        policy, out, solutions = self.policy(k), {}, {}
        for lv, rung in self.rungs.items():
            problems = rung.problems("test", n=self.c.eval_problems, seed=self.c.eval_seed)
            rep = evaluate(policy, rung, problems, method="greedy", progress=False, lengths=self.lengths)
            out[lv] = {"accuracy": rep.accuracy, "ci95": list(rep.ci95), "n": rep.n, "truncated": rep.truncated,
                       "generated_tokens": rep.generated_tokens}
            solutions[str(lv)] = [r["solution"] for r in rep.records]
        write_json(self.dir / f"iter_{k}" / "eval.json", out)
        # the greedy outputs themselves, in the test problems' order, for behaviour measures (roadmap.app.sos)
        write_json(self.dir / f"iter_{k}" / "eval_solutions.json", solutions)
        self.say(f"iteration {k}: greedy by level {_pct({lv: r['accuracy'] for lv, r in out.items()})}")
        return {"levels": _by_name(out)}

    # ------------------------------------------------------------------ the ladder
    def run(self) -> dict:
        c = self.c
        (self.dir / "iter_0").mkdir(parents=True, exist_ok=True)
        warm = self.phase(0, "warm_start", self.warm_start)
        rows = [{"iteration": 0, **self.phase(0, "eval", lambda: self.evaluate(0)), "chosen": [], "kept": None,
                 "kept_steps_right": None, "pass_rate": {}, "learn_tokens": warm["train_tokens"], "data_tokens": 0,
                 "train_compute": warm["train_tokens"]}]
        total = warm["train_tokens"]
        t_first = None
        for k in range(1, c.iterations + 1):
            t0 = time.perf_counter()
            fresh = not (self.dir / f"iter_{k}" / "learn.done.json").exists()  # a resumed iteration times nothing
            (self.dir / f"iter_{k}").mkdir(parents=True, exist_ok=True)
            probe: dict[str, Any] = {"chosen": [], "pass_rate": {}}
            search: dict[str, Any] = {}
            extra: dict[str, Any] = {}
            data = 0
            if c.control == "none":
                probe = self.phase(k, "probe", lambda k=k: self.probe(k))
                data = probe["data_tokens"]
            if c.learner == "rl":  # no search phase: RL samples for itself
                levels, why = rl_levels(probe["chosen"], probe["pass_rate"], c.levels)
                if why:
                    logger.warning("iteration %d: %s", k, why)
                    self.say(f"iteration {k}: {why}")
                if levels is None:
                    break
                solved = probe.get("solved", [])
                learn = self.phase(k, "learn", lambda k=k, lv=levels, done=solved: learn_rl(self, k, lv, done))
                data += learn["sampled_tokens"]
                # kept: the groups that carried signal (not zero-variance); the reward is the verifier's mean
                search = {"kept": learn["kept_groups"]}
                extra = {"chosen": learn["levels"], "rl_reward": learn["reward_mean"], "rl_steps": learn["steps"],
                         "sampled_tokens": learn["sampled_tokens"]}
            else:
                if c.control == "none":
                    lifted = probe.get("lifted", [])
                    search = self.phase(k, "search", lambda k=k, lv=probe["chosen"], up=lifted: self.search(k, lv, up))
                    data += search["data_tokens"]
                learn = self.phase(k, "learn", lambda k=k: self.learn(k))
                # tree_dpo: pairs made and problems skipped for want of a wrong sample; long_cot: traces made
                extra = {x: learn[x] for x in ("pairs", "no_wrong", "traces", "backtrack", "over_length",
                                               "trace_tokens_mean", "final_margin") if x in learn}
            ev = self.phase(k, "eval", lambda k=k: self.evaluate(k))
            total += data + learn["train_tokens"]
            rows.append({"iteration": k, **ev, "chosen": probe["chosen"], "lifted": probe.get("lifted", []),
                         "pass_rate": probe["pass_rate"],
                         "kept": search.get("kept"), "kept_steps_right": search.get("kept_steps_right"),
                         "learn_tokens": learn["train_tokens"], "data_tokens": data, "train_compute": total, **extra})
            if t_first is None and fresh and k < c.iterations:
                t_first = time.perf_counter() - t0
                self.say(f"iteration {k} took {t_first:.0f} s; about {t_first * (c.iterations - k) / 60:.0f} more "
                         "minutes for the rest on this machine")
        self.write_report(rows)
        return {"run_dir": str(self.dir), "iterations": rows}

    def write_report(self, rows: list[dict[str, Any]]) -> None:
        from roadmap.app.ladder_report import write_ladder_report

        write_ladder_report(self.c, self.dir, rows)


def _by_name(d: dict) -> dict:
    return {str(k): v for k, v in d.items()}


def _pct(d: dict) -> str:
    return ", ".join(f"{k}: {v:.0%}" for k, v in d.items())


def is_ladder_recipe(path: str | Path) -> bool:
    """Whether the YAML recipe at ``path`` is a ladder recipe (``ladder: true``)."""
    from roadmap.app.loop_config import marked_recipe

    return marked_recipe(path, "ladder")


def load_ladder_recipe(path: str | Path, **overrides) -> LadderConfig:
    """A ``LadderConfig`` from a YAML recipe; overrides that are not None replace its keys."""
    from roadmap.app.loop_config import build_recipe, read_recipe

    return build_recipe(LadderConfig, read_recipe(path), path, overrides)


def run_ladder(config: LadderConfig, run_dir: str | Path, say: Callable[[str], None] = print) -> dict:
    """Run (or resume) the ladder of ``config`` in ``run_dir``; a folder of another recipe is refused."""
    from roadmap.app.loop import recipe_folder
    from roadmap.core.outputs import check_overlap, check_writable

    out = Path(run_dir)
    check_overlap({"run folder": out}, {"policy": None if config.policy == "tiny" else config.policy})
    check_writable(out, "run folder")
    with recipe_folder(out, config, "ladder"):
        return _Ladder(config, out, say).run()
