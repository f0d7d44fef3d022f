"""index.html: one self-contained page (figures embedded as base64 PNG), so it opens from disk anywhere."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from repro.report.document import Block, Figure, Heading, Para, Table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; vertical-align: top; text-align: left; }
th { background: #f0f0f0; }
td.reproduced { background: #d8f0d8; font-weight: bold; }
td.not-reproduced { background: #f6d5d5; font-weight: bold; }
td.not-tested { background: #eeeeee; font-weight: bold; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
"""

VERDICT_CLASS = {"reproduced": "reproduced", "not reproduced": "not-reproduced", "not tested": "not-tested"}


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def _cell(text: str, tag: str) -> str:
    cls = VERDICT_CLASS.get(text)
    return (
        f'<{tag} class="{cls}">{_inline(text)}</{tag}>'
        if cls and tag == "td"
        else f"<{tag}>{_inline(text)}</{tag}>"
    )


def _figure(fig: Figure, root: Path) -> str:
    data = base64.b64encode((root / fig.path).read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(fig.caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_inline(fig.caption)}</figcaption></figure>"
    )


def render_html(blocks: list[Block], root: Path) -> str:
    """`root` is the report folder the figures' relative paths start from."""
    title = next((b.text for b in blocks if isinstance(b, Heading) and b.level == 1), "repro report")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            parts.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(_cell(h, "th") for h in b.header)
            body = "".join("<tr>" + "".join(_cell(c, "td") for c in row) + "</tr>" for row in b.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Figure):
            parts.append(_figure(b, root))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
