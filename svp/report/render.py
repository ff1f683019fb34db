"""Markdown and HTML tables, and the pages that hold them: the one renderer of every
table svp writes (results, subsets, active learning).

A table is a header and rows of cells; a cell is its text, or (text, marked) where the
HTML page shades it (a class share below half of the data's). Sections are (heading,
caption, header, rows): consecutive sections under the same heading share it.
"""

from __future__ import annotations

import html

HTML_STYLE = """
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
"""


def _cell(cell) -> tuple[str, bool]:
    return cell if isinstance(cell, tuple) else (cell, False)


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A pipe table; marked cells are bold."""
    texts = [[f"**{text}**" if marked else text for text, marked in map(_cell, cells)] for cells in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in texts])


def html_table(header: list[str], rows: list[list]) -> str:
    """A table element, every text escaped; marked cells get class ``low``."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=low" if marked else ""}>{html.escape(text)}</td>' for text, marked in map(_cell, cells)) + "</tr>"
        for cells in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def markdown_sections(sections, heading: str) -> str:
    """Each section's caption and table, under ``## <heading><section's heading>`` where it changes."""
    parts, current = [], None
    for name, caption, header, rows in sections:
        if name != current:
            parts.append(f"## {heading}{name}")
            current = name
        parts += [caption, markdown_table(header, rows)]
    return "\n\n".join(parts) + "\n"


def html_sections(sections, heading: str) -> list[str]:
    """The HTML parts of the same sections, for :func:`html_page`."""
    parts, current = [], None
    for name, caption, header, rows in sections:
        if name != current:
            parts.append(f"<h2>{html.escape(heading + name)}</h2>")
            current = name
        parts.append(f"<p>{html.escape(caption)}</p>\n" + html_table(header, rows))
    return parts


def html_page(title: str, parts: list[str], style: str = HTML_STYLE) -> str:
    """A self-contained page of ``parts`` (HTML already escaped)."""
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
