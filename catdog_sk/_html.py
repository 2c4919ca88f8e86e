"""Report folders as one page: ``index.html`` beside ``report.md``, with the plots inline."""

import html

__all__ = ["markdown_page", "write_index"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}"
          "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}"
          "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}th{background:#f3f3f3}"
          "img{max-width:100%;margin:.5rem .5rem .5rem 0;vertical-align:top}code{background:#f3f3f3}")


def markdown_page(md_text, *, title):
    """The Markdown text (pipe tables included) as a standalone HTML page; images stay relative links.

    Uses Python-Markdown (the ``tables`` extension) rather than a hand-written converter.
    """
    import markdown

    body = markdown.markdown(md_text, extensions=["tables"], output_format="html")
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def write_index(folder, md_text, *, title):
    """Write ``folder/index.html`` showing ``md_text`` and its plots (open it in any browser)."""
    (folder / "index.html").write_text(markdown_page(md_text, title=title), encoding="utf-8")
