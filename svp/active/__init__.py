"""Active learning with proxies (the SVP paper's other half): label a pool in rounds.

A random labelled pool starts each seed's run; each round trains a selector (a proxy, or
the target itself as the paper's baseline) on the pool, scores every training example
with ``svp score`` and labels the unlabelled examples it is least sure of, or a random
batch. The target is then trained from scratch on the pool of each round.

- ``rounds``: the plan: pool sizes per round, round seeds, the runs a config asks for,
  and the config checks that come before any job;
- ``pools``: the labelled-pool files and the stages that write them (the random start,
  the next batch by uncertainty or at random);
- ``job_inputs``: what each active-learning rule's ``svp`` command is given (params);
- ``cli``: ``svp active start`` and ``svp active next``, which the pool rules run.

Nothing here imports torch.
"""
