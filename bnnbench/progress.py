"""A progress line on stderr: redrawn in place on a terminal, one line per
step in a log, silent when quiet (warnings still print). stdout stays free
for tables and JSON.

A step is announced when it starts (its position counts steps started, so
a log says which row each line is about) and counted done when its row is
written, which for the sweep is after its whole shape has been timed."""
import sys
import time


class Progress:
    def __init__(self, total, quiet=False, stream=None):
        self.total, self.done, self.started, self.quiet = total, 0, 0, quiet
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.t0 = time.monotonic()

    def _bar(self):
        width = 24
        filled = int(width * self.done / max(1, self.total))
        return "#" * filled + "." * (width - filled)

    def _write(self, line):
        if self.tty:
            self.stream.write("\r\x1b[2K" + line[:150])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def step(self, text):
        """Announce the next step."""
        self.started += 1
        if not self.quiet:
            self._write(f"[{self._bar()}] {min(self.started, self.total)}/{self.total} "
                        f"{time.monotonic() - self.t0:5.0f}s {text}")

    def note(self, text):
        """A phase that is not a step of its own (timing a shape's rows)."""
        if not self.quiet:
            self._write(f"[{self._bar()}] {self.done}/{self.total} done "
                        f"{time.monotonic() - self.t0:5.0f}s {text}")

    def warn(self, text):
        """A line that must be seen, quiet or not; kept on a terminal."""
        if self.tty and not self.quiet:
            self.stream.write("\r\x1b[2K")
        self.stream.write(f"bnnbench: warning: {text}\n")
        self.stream.flush()

    def advance(self):
        self.done += 1

    def close(self):
        if not self.quiet and self.tty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
