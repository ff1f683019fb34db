"""The errors svp raises for a user to fix: each message names the problem and its fix.

The command line turns these, and only these, into one-line messages; anything else is
a bug in svp and is reported as one.
"""


class SvpError(Exception):
    """A problem the user can fix: bad config, data, stage input or environment."""


class ConfigError(SvpError, ValueError):
    """A config that cannot run; the message names the key and what is allowed."""


class DataError(SvpError):
    """A problem with a data set's config or files; the message says how to fix it."""


class StageInputError(SvpError):
    """A stage's input file (scores, ranks, subsets, checkpoint, metrics) that cannot be used."""


class OutputError(SvpError):
    """An output that cannot be written (a file in the way, no permission, disk full)."""
