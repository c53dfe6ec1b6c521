"""One jinja2 environment for every template: prompts/, pr_templates/ and journal/.

StrictUndefined makes a missing variable an error instead of an empty hole in a pull request.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from tuber import journal, pr_templates, prompts


@cache
def environment() -> jinja2.Environment:
    folders = {"pr": pr_templates, "prompts": prompts, "journal": journal}
    loader = jinja2.PrefixLoader(
        {prefix: jinja2.FileSystemLoader(package.__path__[0]) for prefix, package in folders.items()}
    )
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["signed"] = lambda n: f"{n:+d}"
    env.filters["percent"] = lambda ratio: f"{ratio * 100:+.0f}%"
    return env


def render(name: str, **context: Any) -> str:
    """Render `pr/body.md.j2`, `journal/entry.md.j2`, `prompts/...`; collapses runs of blank lines."""
    text = environment().get_template(name).render(**context)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text
