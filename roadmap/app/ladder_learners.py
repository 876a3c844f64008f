"""Tree-DPO and long chains of thought as the ladder's learners (``LadderConfig.learner: tree_dpo | long_cot``).

Both keep the ladder's probe and search phases as they are (best-of-n, or the recipe's ``search:``, on
answer-only problems at the chosen levels, ``selection`` keeping one right-answer solution per problem),
and change only what iteration k learns from that search, starting from iteration k-1's policy:

- ``tree_dpo``: one preference pair per searched problem: *chosen* = the solution ``selection`` keeps,
  *rejected* = a wrong-answer sample of the same problem (the first one that reached an answer, else the
  first wrong one). A problem with no wrong sample gives no pair and is counted (``no_wrong``), as is a
  problem with no kept solution (``no_right``). ``learning.tree_dpo.tree_dpo_step`` (TRL's DPOTrainer)
  trains on the pairs, cycled to ``learn_steps`` x ``dpo.batch_size`` rows (one epoch), so the iteration
  takes ``learn_steps`` optimizer steps; the reference model is the previous policy.

  Seed-set replay: the DPO learner's SFT term is RPO's NLL on each pair's *chosen* side
  (``TreeDPOConfig.sft_weight``). A seed solution has no rejected side, so it cannot enter a DPO batch
  without inventing a rejected text that no policy sampled, and none is invented. What replay does for the
  SFT learner (keep the policy near what it learned from the seed set) is done here by DPO's reference
  model (the previous policy, a KL anchor of strength ``beta``) and by the NLL term on the kept
  solutions (``sft_weight`` 1 by default, RPO's choice: DPO alone tends to lower the chosen likelihood too).
  ``replay_share`` is therefore unused by this learner. Not measured: whether this holds the seed levels.

- ``long_cot``: each searched problem's samples become one long chain of thought: up to
  ``long_cot.wrong_attempts`` wrong-answer samples in sample order (finished ones only: each has an answer
  line, which is dropped, so the trace holds one final answer), each followed by the task's backtrack
  marker (``Task.backtrack_text`` back to step 1, as ``learning.traces`` writes a backtrack: arith's
  "<inverse of the last line> no, back to 1"), then the solution ``selection`` keeps. A problem with no
  finished wrong sample gives the kept solution alone (a clean trace, counted). The marker is written from
  the attempt's own text; the step checker is never read. SFT (the ladder's ``sft``) on the traces mixed with
  replay (``replay_share``) of the seed set and of earlier iterations' traces (``iter_k/traces.jsonl``).
  A trace is (wrong_attempts + 1) solutions long: the recipe's ``lengths.max_solution_tokens`` (probe,
  search and the greedy eval) and ``train_max_length`` must fit it; the learn phase counts the traces that do
  not (``over_length``) and warns, since greedy eval would cut such a policy's answer off. From iteration 2 on,
  a long-CoT policy's samples are traces themselves; they are used as sampled (a wrong sample's own markers
  stay in its attempt), and the report's ``kept steps right`` then reads marker lines as wrong steps (the step
  checker knows no markers), so under this learner it understates the share.

Training reads neither a worked solution outside the seed set (every text is one of the policy's own
samples) nor the step checker; the search phase reads the step checker only to analyse the kept data.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from roadmap.app.ladder_config import mix_rows, select_solution
from roadmap.app.loop_config import RecipeError
from roadmap.core.errors import ConfigError
from roadmap.core.io import atomic_write_text

logger = logging.getLogger(__name__)

__all__ = ["DPO_DEFAULTS", "DPO_SET_BY_LADDER", "LongCoTSection", "build_dpo_config", "build_long_cot_config",
           "preference_pairs", "sample_traces", "learn_tree_dpo", "learn_long_cot"]

#: the ladder's DPO settings unless the recipe's ``dpo:`` says otherwise (TreeDPOConfig's own, plus RPO's NLL term)
DPO_DEFAULTS: dict[str, Any] = {"beta": 0.1, "loss_type": "sigmoid", "sft_weight": 1.0, "learning_rate": 1e-4}

#: TreeDPOConfig fields the ladder sets itself, with the reason a recipe's ``dpo:`` may not
DPO_SET_BY_LADDER = {"output_dir": "iter_k/policy", "overwrite": "the ladder's phases own their folders",
                     "epochs": "the ladder's learn_steps (the pairs are cycled to fill them)",
                     "seed": "the ladder's seed", "lengths": "the top-level lengths:",
                     "margin": "the ladder's pairs are solution-level; step pairs need MCTS Q-values",
                     "step_values": "the ladder's pairs are solution-level; step pairs need a search tree"}


@dataclass
class LongCoTSection:
    """The ladder's ``long_cot:`` section: how a problem's samples become one trace."""

    wrong_attempts: int = field(default=1, metadata={
        "help": "Wrong-answer samples written (each followed by the backtrack marker) before the kept solution."})

    def __post_init__(self) -> None:
        if self.wrong_attempts < 1:
            raise ConfigError(f"wrong_attempts={self.wrong_attempts} must be at least 1 (0 is the sft learner)")


def build_dpo_config(dpo: dict, *, learn_steps: int, batch_size: int, lengths, seed: int = 0,
                     output_dir: str = "dpo-policy"):
    """The ``TreeDPOConfig`` of the recipe's ``dpo:`` over ``DPO_DEFAULTS`` (batch size: the ladder's unless
    ``dpo.batch_size``); a bad key or value is a one-line ``RecipeError`` naming it (``dpo.<key>``)."""
    from learning.tree_dpo import TreeDPOConfig
    from roadmap.app.loop_config import build_section

    built = build_section(TreeDPOConfig, {**DPO_DEFAULTS, "batch_size": batch_size, **dpo}, "dpo",
                          set_by_loop=DPO_SET_BY_LADDER, label="learning.tree_dpo.TreeDPOConfig")
    if not built.beta > 0:
        raise RecipeError(f"dpo.beta={built.beta} must be a positive number, e.g. 0.1")
    if built.sft_weight < 0:
        raise RecipeError(f"dpo.sft_weight={built.sft_weight} must be 0 (no NLL term) or more")
    try:
        return replace(built, output_dir=str(output_dir), overwrite=True, seed=seed, lengths=lengths, epochs=1.0)
    except (ConfigError, ValueError, TypeError) as e:
        raise RecipeError(f"dpo: {e}") from e


def build_long_cot_config(section: dict) -> LongCoTSection:
    from roadmap.app.loop_config import build_section

    return build_section(LongCoTSection, section, "long_cot", label="roadmap.app.ladder_learners.LongCoTSection")


def _finished(rung, text: str) -> bool:
    return rung.extract_answer(text) is not None


def _kept_and_wrong(rung, row: dict, selection: str) -> tuple[str | None, list[str]]:
    """The solution ``selection`` keeps (or None) and the row's distinct wrong-answer samples, in sample order."""
    answers = [rung.extract_answer(t) for t in row["candidates"]]
    kept = select_solution(row["candidates"], row["candidate_correct"], answers, selection)
    wrong, seen = [], set()
    for text, ok in zip(row["candidates"], row["candidate_correct"]):
        t = text.strip()
        if not ok and t and t != kept and t not in seen:
            seen.add(t)
            wrong.append(t)
    return kept, wrong


def preference_pairs(rows: list[dict], rung, selection: str, level: int | None = None
                     ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """DPO rows (prompt/chosen/rejected/id) of a level's searched ``rows`` (``trees.jsonl``) and the counts of
    problems with no kept solution (``no_right``) and with no wrong sample (``no_wrong``): both give no pair."""
    pairs, counts = [], {"no_right": 0, "no_wrong": 0}
    for row in rows:
        kept, wrong = _kept_and_wrong(rung, row, selection)
        if kept is None:
            counts["no_right"] += 1
            continue
        if not wrong:
            counts["no_wrong"] += 1
            continue
        rejected = next((t for t in wrong if _finished(rung, t)), wrong[0])
        prompt, chosen = rung.training_text(row["prompt"], kept)
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rung.training_text(row["prompt"], rejected)[1],
                      "id": row["problem_id"], "level": level})
    return pairs, counts


def _attempt_lines(rung, text: str) -> list[str]:
    """A wrong attempt's step lines, its answer line(s) dropped (the trace keeps one final answer)."""
    return [s.strip() for s in rung.split_steps(text) if rung.extract_answer(s) is None]


def sample_traces(rows: list[dict], rung, selection: str, wrong_attempts: int, level: int | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Long-CoT SFT rows (prompt/completion/id/kind) of a level's searched ``rows`` and counts: traces with a wrong
    attempt (``backtrack``), clean traces (no finished wrong sample), problems with no kept solution."""
    from roadmap.core.types import Problem

    out, counts = [], {"backtrack": 0, "clean": 0, "no_right": 0}
    for row in rows:
        kept, wrong = _kept_and_wrong(rung, row, selection)
        if kept is None:
            counts["no_right"] += 1
            continue
        problem = Problem(id=row["problem_id"], question=row.get("question", ""), answer=row.get("reference", ""))
        lines: list[str] = []
        attempts = [steps for steps in (_attempt_lines(rung, t) for t in wrong if _finished(rung, t)) if steps]
        for steps in attempts[:wrong_attempts]:
            lines += [*steps, rung.backtrack_text(problem, steps[:-1], steps[-1], 1)]
        kind = "backtrack" if lines else "clean"
        counts[kind] += 1
        trace = rung.step_delimiter.join([*lines, kept])
        prompt, completion = rung.training_text(row["prompt"], trace)
        out.append({"prompt": prompt, "completion": completion, "id": row["problem_id"], "level": level,
                    "kind": kind, "source": "trace"})
    return out, counts


def _searched(ladder, k: int) -> list[tuple[int, list[dict]]]:
    """(level, trees.jsonl rows) of iteration ``k``'s search, at the levels its search phase searched."""
    from search.trees import read_trees

    marker = json.loads((ladder.dir / f"iter_{k}" / "search.done.json").read_text())
    levels = sorted(int(lv) for lv in marker.get("levels", {}))
    return [(lv, read_trees(ladder.dir / f"iter_{k}" / "search" / f"L{lv}" / "trees.jsonl")) for lv in levels]


def _unchanged(ladder, k: int, why: str) -> None:
    from roadmap.app.loop import _copy_policy

    logger.warning("iteration %d: %s", k, why)
    ladder.say(f"iteration {k}: {why}")
    _copy_policy(ladder.dir / f"iter_{k - 1}" / "policy", ladder.dir / f"iter_{k}" / "policy")
    ladder.save_task(ladder.dir / f"iter_{k}" / "policy")


def _write_rows(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def learn_tree_dpo(ladder, k: int) -> dict[str, Any]:
    """Iteration ``k``'s learn phase under ``learner: tree_dpo``: pairs from the search, DPO from iteration k-1."""
    from datasets import Dataset

    from learning.tree_dpo import tree_dpo_step

    c, here = ladder.c, ladder.dir / f"iter_{k}"
    pairs, counts, per_level = [], {"no_right": 0, "no_wrong": 0}, {}
    for lv, rows in _searched(ladder, k):
        got, n = preference_pairs(rows, ladder.rungs[lv], c.selection, lv)
        pairs += got
        counts = {x: counts[x] + n[x] for x in counts}
        per_level[str(lv)] = {"pairs": len(got), **n}
    _write_rows(here / "pairs.jsonl", pairs)
    base = {"pairs": len(pairs), **counts, "pair_levels": per_level}
    if counts["no_wrong"]:
        ladder.say(f"iteration {k}: {counts['no_wrong']} problems had no wrong sample to pair against; skipped")
    if not pairs:
        _unchanged(ladder, k, "no preference pair (no problem had both a kept and a wrong sample); the policy is "
                   "copied unchanged; raise search.budget or search_problems")
        return {**base, "steps": 0, "train_tokens": 0, "final_margin": None, "train_seconds": 0.0}
    config = c.dpo_config(seed=c.seed + 31 * k, output_dir=str(here / "policy"))
    cycled = mix_rows(pairs, [], c.learn_steps * config.batch_size, 0.0, c.seed + k)
    data = Dataset.from_dict({x: [r[x] for r in cycled] for x in ("prompt", "chosen", "rejected")})
    res = tree_dpo_step(ladder.dir / f"iter_{k - 1}" / "policy", data, config)
    ladder.save_task(here / "policy")
    return {**base, "steps": res.steps, "train_tokens": res.train_tokens, "first_loss": res.first_loss,
            "final_loss": res.final_loss, "final_margin": res.final_margin, "train_seconds": res.wall_seconds}


def learn_long_cot(ladder, k: int) -> dict[str, Any]:
    """Iteration ``k``'s learn phase under ``learner: long_cot``: traces from the search, SFT with replay."""
    from transformers import AutoTokenizer

    c, here = ladder.c, ladder.dir / f"iter_{k}"
    section = c.long_cot_config()
    traces, counts = [], {"backtrack": 0, "clean": 0, "no_right": 0}
    for lv, rows in _searched(ladder, k):
        got, n = sample_traces(rows, ladder.rungs[lv], c.selection, section.wrong_attempts, lv)
        traces += got
        counts = {x: counts[x] + n[x] for x in counts}
    _write_rows(here / "traces.jsonl", traces)
    tok = AutoTokenizer.from_pretrained(ladder.dir / f"iter_{k - 1}" / "policy")
    lengths = ladder.lengths
    sizes = [(len(tok(t["completion"], add_special_tokens=False).input_ids),
              len(tok(t["prompt"] + t["completion"]).input_ids)) for t in traces]
    over = sum(gen > lengths.max_solution_tokens or full > lengths.train_max_length for gen, full in sizes)
    if over:
        ladder.say(f"iteration {k}: {over} of {len(traces)} traces exceed lengths.max_solution_tokens="
                   f"{lengths.max_solution_tokens} or train_max_length={lengths.train_max_length}; raise them, or "
                   "greedy eval cuts the policy's answers off")
        logger.warning("iteration %d: %d traces over length", k, over)
    base = {"traces": len(traces), **counts, "over_length": over,
            "trace_tokens_max": max((g for g, _ in sizes), default=0),
            "trace_tokens_mean": sum(g for g, _ in sizes) / len(sizes) if sizes else None}
    replay = ladder.seed_rows()
    for j in range(1, k):
        path = ladder.dir / f"iter_{j}" / "traces.jsonl"
        if path.exists():
            replay += [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    rows = mix_rows(traces, replay, c.learn_steps * c.batch_size, c.replay_share, c.seed + k)
    return {**base, **ladder.sft(k, ladder.dir / f"iter_{k - 1}" / "policy", rows, c.learn_steps, c.learning_rate)}
