"""Text from untrusted files, made safe for where it goes.

Host labels, CPU names, benchmark names and file names come from run files
other machines wrote. Each destination has one rule, kept here:

- HTML: jinja2 autoescapes the whole report template (bnnbench.report.html);
  nothing from a file is ever marked safe.
- terminal: terminal(text) shows control characters (escape sequences that
  clear the screen or retitle the window, carriage returns that overwrite a
  line, newlines that forge a line of bnnbench's own output) and bidi
  overrides as visible \\x1b-style escapes. Everything printed to a terminal
  that may hold such text goes through it.
- CSV: csv_frame(df) prefixes a cell that a spreadsheet would run as a
  formula (= + - @ tab CR at the start) with a quote; numbers stay numbers.
"""
import re

# C0 controls but tab, DEL, C1 controls, and the bidi/zero-width format
# characters that reorder or hide text (Trojan Source).
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_FORMULA = re.compile(r"^[=+\-@\t\r]")


def _visible(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text):
    """`text` (any object, as str) with control characters made visible."""
    return _UNSAFE.sub(_visible, str(text))


def csv_cell(value):
    """A value for a CSV cell: formula-like strings quoted, the rest as is."""
    if isinstance(value, str) and _FORMULA.match(value):
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value


def csv_frame(df, for_terminal=False):
    """A copy of `df` whose string cells and column names are csv_cell-safe
    (and terminal-safe too with for_terminal, for CSV printed to stdout)."""
    def fix(v):
        if for_terminal and isinstance(v, str):
            v = terminal(v)
        return csv_cell(v)
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("str", "string"):
            out[col] = out[col].map(fix).astype(object)
    out.columns = [fix(str(c)) for c in out.columns]
    return out
