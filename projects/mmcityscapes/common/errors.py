"""The project's one error type, and the ``main`` wrapper every tool runs under."""
import sys
from typing import Callable


class UserError(Exception):
    """A bad input (a missing or corrupt file, a wrong config key, a busy work dir): the message
    names the file or key and fits on one line."""


def run_tool(main: Callable[[], object]) -> None:
    """Run a tool's ``main()``: a ``UserError`` ends it with ``error: <message>`` on stderr and
    exit status 2, as argparse ends a usage error; Ctrl-C where nothing listens for it (training
    does: it stops after the iteration with a checkpoint) ends it with one line and status 130;
    any other exception keeps its traceback."""
    try:
        main()
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted (Ctrl-C): nothing half-written is left under a final name', file=sys.stderr)
        sys.exit(130)
