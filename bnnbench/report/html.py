"""Rendering the report with jinja2, autoescaping every value.

Run files come from other machines: a host label or CPU name may hold
markup. Autoescape is on for the whole template and nothing from a file is
ever marked safe; the only raw data in the page is base64 PNG made here.
"""
import os

import jinja2

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def environment():
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=False)


def render(**context):
    return environment().get_template("report.html.j2").render(**context)
