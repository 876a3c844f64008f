"""Search: best-of-N, voting, step beam search, DVTS and MCTS over a Policy (roadmap component 3)."""

from search.best_of_n import majority_vote

__all__ = ["majority_vote"]
