"""The ``svp`` command: run any stage of the workflow by hand (the Snakemake rules call it too).

One argparse tree: each sub-command's parser is bound to the function that runs it
(``set_defaults(func=...)``); ``svp report ...`` (``svp.report.cli``) and ``svp active ...``
(``svp.active.cli``) are nested sub-parsers of the same tree. Each function imports its
stage when it runs, so that ``svp check-config``, ``svp models`` and ``svp datasets``
answer without loading torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from svp.active.cli import add_active_commands
from svp.command_errors import run_command
from svp.report.cli import add_report_commands


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text[:80]}") from None


def _json_object(text: str) -> dict:
    value = _json(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object ({{...}}), got: {text[:80]}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# torch and NumPy both take seeds 0 .. 2**64 - 1.
MAX_SEED = 2**64 - 1


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in 0..2**64-1, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 1.0:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--info", type=_json_object, default={}, help="JSON facts about the run stored with its outputs")
    parser.add_argument("--threads", type=_positive_int, default=None, help="CPU threads for torch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svp", description=__doc__.split("\n\n")[0])  # its first paragraph
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check-config", help="validate a config file and print it with defaults filled in")
    check.add_argument("config")
    check.set_defaults(func=_check_config)

    commands.add_parser("models", help="list the registered models").set_defaults(func=_list_models)
    commands.add_parser("datasets", help="list the registered data sets").set_defaults(func=_list_datasets)

    prepare = commands.add_parser("prepare", help="download/read a data set into train.npz, test.npz, manifest.json")
    prepare.add_argument("--dataset", type=_json_object, required=True, help="the config's dataset mapping, as JSON")
    prepare.add_argument("--out-dir", required=True)
    prepare.set_defaults(func=_prepare)

    train = commands.add_parser("train", help="train a model on the prepared data or a subset of it")
    train.add_argument("--model", required=True)
    train.add_argument("--training", type=_json_object, default={}, help="training settings, as JSON")
    train.add_argument("--seed", type=_seed, required=True)
    train.add_argument("--data", required=True, help="prepared data folder")
    train.add_argument("--subset", help="parquet file of example indices to train on (default: all)")
    train.add_argument("--model-out", required=True)
    train.add_argument("--history-out", required=True)
    train.add_argument("--metrics-out", required=True)
    train.add_argument(
        "--processes", type=_positive_int, default=None,
        help="train on this many GPUs of this machine, one process each, started by torchrun "
        "(DistributedDataParallel; default: one process, or as many as torchrun started)",
    )
    _add_run_options(train)
    train.set_defaults(func=_train, after_interrupt=_after_interrupted_training)

    score = commands.add_parser("score", help="score every training example's uncertainty with a trained model")
    score.add_argument("--checkpoint", required=True)
    score.add_argument("--data", required=True)
    score.add_argument("--out", required=True)
    score.add_argument("--batch-size", type=_positive_int, default=1024)
    _add_run_options(score)
    score.set_defaults(func=_score)

    method = commands.add_parser(
        "score-method", help="score every training example by forgetting events, GraNd or k-center greedy"
    )
    # The registry's methods with a score file of their own (svp.selection.methods.METHODS,
    # which a test checks this against): written out, so `svp --help` needs no numpy.
    method.add_argument("--method", required=True, choices=["forgetting", "grand", "kcenter"])
    method.add_argument("--checkpoint", required=True)
    method.add_argument("--data", required=True)
    method.add_argument("--out", required=True)
    method.add_argument("--batch-size", type=_positive_int, default=1024)
    method.add_argument(
        "--kcenter-fraction", type=_fraction, default=1.0, help="share of the examples k-center greedy orders (default: all)"
    )
    _add_run_options(method)
    method.set_defaults(func=_score_method)

    rank = commands.add_parser("rank", help="rank examples by a metric and combine the ranks of several runs")
    rank.add_argument("scores", nargs="+", help="score parquet files, one per proxy run")
    rank.add_argument("--metric", required=True)
    rank.add_argument("--out", required=True)
    rank.add_argument("--info", type=_json_object, default={})
    rank.set_defaults(func=_rank)

    select = commands.add_parser("select", help="write the subset of one fraction, in selection order")
    select.add_argument("--fraction", type=_fraction, required=True)
    select.add_argument("--out", required=True)
    select.add_argument("--class-balanced", action="store_true")
    select.add_argument("--keep", default="hardest", help="with --ranks: hardest (default), easiest, middle<p> (e.g. middle0.1) or coverage<b>bins<k>[seed<s>] (e.g. coverage0.1bins50)")
    source = select.add_mutually_exclusive_group(required=True)
    source.add_argument("--ranks", help="combined ranks parquet (proxy selection)")
    source.add_argument("--random-seed", type=_seed, help="seed of a random selection")
    select.add_argument("--data", help="prepared data folder: the labels of a random selection; with --ranks, checked against them")
    select.add_argument("--info", type=_json_object, default={})
    select.set_defaults(func=_select)

    summarize = commands.add_parser("summarize", help="summarise target runs into a CSV table")
    summarize.add_argument("--targets", nargs="+", required=True, help="target metrics.json files")
    summarize.add_argument("--proxies", nargs="*", default=[], help="proxy metrics.json files")
    summarize.add_argument("--scores", nargs="*", default=[], help="score parquet files")
    summarize.add_argument("--out", required=True)
    summarize.set_defaults(func=_summarize)

    show = commands.add_parser("show-summary", help="print a summary.csv as a table")
    show.add_argument("summary")
    show.set_defaults(func=_show_summary)

    add_report_commands(commands)
    add_active_commands(commands, fraction=_fraction, seed=_seed, json_object=_json_object, positive_int=_positive_int)

    store = commands.add_parser("store-config", help="write the resolved config (JSON) as YAML")
    store.add_argument("--config", type=_json_object, required=True)
    store.add_argument("--out", required=True)
    store.set_defaults(func=_store_config)
    return parser


def _check_config(args: argparse.Namespace) -> None:
    from svp.config import load_config

    print(yaml.safe_dump(load_config(args.config), sort_keys=False), end="")


def _list_models(args: argparse.Namespace) -> None:
    from svp.models.specs import TORCHVISION_PREFIX, list_models

    print("\n".join(list_models()))
    # On stderr, so that stdout stays one name a line; listing torchvision's would load torch.
    print(f"and {TORCHVISION_PREFIX}<name>: any torchvision.models classifier, e.g. {TORCHVISION_PREFIX}resnet50", file=sys.stderr)


def _list_datasets(args: argparse.Namespace) -> None:
    from svp.data import list_datasets

    print("\n".join(list_datasets()))


def _prepare(args: argparse.Namespace) -> None:
    from svp.config import check_prepare_options
    from svp.data import prepare_dataset

    check_prepare_options(args.dataset)  # a key its data set would ignore, refused as in a config
    manifest = prepare_dataset(args.dataset, args.out_dir)
    print(f"prepared {manifest['name']}: {manifest['n_train']:,} training and {manifest['n_test']:,} test examples")


def _train(args: argparse.Namespace) -> None:
    from svp.training import distributed
    from svp.training.gpus import assign_gpu

    ranks = distributed.from_environment()
    if args.processes and args.processes > 1 and not ranks.launched:
        # This process only starts the ranks (svp train again, under torchrun) and waits for them.
        from svp.stages import check_launch

        check_launch(args.model, args.training, args.processes)
        distributed.check_devices(args.processes)
        try:
            distributed.launch(args.argv, args.processes, args.threads)
        except distributed.RankFailed as failure:
            raise distributed.RankFailed(f"{failure}; {_after_interrupted_training(args)}", failure.exit_status) from None
        return
    distributed.check_world(ranks, args.processes)
    if ranks.launched:
        distributed.die_with_launcher()
    assign_gpu()  # before anything starts CUDA; each rank claims a GPU of its own
    from svp.stages import train_run

    with distributed.process_group(ranks):
        train_run(
            model_name=args.model,
            training=args.training,
            seed=args.seed,
            data_dir=args.data,
            subset=args.subset,
            model_out=args.model_out,
            history_out=args.history_out,
            metrics_out=args.metrics_out,
            run_info=args.info,
            threads=distributed.threads_per_rank(args.threads, ranks),
            ranks=ranks,
        )


def _after_interrupted_training(args: argparse.Namespace) -> str:
    """What a rerun of an interrupted ``svp train`` does."""
    from svp.stages import RESUME_FILE

    resume = Path(args.model_out).with_name(RESUME_FILE)
    if resume.exists():
        return f"rerun the same command to resume after the last finished epoch, saved in {resume}"
    return "no epoch had finished, so a rerun of the same command starts from the beginning"


def _score(args: argparse.Namespace) -> None:
    from svp.training.gpus import assign_gpu

    assign_gpu()  # before anything starts CUDA
    from svp.stages import score_run

    score_run(
        checkpoint=args.checkpoint,
        data_dir=args.data,
        scores_out=args.out,
        batch_size=args.batch_size,
        run_info=args.info,
        threads=args.threads,
    )


def _score_method(args: argparse.Namespace) -> None:
    from svp.training.gpus import assign_gpu

    assign_gpu()  # before anything starts CUDA
    from svp.stages import score_method_run

    score_method_run(
        method=args.method,
        checkpoint=args.checkpoint,
        data_dir=args.data,
        scores_out=args.out,
        batch_size=args.batch_size,
        kcenter_fraction=args.kcenter_fraction,
        run_info=args.info,
        threads=args.threads,
    )


def _rank(args: argparse.Namespace) -> None:
    from svp.selection.subsets import rank_runs

    rank_runs(score_files=args.scores, metric=args.metric, ranks_out=args.out, run_info=args.info)


def _select(args: argparse.Namespace) -> None:
    from svp.selection.subsets import select_subset

    select_subset(
        fraction=args.fraction,
        subset_out=args.out,
        class_balanced=args.class_balanced,
        keep=args.keep,
        ranks_file=args.ranks,
        data_dir=args.data,
        random_seed=args.random_seed,
        run_info=args.info,
    )


def _summarize(args: argparse.Namespace) -> None:
    from svp.report import summary

    table = summary.summarize(
        summary.load_runs(args.targets, "target"),
        summary.load_runs(args.proxies, "proxy"),
        summary.load_scoring(args.scores),
    )
    summary.write_summary(table, args.out)
    print(summary.format_table(table))


def _show_summary(args: argparse.Namespace) -> None:
    from svp.stage_files import read_table
    from svp.report.summary import format_table

    print(format_table(read_table(args.summary, "summary")))


def _store_config(args: argparse.Namespace) -> None:
    from svp.io import atomic_path

    with atomic_path(args.out) as tmp:
        tmp.write_text(yaml.safe_dump(args.config, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # `svp train --processes N` starts its ranks with the same arguments
    # Only `svp select` has --random-seed; argparse cannot say that it needs --data.
    if getattr(args, "random_seed", None) is not None and not args.data:
        parser.error("--random-seed needs --data (the prepared data folder, for the labels)")
    # The command's name in its messages: `svp train`, `svp report tables`; a rank of a run on
    # several GPUs adds which it is: `svp train [rank 1 of 2]`.
    prog = " ".join(
        ["svp", args.command, *filter(None, [getattr(args, "report_command", None), getattr(args, "active_command", None)])]
    )
    if args.command == "train" and os.environ.get("WORLD_SIZE", "1") != "1" and "RANK" in os.environ:
        prog += f" [rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}]"
    after_interrupt = getattr(args, "after_interrupt", None)
    return run_command(
        prog, lambda: args.func(args), (lambda: after_interrupt(args)) if after_interrupt else None
    )


if __name__ == "__main__":
    sys.exit(main())
