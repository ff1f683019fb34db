"""The report: tables, figures and the correlation of orders, from the files the runs wrote.

- ``summary``: one row per target run, with end-to-end times and speed-ups;
- ``render``: the one Markdown and HTML table renderer, and the page around the tables;
- ``tables``: the results and runs tables (CSV, Markdown, HTML);
- ``subset_tables``: what each subset holds (``svp.selection.diagnostics``), as CSV,
  Markdown and HTML, and the warnings a run ends with;
- ``figures``: error and time against fraction, learning curves, class composition;
- ``correlation``: how alike proxies and targets rank the examples (the paper's Figure 3);
- ``verdict``: for each fraction, which selection to trust, chosen by validation error;
- ``active``: the active-learning tables and figures (error against labelled budget,
  selection time per round, the proxy's speed-up over the target as selector);
- ``cli``: ``svp report ...``, which the report rules run.

Nothing here imports torch.
"""
