"""The one exception bnnbench raises for bad input.

It subclasses ValueError so API callers can catch the usual type; the CLI
prints its message as a single line and exits with status 2.
"""


class BnnbenchError(ValueError):
    pass
