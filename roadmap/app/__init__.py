"""The top floor: the commands, the loops and the benches that put the four components to work.

``roadmap.core`` is the ground floor (the shared vocabulary: policies, tasks, lengths, errors, shards);
``policy_init``, ``rewards`` and ``search`` stand on it, ``learning`` on them, and this package on all of
them. Nothing below imports from here (import-linter's layers contract in ``pyproject.toml``).

- ``cli``, ``cli_parser``, ``cli_checks``, ``cli_config``: the ``roadmap`` command;
- ``loop``, ``loop_config``, ``learn_launch``: the resumable search-and-learn loop of a recipe;
- ``ladder``, ``ladder_config``, ``ladder_learners``, ``ladder_rl``, ``ladder_report``: the self-improvement
  ladder;
- ``train_search``, ``evaluate``, ``bench``, ``actors``: sharded search, evaluation and the test-time bench,
  and what each Ray actor loads;
- ``quickstart``, ``scaling``, ``plugins``: the quickstart, sigmoid fits, user-registered extensions.
"""
