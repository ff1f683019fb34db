"""How an ``svp`` command ends when it fails: one line on stderr, never a bare traceback.

- A problem the user can fix (``svp.errors.SvpError``, a missing file, no permission,
  a full disk, no memory): the line names it and the fix; exit status 2.
- Ctrl-C: the line says what a rerun does; exit status 130, as a shell reports SIGINT.
- The reader of the output went away (``svp models | head -1``): nothing printed; exit
  status 141, as a shell reports SIGPIPE.
- Anything else is a bug in svp: the line says so and where the full traceback went;
  exit status 1. On a terminal the traceback goes to a file in the temporary folder;
  where stderr is a file (a Snakemake rule's log) or a pipe, it goes there, above the
  line, so that it stays with the job's log, on whichever machine ran the job.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

from svp.errors import SvpError
from svp.io import FULL_DEVICE

USER_ERROR = 2
BUG = 1
INTERRUPTED = 130
PIPE_CLOSED = 141  # as a shell reports SIGPIPE

# OS errors that mean a path given to svp is wrong, not that svp is, or that a wait ran out
# (svp.training.gpus: every GPU stayed busy): said as they are.
EXPECTED_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError, TimeoutError)


def run_command(
    prog: str, action: Callable[[], None], after_interrupt: Callable[[], str] | None = None
) -> int:
    """Run ``action``; return the exit status, having printed one line if it failed.

    ``after_interrupt`` says what a rerun does after Ctrl-C (by default: starts over).
    """
    try:
        action()
        sys.stdout.flush()  # here, so that a reader gone away (`svp models | head -1`) is seen below
    except BrokenPipeError:
        # The reader of our output stopped reading: nothing is wrong, say nothing. Output
        # still buffered goes nowhere, so that Python does not complain on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED
    except SvpError as error:
        # A rank of a run on several GPUs that failed: the launcher exits as that rank did.
        return _fail(prog, str(error), getattr(error, "exit_status", USER_ERROR))
    except EXPECTED_OS_ERRORS as error:
        return _fail(prog, _os_error_message(error), USER_ERROR)
    except MemoryError:
        return _fail(prog, "out of memory; use a smaller batch size or data set, or a machine with more memory", USER_ERROR)
    except KeyboardInterrupt:
        hint = after_interrupt() if after_interrupt else "rerun the command to start again"
        print(f"{prog}: interrupted; nothing partial was written; {hint}", file=sys.stderr, flush=True)
        return INTERRUPTED
    except Exception as error:  # noqa: BLE001  (a bug: reported as one, with its traceback kept)
        if isinstance(error, OSError) and error.errno in FULL_DEVICE:
            return _fail(prog, f"{_os_error_message(error)}; free some space and rerun", USER_ERROR)
        if isinstance(error, OSError) and error.errno == errno.EROFS:
            return _fail(prog, f"{_os_error_message(error)}; choose an output folder on a writable file system", USER_ERROR)
        if _is_device_out_of_memory(error):
            return _fail(prog, "the GPU ran out of memory; lower batch_size or eval_batch_size and rerun", USER_ERROR)
        return _fail(prog, _bug_message(error, _keep_traceback(prog)), BUG)
    return 0


def _fail(prog: str, message: str, status: int) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return status


def _os_error_message(error: OSError) -> str:
    """'No such file or directory: results/x.parquet', not Python's '[Errno 2] ...' form."""
    if error.filename is None:
        return error.strerror.lower() if error.strerror else str(error)
    names = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 else "")
    return f"{(error.strerror or str(error)).lower()}: {names}"


def _is_device_out_of_memory(error: Exception) -> bool:
    torch = sys.modules.get("torch")  # never imported here: only a command that used it can raise it
    out_of_memory = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return out_of_memory is not None and isinstance(error, out_of_memory)


def _keep_traceback(prog: str) -> str:
    """Write the traceback being handled where the user will find it; say where ('in <file>', 'above')."""
    text = traceback.format_exc()
    if not sys.stderr.isatty():
        print(text, end="", file=sys.stderr)
        return "above, in this log"
    name = f"svp-{prog.removeprefix('svp ').replace(' ', '-')}-{time.strftime('%Y%m%d-%H%M%S')}-"
    try:
        fd, path = tempfile.mkstemp(prefix=name, suffix=".traceback.txt")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    except OSError:  # nowhere to write it: the terminal is all that is left
        print(text, end="", file=sys.stderr)
        return "above"
    return f"in {path}"


def _bug_message(error: Exception, where: str) -> str:
    summary = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    return (
        f"unexpected {summary}. This is a bug in svp, not a problem with your input; "
        f"the full traceback is {where}: please report it with the traceback"
    )
