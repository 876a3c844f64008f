"""The self-improvement ladder's recipe (``roadmap run`` of a recipe with ``ladder: true``), checked before any work.

Worked solutions exist only for a small seed set of easy problems; every other problem carries
only its final answer. Each iteration measures the policy's pass rate per level on a small probe,
searches where that rate sits in ``band`` (the edge of competence) and on the next level up, keeps
the verified solutions (``selection``), and fine-tunes on them mixed with replay of the seed set and
of everything kept before (``replay_share``). ``roadmap.app.ladder`` runs it.

The pure parts live here and are tested on their own: ``choose_levels`` (where to learn, from given
pass rates) and ``mix_rows`` (new data with replay).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from typing import Any

from roadmap.app.loop_config import RecipeError, _unknown, check_types
from roadmap.core.lengths import Lengths

__all__ = ["LadderConfig", "LEARNERS", "SELECTIONS", "choose_levels", "next_rung", "mix_rows", "select_solution"]

#: how a searched problem's samples become training data:
#: verified: the first sample whose final answer is right (the outcome filter);
#: agreement: the right-answer text sampled most often (a lucky slip rarely repeats; ties: the first);
#: majority: the most frequent answer's first sample, reference unseen (no verifier: a control);
#: unfiltered: the first sample, right or wrong (the error-avalanche control)
SELECTIONS = ("verified", "agreement", "majority", "unfiltered")

#: how each iteration learns: sft (search, keep, fine-tune), rl (roadmap.app.ladder_rl), tree_dpo or long_cot (search,
#: then DPO on kept-vs-wrong pairs, or SFT on wrong-then-right traces: roadmap.app.ladder_learners)
LEARNERS = ("sft", "rl", "tree_dpo", "long_cot")
#: recipe sections that belong to one learner (a recipe of another learner may not set them)
LEARNER_SECTIONS = ("rl", "dpo", "long_cot")


@dataclass
class LadderConfig:
    """A ladder recipe. Levels are values of the task's level knob (arith: operand counts)."""

    ladder: bool = field(default=True, metadata={"help": "Marks a ladder recipe (roadmap run dispatches on it)."})
    task: str = field(default="arith", metadata={"help": "A task with levels (Task.level_task)."})
    task_args: dict = field(default_factory=lambda: {"digits": 2, "solution_format": "carry"},
                            metadata={"help": "Task options; they are saved with every policy (task.json)."})
    levels: list = field(default_factory=lambda: [2, 3, 4, 5, 6, 7, 8], metadata={"help": "The rungs, easiest first."})
    seed_levels: list = field(default_factory=lambda: [2, 3, 4], metadata={
        "help": "Levels of the seed set: the only problems with worked solutions."})
    seed_problems: int = field(default=2000, metadata={"help": "Worked solutions in the seed set."})
    seed_task_args: dict = field(default_factory=dict, metadata={
        "help": "Task options for the seed set alone, over task_args (arith: {digits: 3, min_digits: 1} spreads the "
                "seed chains over more lengths, still at seed_levels only); the probe, search and eval keep task_args."})
    policy: str = field(default="tiny", metadata={
        "help": "Starting model folder, or 'tiny' to build the embedded tiny model (tiny: section) in the run."})
    tiny: dict = field(default_factory=dict, metadata={"help": "policy_init.tiny.TinyConfig fields for policy: tiny."})
    warm_start_steps: int = field(default=600, metadata={"help": "SFT steps on the seed set before the ladder (0: none)."})
    warm_start_learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate of the warm start."})
    iterations: int = field(default=8, metadata={"help": "Ladder iterations after the warm start."})
    learner: str = field(default="sft", metadata={
        "help": "How each iteration learns: 'sft' (search the chosen levels, keep verified solutions, fine-tune with "
                "replay) or 'rl' (the project's own RL loop on the chosen levels' answer-only problems, outcome reward "
                "alone, no search phase; roadmap.app.ladder_rl), 'tree_dpo' (search, then DPO: the kept solution against a "
                "wrong sample of the same problem) or 'long_cot' (search, then SFT on wrong attempts, a backtrack "
                "marker and the kept solution as one trace; both roadmap.app.ladder_learners)."})
    rl: dict = field(default_factory=dict, metadata={
        "help": "learner: rl: learning.rl.RLConfig fields over roadmap.app.ladder_rl.RL_DEFAULTS (ScaleRL's choices), "
                "e.g. {loss_type: cispo, num_generations: 8, max_lag: 0}; learn_steps is its step budget."})
    dpo: dict = field(default_factory=dict, metadata={
        "help": "learner: tree_dpo: learning.tree_dpo.TreeDPOConfig fields over roadmap.app.ladder_learners.DPO_DEFAULTS, "
                "e.g. {beta: 0.1, sft_weight: 1.0, learning_rate: 1.0e-4}; learn_steps is its step budget."})
    long_cot: dict = field(default_factory=dict, metadata={
        "help": "learner: long_cot: {wrong_attempts: N}, wrong samples written before the kept one (default 1)."})
    control: str = field(default="none", metadata={
        "help": "'none' (the ladder), or 'more_sft': the same learn steps on the seed set alone, no search."})
    probe_problems: int = field(default=32, metadata={"help": "Answer-only problems per level in the pass-rate probe."})
    probe_samples: int = field(default=8, metadata={"help": "Samples per probe problem."})
    band: list = field(default_factory=lambda: [0.1, 0.9], metadata={
        "help": "[low, high] pass rates of the edge of competence, where the ladder searches."})
    max_levels: int = field(default=2, metadata={"help": "Most levels searched per iteration."})
    prefer: str = field(default="easiest", metadata={
        "help": "Which chosen levels come first when more than max_levels qualify: 'easiest' (measured: an "
                "easier rung's right answers come through right steps far more often) or 'hardest'."})
    search: dict = field(default_factory=lambda: {"method": "bon", "budget": 16, "temperature": 0.7, "shard_size": 64},
                         metadata={"help": "roadmap.app.train_search.TrainSearchConfig fields (guided by the verifier)."})
    search_problems: int = field(default=512, metadata={
        "help": "Answer-only problems searched per chosen level (learner: rl: the pool RL draws from per level)."})
    lift: bool = field(default=False, metadata={
        "help": "Also search the next rung up (above every level passed at band[0]) by lifting, on top of the "
                "max_levels levels chosen: the policy solves each problem's smaller sub-problem (Task.sub_problem; "
                "arith: the chain without its last term), its steps are lifted into the problem's solution and it "
                "writes the rest (search.lift); the outcome verifier keeps the right ones. The foothold past the "
                "demonstrations: plain sampling at the next rung almost never lands."})
    selection: str = field(default="agreement", metadata={"help": f"How samples become data: one of {SELECTIONS}."})
    learn_steps: int = field(default=300, metadata={"help": "SFT optimizer steps per iteration."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate of each iteration's SFT."})
    batch_size: int = field(default=64, metadata={"help": "Rows per SFT step."})
    replay_share: float = field(default=0.5, metadata={
        "help": "Share of each iteration's rows drawn from replay (the seed set and all data kept before)."})
    fit_levels: list = field(default_factory=list, metadata={
        "help": "Levels whose mean accuracy the report's sigmoid fits against compute (default: the two highest "
                "levels whose accuracy moved by 2 points or more over the run, else the top two)."})
    eval_problems: int = field(default=200, metadata={"help": "Held-out problems per level, greedy."})
    eval_seed: int = field(default=918273, metadata={"help": "Seed of the held-out problems (the test seed)."})
    seed: int = field(default=0, metadata={"help": "Seed of the model init, seed set, probes, search and SFT order."})
    lengths: dict = field(default_factory=dict, metadata={"help": "roadmap.core.Lengths fields."})

    def __post_init__(self) -> None:
        from roadmap.core.tasks import get_task

        check_types({f.name: getattr(self, f.name) for f in fields(self)}, LadderConfig, "")
        for name in ("seed_problems", "iterations", "probe_problems", "probe_samples", "max_levels", "search_problems",
                     "learn_steps", "batch_size", "eval_problems"):
            if getattr(self, name) < 1:
                raise RecipeError(f"{name}={getattr(self, name)} must be at least 1")
        if self.warm_start_steps < 0:
            raise RecipeError(f"warm_start_steps={self.warm_start_steps} must be 0 (no warm start) or more")
        for name in ("learning_rate", "warm_start_learning_rate"):
            if not getattr(self, name) > 0:
                raise RecipeError(f"{name}={getattr(self, name)} must be a positive number, e.g. 5.0e-4")
        if len(self.band) != 2 or not all(isinstance(x, (int, float)) and 0 <= x <= 1 for x in self.band) \
                or self.band[0] > self.band[1]:
            raise RecipeError(f"band={self.band!r} must be [low, high] with 0 <= low <= high <= 1, e.g. [0.1, 0.9]")
        if not 0 <= self.replay_share <= 1:
            raise RecipeError(f"replay_share={self.replay_share} must lie in [0, 1] (0: new data only)")
        if self.selection not in SELECTIONS:
            raise RecipeError(f"selection={self.selection!r} is unknown; use one of {SELECTIONS}")
        if self.prefer not in ("easiest", "hardest"):
            raise RecipeError(f"prefer={self.prefer!r} is unknown; use 'easiest' or 'hardest'")
        if self.control not in ("none", "more_sft"):
            raise RecipeError(f"control={self.control!r} is unknown; use 'none' or 'more_sft'")
        if self.learner not in LEARNERS:
            raise RecipeError(f"learner={self.learner!r} is unknown; use one of {LEARNERS}")
        if self.learner != "sft" and self.control != "none":
            raise RecipeError(f"control={self.control!r} is SFT on the seed set; it takes learner: sft (run the "
                              f"control as its own recipe beside the {self.learner} ladder)")
        for section in LEARNER_SECTIONS:
            learner = "tree_dpo" if section == "dpo" else section
            if getattr(self, section) and self.learner != learner:
                raise RecipeError(f"{section}: {sorted(getattr(self, section))} applies to learner: {learner} only; "
                                  f"set learner: {learner} or remove {section}:")
        if self.learner in ("tree_dpo", "long_cot") and self.selection not in ("verified", "agreement"):
            raise RecipeError(f"selection={self.selection!r} reads no verifier, but learner {self.learner} needs right "
                              "and wrong samples told apart; use selection: agreement or verified")
        if not self.seed_levels:
            raise RecipeError("seed_levels=[] leaves the seed set empty; the ladder needs worked solutions at one "
                              "level at least, e.g. seed_levels: [2, 3, 4]")
        if not self.levels:
            raise RecipeError("levels=[] names no rung; list the task's levels, e.g. levels: [2, 3, 4, 5, 6]")
        if sorted(self.levels) != list(self.levels) or len(set(self.levels)) != len(self.levels):
            raise RecipeError(f"levels={self.levels} must be distinct and in increasing order")
        if not set(self.fit_levels) <= set(self.levels):
            raise RecipeError(f"fit_levels={self.fit_levels} must be among levels={self.levels}")
        if not set(self.seed_levels) <= set(self.levels):
            raise RecipeError(f"seed_levels={self.seed_levels} must be among levels={self.levels}")
        try:
            task = get_task(self.task, **self.task_args)
        except (ValueError, TypeError) as e:
            raise RecipeError(f"task {self.task!r} with task_args={self.task_args!r}: {e}") from e
        if self.seed_task_args:
            fixed = sorted(set(self.seed_task_args) & {"test_fraction", "solution_format", "source"})
            if fixed:
                raise RecipeError(f"seed_task_args sets {fixed}: the seed set must keep task_args' split and solution "
                                  "format (a different test_fraction would draw eval problems into it); set them in "
                                  "task_args")
            try:
                seed_task = get_task(self.task, **{**self.task_args, **self.seed_task_args})
                for level in self.seed_levels:
                    seed_task.level_task(level)
            except (ValueError, TypeError) as e:
                raise RecipeError(f"seed_task_args={self.seed_task_args!r}: {e}") from e
        for level in self.levels:
            try:
                task.level_task(level)
            except ValueError as e:
                raise RecipeError(f"levels: {e}") from e
        if self.lift:
            from search.lift import can_lift

            if not can_lift(task):
                raise RecipeError(f"lift: true needs a task that declares sub-problems (Task.sub_problem and "
                                  f"lift_solution); task {self.task!r} declares none: set lift: false")
            if self.learner == "rl":
                raise RecipeError("lift: true adds a search phase, and learner: rl has none; set lift: false or "
                                  "learner: sft")
        try:
            self.search_config  # noqa: B018 (builds and checks the section)
            self.lengths_config  # noqa: B018
        except (TypeError, ValueError) as e:
            raise RecipeError(str(e)) from e
        if self.learner == "rl":
            self.rl_config()
        if self.learner == "tree_dpo":
            self.dpo_config()
        if self.learner == "long_cot":
            self.long_cot_config()

    def rl_config(self, seed: int | None = None, output_dir: str = "rl-policy"):
        """``learning.rl.RLConfig`` of ``learner: rl`` (``roadmap.app.ladder_rl.build_rl_config``)."""
        from roadmap.app.ladder_rl import build_rl_config

        return build_rl_config(self.rl, learn_steps=self.learn_steps, lengths=self.lengths_config,
                               seed=self.seed if seed is None else seed, output_dir=output_dir)

    def dpo_config(self, seed: int | None = None, output_dir: str = "dpo-policy"):
        """``learning.tree_dpo.TreeDPOConfig`` of ``learner: tree_dpo`` (``roadmap.app.ladder_learners``)."""
        from roadmap.app.ladder_learners import build_dpo_config

        return build_dpo_config(self.dpo, learn_steps=self.learn_steps, batch_size=self.batch_size,
                                lengths=self.lengths_config, seed=self.seed if seed is None else seed,
                                output_dir=output_dir)

    def long_cot_config(self):
        """The ``long_cot:`` section of ``learner: long_cot`` (``roadmap.app.ladder_learners.LongCoTSection``)."""
        from roadmap.app.ladder_learners import build_long_cot_config

        return build_long_cot_config(self.long_cot)

    @property
    def lengths_config(self) -> Lengths:
        _unknown(self.lengths, {f.name for f in fields(Lengths)}, "lengths")
        return Lengths(**self.lengths)

    @property
    def search_config(self):
        from roadmap.app.train_search import TrainSearchConfig

        _unknown(self.search, {f.name for f in fields(TrainSearchConfig)} - {"lengths", "seed"}, "search")
        try:
            return TrainSearchConfig(**self.search, lengths=Lengths(**self.lengths))
        except ValueError as e:
            raise RecipeError(f"search: {e}") from e


def choose_levels(pass_rates: dict[int, float], band: tuple[float, float] | list, max_levels: int,
                  prefer: str = "easiest") -> list[int]:
    """Where to learn: the levels whose pass rate lies in ``band``, and the first level above every level the
    policy passes at ``band[0]`` or more (the next rung up, even at a pass rate below the band), at most
    ``max_levels`` of them: the easiest first (``prefer="easiest"``; the next rung comes last) or the hardest
    first. Levels above the band (mastered) are left out.
    """
    low, high = band
    edge = [lv for lv in sorted(pass_rates) if low <= pass_rates[lv] <= high]
    nxt = next_rung(pass_rates, band)
    if nxt is not None:
        edge.append(nxt)
    return sorted(set(edge), reverse=prefer == "hardest")[:max_levels]


def next_rung(pass_rates: dict[int, float], band: tuple[float, float] | list) -> int | None:
    """The first level above every level the policy passes at ``band[0]`` or more, when its own pass rate is below
    that (the rung the policy cannot yet stand on); None when there is none."""
    low = band[0]
    levels = sorted(pass_rates)
    reached = [lv for lv in levels if pass_rates[lv] >= low]
    above = [lv for lv in levels if not reached or lv > max(reached)]
    return above[0] if above and pass_rates[above[0]] < low else None


def mix_rows(new: list[dict[str, Any]], replay: list[dict[str, Any]], total: int, replay_share: float,
             seed: int) -> list[dict[str, Any]]:
    """``total`` training rows: ``replay_share`` of them drawn from ``replay``, the rest from ``new``, each pool
    cycled in a shuffled order (with no new data, or no replay, the other pool fills every row)."""
    rng = random.Random(seed)
    n_replay = round(total * replay_share) if new else total
    if not replay:
        n_replay = 0
    out = _cycle(replay, n_replay, rng) + _cycle(new, total - n_replay, rng)
    rng.shuffle(out)
    return out


def _cycle(pool: list, n: int, rng: random.Random) -> list:
    out: list = []
    while pool and len(out) < n:
        order = list(pool)
        rng.shuffle(order)
        out.extend(order[: n - len(out)])
    return out


def select_solution(candidates: list[str], correct: list[bool], answers: list[str | None], selection: str) -> str | None:
    """The one training text a searched problem gives under ``selection`` (see ``SELECTIONS``), or None."""
    texts = [t.strip() for t in candidates]
    if selection == "unfiltered":
        return next((t for t in texts if t), None)
    if selection == "majority":
        counts: dict[str, int] = {}
        for a in answers:
            if a is not None:
                counts[a] = counts.get(a, 0) + 1
        if not counts:
            return None
        best = max(counts, key=lambda a: counts[a])  # first reached among ties
        return next(t for t, a in zip(texts, answers) if a == best)
    right = [t for t, ok in zip(texts, correct) if ok and t]
    if not right:
        return None
    if selection == "verified":
        return right[0]
    return max(right, key=right.count)  # agreement: max keeps the first of equal counts
