"""Ctrl-C during a measuring command: keep what was measured, say so."""
import contextlib
import sys

from ..measure import trust


@contextlib.contextmanager
def keep_rows_on_interrupt(command, writer, progress):
    """On KeyboardInterrupt mark the run file interrupted (its finished rows
    are already on disk), print where it is, and let main() exit with 130."""
    try:
        yield
    except KeyboardInterrupt:
        progress.close()
        trust.attach_verdict(writer.run, command)
        writer.finish("interrupted")
        print(f"bnnbench {command}: interrupted; kept {len(writer.run['rows'])} finished rows "
              f"in {writer.path}", file=sys.stderr)
        raise
