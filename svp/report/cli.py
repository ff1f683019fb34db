"""``svp report ...``: write the report's tables and figures (the report rules call it).

Sub-commands: ``runs`` (every target run with its end-to-end cost), ``tables`` (the
paper-form results table), ``summary-figures`` (error and time against fraction),
``learning-curves``, ``error-vs-time``, ``correlate`` (the paper's Figure 3), ``subsets``
(what each subset holds: class composition, proxy agreement and error; warnings),
``class-composition`` (its figure), ``subset-warnings`` (print the warnings again),
``verdict`` (which selection to trust at each fraction, chosen by validation error), and
for active learning ``active-tables`` (every round; error against labelled budget,
selection time and speed-up) and ``active-figures``.
"""

from __future__ import annotations

import argparse


def add_report_commands(svp_commands: argparse._SubParsersAction) -> None:
    """Add ``report`` to the ``svp`` command's sub-commands (svp.cli's one tree), each of
    its own sub-commands bound to the function that runs it."""
    report = svp_commands.add_parser("report", help="tables and figures of the report (see `svp report --help`)", description=__doc__)
    commands = report.add_subparsers(dest="report_command", required=True)

    runs = commands.add_parser("runs", help="one row per target run: test error and end-to-end seconds")
    runs.add_argument("--targets", nargs="+", required=True, help="target metrics.json files")
    runs.add_argument("--proxies", nargs="*", default=[], help="proxy metrics.json files")
    runs.add_argument("--scores", nargs="*", default=[], help="proxy score parquet files")
    runs.add_argument("--out", required=True)
    runs.set_defaults(func=_runs)

    tables = commands.add_parser("tables", help="the paper-form results table as CSV, Markdown and HTML")
    tables.add_argument("--summary", required=True, help="summary.csv")
    tables.add_argument("--config", required=True, help="the stored config.yaml")
    tables.add_argument("--csv", required=True)
    tables.add_argument("--markdown", required=True)
    tables.add_argument("--html", required=True)
    tables.add_argument("--proxies", nargs="*", default=[], help="proxy metrics.json files (the proxies' own test error)")
    tables.set_defaults(func=_tables)

    summary = commands.add_parser("summary-figures", help="error and end-to-end time against fraction")
    summary.add_argument("--summary", required=True, help="summary.csv")
    summary.add_argument("--error-out", required=True)
    summary.add_argument("--time-out", required=True)
    summary.set_defaults(func=_summary_figures)

    curves = commands.add_parser("learning-curves", help="training loss and test error per epoch of every run")
    curves.add_argument("--runs", nargs="+", required=True, help="metrics.json files (history.csv beside each)")
    curves.add_argument("--out", required=True)
    curves.set_defaults(func=_learning_curves)

    error_time = commands.add_parser("error-vs-time", help="test error against end-to-end time, one point per run")
    error_time.add_argument("--runs", required=True, help="the runs table (see `runs`)")
    error_time.add_argument("--out", required=True)
    error_time.set_defaults(func=_error_vs_time)

    correlate = commands.add_parser("correlate", help="correlation between the example orders of proxies, targets, random")
    correlate.add_argument("--metric", required=True)
    correlate.add_argument("--proxy-scores", nargs="+", required=True, help="score parquet files of the proxy runs")
    correlate.add_argument("--target-scores", nargs="*", default=[], help="score parquet files of full-data target runs")
    correlate.add_argument("--csv", required=True)
    correlate.add_argument("--figure", required=True)
    correlate.set_defaults(func=_correlate)

    subsets = commands.add_parser("subsets", help="what each subset holds against the full data set, with warnings")
    subsets.add_argument("--data", required=True, help="prepared data folder (training labels, class names)")
    subsets.add_argument("--subsets", nargs="+", required=True, help="subset parquet files (subsets/<name>/<fraction>.parquet)")
    subsets.add_argument("--ranks", nargs="*", default=[], help="ranks parquet files of the proxy selections")
    subsets.add_argument("--scores", nargs="*", default=[], help="proxy score parquet files")
    subsets.add_argument("--proxies", nargs="*", default=[], help="proxy metrics.json files")
    subsets.add_argument("--csv", required=True)
    subsets.add_argument("--markdown", required=True)
    subsets.add_argument("--html", required=True)
    subsets.set_defaults(func=_subsets)

    verdict = commands.add_parser("verdict", help="which selection to trust at each fraction, chosen by validation error")
    verdict.add_argument("--runs", required=True, help="the runs table (see `runs`)")
    verdict.add_argument("--data", required=True, help="prepared data folder (its manifest says whether a validation split was held out)")
    verdict.add_argument("--subsets", help="the subsets table (see `subsets`): class skew, examples the proxies get wrong")
    verdict.add_argument("--proxies", nargs="*", default=[], help="proxy metrics.json files (the proxies' validation error)")
    verdict.add_argument("--csv", required=True)
    verdict.add_argument("--markdown", required=True)
    verdict.add_argument("--html", required=True)
    verdict.add_argument("--text", required=True, help="the verdict as the end of a run prints it")
    verdict.set_defaults(func=_verdict)

    composition = commands.add_parser("class-composition", help="figure of each subset's class composition")
    composition.add_argument("--subsets", required=True, help="the subsets table (see `subsets`)")
    composition.add_argument("--out", required=True)
    composition.set_defaults(func=_class_composition)

    warnings = commands.add_parser("subset-warnings", help="print the subsets table's warnings (nothing if none)")
    warnings.add_argument("subsets", help="the subsets table (see `subsets`)")
    warnings.set_defaults(func=_subset_warnings)

    active = commands.add_parser("active-tables", help="active learning: every round's selection time; error against labelled budget")
    active.add_argument("--pools", nargs="+", required=True, help="each round's pool.parquet")
    active.add_argument("--selectors", nargs="*", default=[], help="each round's selector metrics.json")
    active.add_argument("--scores", nargs="*", default=[], help="each round's selector scores.parquet (kcenter rounds have none)")
    active.add_argument("--targets", nargs="+", required=True, help="metrics.json of the targets trained on the pools")
    active.add_argument("--rounds-out", required=True, help="the rounds table (CSV)")
    active.add_argument("--csv", required=True)
    active.add_argument("--markdown", required=True)
    active.add_argument("--html", required=True)
    active.set_defaults(func=_active_tables)

    active_figures = commands.add_parser("active-figures", help="active learning: error against budget, selection time per round")
    active_figures.add_argument("--rounds", required=True, help="the rounds table (see `active-tables`)")
    active_figures.add_argument("--targets", nargs="+", required=True, help="metrics.json of the targets trained on the pools")
    active_figures.add_argument("--error-out", required=True)
    active_figures.add_argument("--time-out", required=True)
    active_figures.set_defaults(func=_active_figures)


def _runs(args: argparse.Namespace) -> None:
    from svp.report.tables import write_run_table

    write_run_table(target_metrics=args.targets, proxy_metrics=args.proxies, score_files=args.scores, out=args.out)


def _tables(args: argparse.Namespace) -> None:
    from svp.report.tables import write_results_tables

    write_results_tables(
        summary_file=args.summary,
        config_file=args.config,
        csv_out=args.csv,
        markdown_out=args.markdown,
        html_out=args.html,
        proxy_metrics=args.proxies,
    )


def _summary_figures(args: argparse.Namespace) -> None:
    from svp.report.figures import write_summary_figures

    write_summary_figures(summary_file=args.summary, error_out=args.error_out, time_out=args.time_out)


def _learning_curves(args: argparse.Namespace) -> None:
    from svp.report.figures import write_learning_curves

    write_learning_curves(metrics_files=args.runs, out=args.out)


def _error_vs_time(args: argparse.Namespace) -> None:
    from svp.report.figures import write_error_vs_time

    write_error_vs_time(runs_file=args.runs, out=args.out)


def _correlate(args: argparse.Namespace) -> None:
    from svp.report.correlation import write_correlation

    write_correlation(
        metric=args.metric,
        proxy_score_files=args.proxy_scores,
        target_score_files=args.target_scores,
        csv_out=args.csv,
        figure_out=args.figure,
    )


def _subsets(args: argparse.Namespace) -> None:
    from svp.report.subset_tables import write_subset_tables

    write_subset_tables(
        data_dir=args.data,
        subset_files=args.subsets,
        rank_files=args.ranks,
        score_files=args.scores,
        proxy_metrics=args.proxies,
        csv_out=args.csv,
        markdown_out=args.markdown,
        html_out=args.html,
    )


def _verdict(args: argparse.Namespace) -> None:
    from svp.report.verdict import write_verdict

    write_verdict(
        runs_file=args.runs,
        data_dir=args.data,
        subsets_file=args.subsets,
        proxy_metrics=args.proxies,
        csv_out=args.csv,
        markdown_out=args.markdown,
        html_out=args.html,
        text_out=args.text,
    )


def _class_composition(args: argparse.Namespace) -> None:
    from svp.report.figures import write_class_composition

    write_class_composition(subsets_file=args.subsets, out=args.out)


def _subset_warnings(args: argparse.Namespace) -> None:
    from svp.report.subset_tables import format_warnings

    text = format_warnings(args.subsets)
    if text:
        print(text)


def _active_tables(args: argparse.Namespace) -> None:
    from svp.report.active import write_active_tables

    write_active_tables(
        pool_files=args.pools,
        selector_metrics=args.selectors,
        score_files=args.scores,
        target_metrics=args.targets,
        rounds_out=args.rounds_out,
        csv_out=args.csv,
        markdown_out=args.markdown,
        html_out=args.html,
    )


def _active_figures(args: argparse.Namespace) -> None:
    from svp.report.active import write_active_figures

    write_active_figures(rounds_file=args.rounds, target_metrics=args.targets, error_out=args.error_out, time_out=args.time_out)
