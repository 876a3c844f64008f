"""Rewards: verifiers, outcome and process reward models, reward shaping (roadmap component 2).

Thin for now: the Rewards issue fills it (verifier, automatic step labels, PRM/ORM, shaping).
"""

__all__: list[str] = []
