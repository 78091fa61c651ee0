"""The dashboard's Model cards page, for every signed-in user (reviewers and admins): the card
of the serving ensemble and of each of its components, each as HTML rendered from the card's
own Markdown (one text, two forms: what the page shows is what the Markdown download says),
with links to download the Markdown and the JSON.

The dashboard serves it without knowing this room: ``cli/dashboard.py`` hands it over, with the
evidence it reads from the archive and the drift monitor, and it fits the dashboard's
``ReaderPage`` by shape. Cards are made at each view (``served_cards.ServedCards``).
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from modstream.models.cards import ModelCard
from modstream.models.served_cards import ServedCards, slug
from modstream.models.taxonomy import TaxonomyError

log = logging.getLogger("modstream.models")
MEDIA_TYPES = {".md": "text/markdown; charset=utf-8", ".json": "application/json"}

# CommonMark with tables; any HTML in the text (a label's description, say) is escaped, not passed on.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def card_html(card: ModelCard) -> str:
    """The card's Markdown as HTML, its headings one level down (the page has its own ``h1``)."""
    tokens = _MARKDOWN.parse(card.markdown())
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
    return str(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))


@dataclass(frozen=True)
class Shown:
    card: ModelCard
    slug: str
    html: str


class ModelCardsPage:
    path = "model-cards"
    title = "Model cards"
    templates = Path(__file__).parent / "templates"
    template = "model_cards.html"

    def __init__(self, cards: ServedCards) -> None:
        self.cards = cards

    async def _made(self) -> tuple[list[ModelCard], list[str]]:
        try:
            return await self.cards.cards(datetime.now(UTC)), []
        except (OSError, TaxonomyError) as exc:
            # The model repository's files cannot be read: said on the page, not a 500.
            log.warning("model cards: the model repository cannot be read", extra={"error": repr(exc)[:300]})
            return [], [f"The model repository cannot be read now: {exc}"]

    async def context(self, query: Mapping[str, str]) -> dict[str, Any]:
        made, problems = await self._made()
        shown = [Shown(card, slug(card), card_html(card)) for card in made]
        return {"cards": shown, "page_path": self.path, "problems": problems}

    async def file(self, name: str) -> tuple[str, str] | None:
        """``<slug>.md`` or ``<slug>.json`` of a served card: (media type, text); None for any other name."""
        stem, dot, suffix = name.rpartition(".")
        media_type = MEDIA_TYPES.get(dot + suffix)
        if media_type is None:
            return None
        made, _ = await self._made()
        for card in made:
            if slug(card) == stem:
                return media_type, card.markdown() if suffix == "md" else card.to_json()
        return None
