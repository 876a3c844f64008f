"""Learning: policy updates on searched data (expert iteration, tree-DPO, GRPO/CISPO), roadmap component 4.

Thin for now: the Learning issue fills it.
"""

__all__: list[str] = []
