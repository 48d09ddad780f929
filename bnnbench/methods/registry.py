"""Looking a method up in a registry: one rule, and one wording, for every
level's method names (GEMM methods, layer methods, network engines)."""
from ..errors import BnnbenchError


def lookup(name, by_name, reasons, what="method"):
    """The record called `name` in `by_name`, or a one-line BnnbenchError:
    unknown (naming the ones available here) or not available here (with
    `reasons[name]`, e.g. what to install)."""
    if name not in by_name:
        available = [n for n in by_name if n not in reasons]
        raise BnnbenchError(f"unknown {what} {name!r}; valid {what}s: {', '.join(available)}")
    if name in reasons:
        raise BnnbenchError(f"{what} {name!r} is not available: {reasons[name]}")
    return by_name[name]
