"""A progress line on stderr: redrawn in place on a terminal, one line per
step in a log, silent when quiet. stdout stays free for tables and JSON."""
import sys
import time


class Progress:
    def __init__(self, total, quiet=False, stream=None):
        self.total, self.done, self.quiet = total, 0, quiet
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.t0 = time.monotonic()

    def step(self, text):
        """Announce the step about to run."""
        if self.quiet:
            return
        width = 24
        filled = int(width * self.done / max(1, self.total))
        bar = "#" * filled + "." * (width - filled)
        line = f"[{bar}] {self.done + 1}/{self.total} {time.monotonic() - self.t0:5.0f}s {text}"
        if self.tty:
            self.stream.write("\r\x1b[2K" + line[:150])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def advance(self):
        self.done += 1

    def close(self):
        if not self.quiet and self.tty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
