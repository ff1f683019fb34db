"""``svp active ...``: the active-learning stages that write labelled pools (the rules call them).

Sub-commands: ``start`` (round 0: a random labelled pool) and ``next`` (one round: the
pool before it plus the next batch, by a selector's uncertainty scores, by k-center
greedy on its embeddings, or at random). The selector's training and scoring are
``svp train`` and ``svp score`` themselves; ``next --checkpoint`` embeds with the model.
"""

from __future__ import annotations

import argparse


def add_active_commands(svp_commands: argparse._SubParsersAction, *, fraction, seed, json_object, positive_int) -> None:
    """Add ``active`` to the ``svp`` command's sub-commands (svp.cli's one tree); ``fraction``,
    ``seed``, ``json_object`` and ``positive_int`` are svp.cli's argument types."""
    active = svp_commands.add_parser("active", help="active learning: write labelled pools (see `svp active --help`)", description=__doc__)
    commands = active.add_subparsers(dest="active_command", required=True)

    start = commands.add_parser("start", help="round 0: a random labelled pool of a fraction of the training set")
    start.add_argument("--data", required=True, help="prepared data folder (the training labels)")
    start.add_argument("--fraction", type=fraction, required=True, help="share of the training set to label")
    start.add_argument("--random-seed", type=seed, required=True)
    start.add_argument("--out", required=True, help="the pool's parquet file")
    start.add_argument("--info", type=json_object, default={}, help="JSON facts stored with the pool")
    start.set_defaults(func=_start)

    nxt = commands.add_parser("next", help="one round: the pool before it plus the examples that bring it to a budget")
    nxt.add_argument("--pool", required=True, help="the labelled pool of the round before")
    nxt.add_argument("--data", required=True, help="prepared data folder (the training labels)")
    nxt.add_argument("--budget", type=fraction, required=True, help="share of the training set labelled after this round")
    nxt.add_argument("--round", type=int, required=True, help="this round's number (1 after the random start)")
    source = nxt.add_mutually_exclusive_group(required=True)
    source.add_argument("--scores", help="the selector's score file (`svp score`): label the most uncertain")
    source.add_argument(
        "--checkpoint", help="the selector's model.pt (`svp train`): label by k-center greedy on its embeddings"
    )
    source.add_argument("--random-seed", type=seed, help="label a random batch drawn with this seed")
    nxt.add_argument("--strategy", help="with --scores: least_confidence, margin or entropy; with --checkpoint: kcenter")
    nxt.add_argument("--batch-size", type=positive_int, help="with --checkpoint: examples embedded at once (default 1024)")
    nxt.add_argument("--threads", type=positive_int, help="with --checkpoint: CPU threads for torch")
    nxt.add_argument("--out", required=True, help="this round's pool (parquet)")
    nxt.add_argument("--info", type=json_object, default={}, help="JSON facts stored with the pool")
    nxt.set_defaults(func=_next)


def _start(args: argparse.Namespace) -> None:
    from svp.active.pools import start_pool

    start_pool(data_dir=args.data, fraction=args.fraction, random_seed=args.random_seed, pool_out=args.out, run_info=args.info)


def _next(args: argparse.Namespace) -> None:
    from svp.active.pools import next_batch
    from svp.active.rounds import EMBEDDING_STRATEGIES, UNCERTAINTY_STRATEGIES
    from svp.errors import ConfigError

    if args.scores is not None and args.strategy not in UNCERTAINTY_STRATEGIES:
        raise ConfigError(f"--scores needs --strategy, one of {', '.join(UNCERTAINTY_STRATEGIES)} (got {args.strategy!r})")
    if args.checkpoint is not None and args.strategy not in EMBEDDING_STRATEGIES:
        raise ConfigError(f"--checkpoint needs --strategy, one of {', '.join(EMBEDDING_STRATEGIES)} (got {args.strategy!r})")
    if args.random_seed is not None and args.strategy is not None:
        raise ConfigError("--strategy goes with --scores or --checkpoint; a random batch (--random-seed) has none")
    if args.checkpoint is None and (args.batch_size is not None or args.threads is not None):
        raise ConfigError("--batch-size and --threads go with --checkpoint: only embedding runs a model")
    if args.round < 1:
        raise ConfigError(f"--round must be at least 1 (round 0 is `svp active start`), got {args.round}")
    if args.checkpoint is not None:
        from svp.active.embedding_batch import kcenter_next_batch  # imports torch

        kcenter_next_batch(
            checkpoint=args.checkpoint,
            pool_file=args.pool,
            data_dir=args.data,
            budget=args.budget,
            round_=args.round,
            pool_out=args.out,
            batch_size=args.batch_size or 1024,
            run_info=args.info,
            threads=args.threads,
        )
        return
    next_batch(
        pool_file=args.pool,
        data_dir=args.data,
        budget=args.budget,
        round_=args.round,
        pool_out=args.out,
        scores_file=args.scores,
        strategy=args.strategy,
        random_seed=args.random_seed,
        run_info=args.info,
    )
