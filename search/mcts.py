"""Monte Carlo tree search over solution steps with PUCT: select, expand, evaluate, backpropagate.

The AlphaZero loop (Silver et al. 2017), with steps as actions, as in ReST-MCTS* (arXiv
2406.03816) and rStar-Math (arXiv 2501.04519):

1. Select: from the root, follow argmax of Q(c) + c_puct * P(c) * sqrt(N(parent)) / (1 + N(c)),
   where P is the policy's prior of the step (``search.expand``), until an unexpanded or
   terminal node. Children are evaluated when they are created, so every child has a Q.
2. Expand a non-terminal leaf into k sampled next steps (duplicates merged). With
   ``widen_below``, selection also stops at an expanded node whose children all score below
   it (their own evaluation) and samples k more children there (progressive widening): a step the policy gets wrong
   three times in four needs more than k tries, and a fixed k leaves MCTS only backtracking.
3. Evaluate each new child: the ``StepScorer``'s value of the partial solution (test time),
   the verifier's verdict on a policy rollout to a final answer (train time), or a mix. A
   terminal leaf that is selected again is judged directly (verifier when given, else scorer).
   Such a revisit samples nothing, so it does not use up the simulation budget (up to
   ``free_revisits`` × ``simulations`` of them): at budget N, MCTS samples N expansions of k
   steps, as beam search with N beams samples N steps per depth. Counting revisits, a sharp
   PRM made MCTS settle on its first answer and spend a third of beam's tokens.
4. Backpropagate: each evaluated child counts one visit of itself and of every node on the
   path to it (so a node's visits are the evaluations in its subtree).

Every simulation round advances all problems together: one batched rollout call, one batched
expansion call and one batched scorer call per round. The final answer follows the most
visited path (or the best-valued terminal node), and the whole tree is returned; candidates are
the terminal nodes (best first) followed by the distinct finished rollouts with the verifier's
verdict as score (train-time data for expert iteration). When the
budget runs out before the most visited path reaches an answer, the policy finishes that path
greedily (one extra sequence, counted in the usage) rather than falling back to a worse leaf.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from roadmap.core.errors import ConfigError
from roadmap.core.types import Problem, SearchResult, Tree, Usage
from search.expand import ExpandConfig, expand, new_tree, score_many, share_usage
from search.registry import MCTS_EVALUATIONS

__all__ = ["MCTSConfig", "mcts", "EVALUATIONS"]

#: leaf values: the scorer's, a verified rollout's, or both (the registry's list, spelled once)
EVALUATIONS = MCTS_EVALUATIONS


@dataclass
class MCTSConfig:
    """Knobs of MCTS."""

    simulations: int = field(default=16, metadata={
        "help": "Simulations that expand a node (select-expand-evaluate-backup) per problem; see free_revisits."})
    free_revisits: int = field(default=3, metadata={
        "help": "A selection that ends on a finished solution samples nothing: it is judged and backed up again "
                "without using up a simulation, up to this many times `simulations` such rounds (0: every "
                "selection counts, as in plain AlphaZero)."})
    k: int = field(default=4, metadata={"help": "Next steps sampled when a node is expanded."})
    c_puct: float = field(default=0.5, metadata={"help": "Exploration weight of the prior term."})
    evaluation: str = field(default="scorer", metadata={"help": "'scorer', 'rollout' (verifier) or 'both'."})
    rollout_weight: float = field(default=0.5, metadata={"help": "Weight of the rollout value under 'both'."})
    final: str = field(default="visits", metadata={"help": "Answer by most 'visits' path or best 'value' leaf."})
    widen_below: float | None = field(default=None, metadata={
        "help": "Progressive widening: when selection reaches an expanded node whose children all score below "
                "this (their own evaluation, not their subtree's mean), it samples k more children there "
                "instead of descending (None: never)."})
    max_children: int = field(default=16, metadata={"help": "Most children a node may gain by widening."})
    complete: bool = field(default=True, metadata={
        "help": "When the most visited path ends unfinished, let the policy finish it (greedy; counted in usage)."})
    expand: ExpandConfig = field(default_factory=ExpandConfig, metadata={
        "help": "Step sampling, and the search's length limits (expand.lengths: steps, step tokens, rollout tokens)."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})

    def __post_init__(self) -> None:
        if self.simulations < 1:
            raise ConfigError(f"simulations={self.simulations} must be at least 1")
        if self.k < 1:
            raise ConfigError(f"k={self.k} must be at least 1")
        if self.free_revisits < 0:
            raise ConfigError(f"free_revisits={self.free_revisits} must be >= 0")
        if self.evaluation not in EVALUATIONS:
            raise ConfigError(f"evaluation={self.evaluation!r} is unknown; use one of {EVALUATIONS}")
        if self.final not in ("visits", "value"):
            raise ConfigError(f"final={self.final!r} must be 'visits' or 'value'")
        if not 0.0 <= self.rollout_weight <= 1.0:
            raise ConfigError(f"rollout_weight={self.rollout_weight} must lie in [0, 1]")


def _select(tree: Tree, c_puct: float, widen_below: float | None = None, max_children: int = 16) -> list[int]:
    path = [0]
    node = tree.nodes[0]
    while (kids := tree.children(node.id)) and not node.terminal:
        if widen_below is not None and len(kids) < max_children and max(_own(c) for c in kids) < widen_below:
            break  # every child so far looks wrong: sample more here (progressive widening)
        fpu = node.value
        sqrt_n = math.sqrt(max(1, node.visits))

        def puct(c, fpu=fpu, sqrt_n=sqrt_n):
            q = c.value if c.visits else fpu
            return q + c_puct * c.prior * sqrt_n / (1 + c.visits)

        node = max(kids, key=puct)
        path.append(node.id)
    return path


def _own(node) -> float:
    """A node's own evaluation (its scorer value when it has one), not its subtree's mean."""
    return node.reward if node.reward is not None else node.value


def _most_visited_leaf(tree: Tree):
    node = tree.nodes[0]
    while (kids := tree.children(node.id)) and not node.terminal:
        node = max(kids, key=lambda c: (c.visits, c.value))
    return node


def _final(tree: Tree, how: str) -> int | None:
    terminals = [n for n in tree.nodes if n.terminal]
    if how == "visits":
        node = _most_visited_leaf(tree)
        if node.terminal:
            return node.id
    if not terminals:
        return None
    return max(terminals, key=lambda n: (n.value if n.visits else (n.reward or 0.0), n.visits)).id


def mcts(
    policy, task, problems: Sequence[Problem], scorer=None, config: MCTSConfig | None = None, *, verifier=None,
) -> list[SearchResult]:
    """Run ``config.simulations`` expanding PUCT simulations per problem; return answers, candidates and trees.

    Args:
        policy: samples next steps (and rollouts).
        task: prompts, step delimiter, answer extraction.
        problems: the problems, searched together.
        scorer: ``StepScorer`` for leaf values (needed unless ``evaluation="rollout"``).
        verifier: ``StepScorer`` that judges finished solutions (e.g. ``rewards.VerifierScorer``);
            needed for rollouts, and used on terminal leaves when given (train time).
    """
    config = config or MCTSConfig()
    if config.evaluation != "rollout" and scorer is None:
        raise ConfigError(f"evaluation={config.evaluation!r} needs a scorer; pass scorer=... or use 'rollout'")
    if config.evaluation != "scorer" and verifier is None:
        raise ConfigError(f"evaluation={config.evaluation!r} needs a verifier to judge rollouts; pass verifier=...")
    judge = verifier if verifier is not None else scorer
    trees = [new_tree(task, p) for p in problems]
    usage = [Usage() for _ in problems]
    # rollout text -> (verifier's verdict, cut by lengths.rollout_tokens)
    rollouts: list[dict[str, tuple[float, bool]]] = [{} for _ in problems]
    expanded = [0] * len(problems)
    free_left = [config.free_revisits * config.simulations] * len(problems)
    for sim in itertools.count():  # rounds: every live problem selects, then expands or re-judges
        live = [i for i in range(len(problems)) if expanded[i] < config.simulations]
        if not live:
            break
        paths = {i: _select(trees[i], config.c_puct, config.widen_below, config.max_children) for i in live}
        leaves = {i: trees[i].nodes[paths[i][-1]] for i in live}
        # backups[i]: values to back up along path i (one per evaluated node)
        backups: dict[int, list[float]] = {i: [] for i in live}

        # a terminal leaf is judged again (verifier at train time, else the scorer); it samples
        # nothing, so it uses up a free revisit while any are left, else a simulation
        term = [i for i in live if leaves[i].terminal]
        if term:
            judged = score_many(judge, [problems[i] for i in term], [[trees[i].text(leaves[i].id)] for i in term])
            for i, s in zip(term, judged):
                leaves[i].reward = s[0]
                backups[i].append(s[0])
                if free_left[i] > 0:
                    free_left[i] -= 1
                else:
                    expanded[i] += 1

        open_ = [i for i in live if not leaves[i].terminal]
        kids, spent = expand(policy, task, [(trees[i], leaves[i].id) for i in open_], config.k, config.expand,
                             seed=config.seed + 1_000_003 * (sim + 1))
        width = dict(zip(open_, (len(x) for x in kids)))
        share_usage(usage, spent, [width.get(i, 0) for i in range(len(problems))])
        new_nodes = [(i, c) for i, new in zip(open_, kids) for c in new]
        values = _evaluate(policy, task, problems, trees, new_nodes, scorer, verifier, config, sim, usage, rollouts)
        for (i, c), v in zip(new_nodes, values):
            node = trees[i].nodes[c]
            node.visits, node.value_sum = 1, v
            backups[i].append(v)
        for i, new in zip(open_, kids):
            siblings = trees[i].children(leaves[i].id)
            if len(siblings) > len(new):  # widened: priors of old and new children are renormalised together
                total = sum(sib.prior for sib in siblings) or 1.0
                for sib in siblings:
                    sib.prior /= total
            expanded[i] += 1

        for i in live:
            for node_id in paths[i]:
                node = trees[i].nodes[node_id]
                node.visits += len(backups[i])
                node.value_sum += sum(backups[i])

    picks = [_final(t, config.final) for t in trees]
    if config.complete and config.final == "visits":
        _complete(policy, task, trees, picks, config, usage)
    results = []
    for i, p in enumerate(problems):
        tree = trees[i]
        pick = picks[i]
        terminals = sorted((n for n in tree.nodes if n.terminal), key=lambda n: (-n.visits, -n.value))
        if pick is not None:
            terminals.sort(key=lambda n: n.id != pick)
        candidates = [tree.text(n.id) for n in terminals]
        scores = [n.value if n.visits else (n.reward or 0.0) for n in terminals]
        truncated = sum(n.truncated for n in terminals)
        seen = set(candidates)
        for text, (verdict, cut) in rollouts[i].items():  # finished rollouts are solutions too (train-time data)
            if text not in seen:
                seen.add(text)
                candidates.append(text)
                scores.append(verdict)
                truncated += cut
        results.append(SearchResult(
            problem_id=p.id, answer=tree.nodes[pick].answer if pick is not None else None,
            candidates=candidates, tree=tree, usage=usage[i], scores=scores, truncated=truncated,
        ))
    return results


def _complete(policy, task, trees, picks, config: MCTSConfig, usage) -> None:
    """Finish, greedily and in one batched call, every most-visited path that ended unfinished.

    The finished text becomes a terminal child of the path's leaf and the pick of its tree.
    """
    todo = []
    for i, tree in enumerate(trees):
        leaf = _most_visited_leaf(tree)
        if not leaf.terminal and leaf.id > 0:
            todo.append((i, leaf))
    if not todo:
        return
    before = policy.usage.copy()
    outs = policy.sample([trees[i].prompt + trees[i].text(leaf.id) for i, leaf in todo], n=1,
                         max_new_tokens=config.expand.lengths.rollout_tokens, temperature=0.0, seed=config.seed)
    counts = [0] * len(trees)
    for (i, leaf), out in zip(todo, outs):
        c = out[0]
        node = trees[i].add(leaf.id, c.text, logprob=c.logprob, terminal=True, truncated=c.truncated)
        node.answer = task.extract_answer(trees[i].text(node.id))
        picks[i] = node.id
        counts[i] = 1
    share_usage(usage, policy.usage - before, counts)


def _evaluate(policy, task, problems, trees, nodes, scorer, verifier, config: MCTSConfig, sim: int, usage,
              rollouts: list[dict[str, tuple[float, bool]]]):
    """Values of freshly expanded nodes: scorer value, verified rollout, or their mix.

    Scores are also stored as each node's ``reward``. Terminal nodes need no rollout: the
    verifier judges them as they are. Rollouts, their verdicts and whether ``rollout_tokens`` cut
    them go to ``rollouts``.
    """
    if not nodes:
        return []
    by_problem: dict[int, list[int]] = {}
    for k, (i, _) in enumerate(nodes):
        by_problem.setdefault(i, []).append(k)
    order = sorted(by_problem)
    values = [0.0] * len(nodes)
    if scorer is not None:
        scored = score_many(scorer, [problems[i] for i in order],
                            [[trees[i].text(nodes[k][1]) for k in by_problem[i]] for i in order])
        for i, s in zip(order, scored):
            for k, x in zip(by_problem[i], s):
                trees[i].nodes[nodes[k][1]].reward = x
                values[k] = x
    if config.evaluation == "scorer":
        return values
    texts = [trees[i].text(c) for i, c in nodes]
    open_k = [k for k, (i, c) in enumerate(nodes) if not trees[i].nodes[c].terminal]
    cut: dict[int, bool] = {}
    if open_k:
        before = policy.usage.copy()
        outs = policy.sample(
            [trees[nodes[k][0]].prompt + texts[k] for k in open_k], n=1,
            max_new_tokens=config.expand.lengths.rollout_tokens,
            temperature=config.expand.temperature, seed=config.seed + 7_777 * (sim + 1),
        )
        for k, o in zip(open_k, outs):
            texts[k] += o[0].text
            cut[k] = o[0].truncated
        counts = [0] * len(problems)
        for k in open_k:
            counts[nodes[k][0]] += 1
        share_usage(usage, policy.usage - before, counts)
    judged = score_many(verifier, [problems[i] for i in order], [[texts[k] for k in by_problem[i]] for i in order])
    w = 1.0 if config.evaluation == "rollout" else config.rollout_weight
    rolled = set(open_k)
    for i, s in zip(order, judged):
        for k, x in zip(by_problem[i], s):
            values[k] = w * x + (1 - w) * values[k]
            if k in rolled:
                rollouts[i].setdefault(texts[k], (x, cut[k]))
    return values
