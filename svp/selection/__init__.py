"""From proxy predictions to subsets: computing only (the report renders).

- ``uncertainty``: least confidence, margin, entropy and EL2N of predicted probabilities;
- ``methods``: the registry of selection methods (every name ``selection.metrics`` takes:
  what each needs of a trained model, its columns, how it scores), and the scores of
  those beyond uncertainty (forgetting events, GraNd, k-center greedy);
- ``ranking``: per-run ranks and their combination over proxy runs;
- ``orders``: the selection order (plain or class-balanced), subset sizes, random orders;
- ``coverage``: coverage-centric sampling (Zheng et al., 2023) as a nested order: the
  hardest share dropped, a seeded draw spread over equal-width score bins;
- ``subsets``: the rank and select stages, file in, file out;
- ``diagnostics``: what each subset holds (class shares, proxy agreement), stored with it
  (the report's tables of it: ``svp.report.subset_tables``);
- ``kcenter``: k-center greedy core-set order on embeddings (Sener and Savarese, 2018).

Nothing here imports torch when imported; ``kcenter`` imports it when it runs.
"""
