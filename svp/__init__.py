"""svp: Selection via Proxy (Coleman et al., ICLR 2020) as a Snakemake workflow.

The package holds all the logic; the Snakemake rules in ``workflow/`` only wire
files together and call the ``svp`` command line (``svp.cli``).
"""

__version__ = "0.1.0"
