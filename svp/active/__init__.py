"""Active learning with proxies (the SVP paper's other half): label a pool in rounds.

A random labelled pool starts each seed's run; each round trains a selector (a proxy, or
the target itself as the paper's baseline) on the pool, scores every training example
with ``svp score`` and labels the unlabelled examples it is least sure of; or embeds
every example with the selector and labels by k-center greedy (core-set active
learning); or labels a random batch. The target is then trained from scratch on the
pool of each round.

- ``rounds``: the plan: pool sizes per round, round seeds, the runs a config asks for,
  and the config checks that come before any job;
- ``pools``: the labelled-pool files and the stages that write them (the random start,
  the next batch by uncertainty, at random, or by a chooser such as k-center's);
- ``embedding_batch``: the next batch by k-center greedy on the selector's embeddings
  (the one module here that imports torch);
- ``job_inputs``: what each active-learning rule's ``svp`` command is given (params);
- ``cli``: ``svp active start`` and ``svp active next``, which the pool rules run.

Nothing here but ``embedding_batch`` imports torch.
"""
