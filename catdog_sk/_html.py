"""Report folders as one page: ``index.html`` beside ``report.md``, with the plots inline."""

import html

__all__ = ["markdown_page", "write_index"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}"
          "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}"
          "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}th{background:#f3f3f3}"
          "img{max-width:100%;margin:.5rem .5rem .5rem 0;vertical-align:top}code{background:#f3f3f3}")


def _renderer():
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML off: any markup in the text (a folder named "<img onerror=...>", a label, a
    # card field) is shown as text, never run; link targets such as javascript: are refused by markdown-it.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_page(md_text, *, title):
    """The Markdown text (pipe tables included) as a standalone HTML page; images stay relative links.

    Every string in the page is escaped by the renderer (markdown-it-py, raw HTML disabled), so no
    call site escapes by hand and none can forget to.

    Parameters
    ----------
    md_text : str
    title : str

    Returns
    -------
    page : str
    """
    body = _renderer().render(md_text)
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def write_index(folder, md_text, *, title):
    """Write ``folder/index.html`` showing ``md_text`` and its plots (open it in any browser).

    Parameters
    ----------
    folder : pathlib.Path
    md_text, title : str
    """
    (folder / "index.html").write_text(markdown_page(md_text, title=title), encoding="utf-8")
