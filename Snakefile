# Selection via Proxy (Coleman et al., ICLR 2020): train cheap proxies, rank every
# training example by the proxies' uncertainty, train the target on the top fraction.
# Run: snakemake --cores all --resources gpu=1   (see README.md)

from snakemake.utils import min_version

from svp.config import ConfigError, check_config_files

min_version("9.0")

# Snakemake has already read any --configfile (running a YTE template's Python); svp
# reads each config file again, strictly (duplicate keys, yes/no booleans, YTE refused),
# before the default below is read and before any job runs.
try:
    check_config_files(workflow.config_settings.configfiles or ["config/config.yaml"])
except ConfigError as error:
    raise WorkflowError(str(error)) from None

# config/config.yaml unless --configfile names another, which then replaces it rather
# than being merged into it (merging would mix in the default's proxies and targets).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/report_common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/proxy.smk"
include: "workflow/rules/selection.smk"
include: "workflow/rules/target.smk"
include: "workflow/rules/budget.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/active_common.smk"
include: "workflow/rules/active.smk"


rule all:
    default_target: True
    input:
        rules.summarize.output.summary,
        rules.tabulate_results.output,
        rules.plot_summary.output,
        rules.plot_error_vs_time.output,
        rules.plot_learning_curves.output,
        correlation_files(),
        subset_report_files(),
        verdict_files(),
        active_learning_files(),
