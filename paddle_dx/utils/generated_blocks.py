"""Generated blocks in hand-written Markdown pages: the text between ``<!-- generated:NAME -->``
and ``<!-- /generated:NAME -->`` is rendered from code or committed results, so a page cannot
drift from what it quotes; everything outside the markers is left untouched."""

from pathlib import Path

from paddle_dx.errors import PaddleDxError


def render(text: str, blocks: dict[str, str], page: Path | str = "page") -> str:
    """``text`` with the content between each block's markers replaced by ``blocks[name]``."""
    for name, body in blocks.items():
        start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
        if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
            raise PaddleDxError(f"{page}: needs exactly one '{start}' ... '{end}' pair")
        head, rest = text.split(start)
        tail = rest.split(end)[1]
        text = f"{head}{start}\n{body.strip()}\n{end}{tail}"
    return text


def update(page: Path | str, blocks: dict[str, str], write: bool) -> bool:
    """Render ``blocks`` into ``page``; write it when ``write``. Returns True when the committed
    page differed from the fresh one (stale)."""
    page = Path(page)
    current = page.read_text(encoding="utf-8")
    fresh = render(current, blocks, page)
    if write and fresh != current:
        page.write_text(fresh, encoding="utf-8")
    return fresh != current
