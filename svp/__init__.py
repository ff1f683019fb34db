"""svp: Selection via Proxy (Coleman et al., ICLR 2020) as a Snakemake workflow.

The package holds all the logic; the Snakemake rules in ``workflow/`` only wire files
together and call the ``svp`` command line (``svp.cli``). Its parts:

- ``data``: data sets, prepared once into one checked on-disk form;
- ``models``: model names and specs (no torch), and the networks behind them;
- ``training``: the torch training loop, resumable checkpoints, GPU assignment;
- ``selection``: uncertainty scores, rank combination, selection orders and subsets;
- ``active``: active learning with proxies: labelled pools grown round by round;
- ``report``: the summary, tables, figures and correlations of a finished run;
- ``stages``: training and scoring, file in, file out; ``config`` and ``plan``: what a
  config asks for; ``errors`` and ``command_errors``: what a user is told when it fails.
"""

# The version of the outputs, a params entry of every rule: bump it when a change makes a
# stage write different outputs for the same config and seed (README, "Caching ...").
__version__ = "0.3.0"  # 0.3.0: uncertainty metrics exact on confident examples; history.csv gains steps, metrics.json training_length, steps and validation_error
