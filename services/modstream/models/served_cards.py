"""The cards of what serves: the ensemble and each of its components at their serving versions
(read from the model repository), each card made by ``cards.card_for`` from the evidence the
composer reads (reviewers' verdicts from the archive, the drift monitor's state), which this
room does not read itself: ``cli/`` hands over an ``EvidenceSource``.

``ServedCards`` makes the cards again at every call: the repository's files and the drift
monitor's state are read each time, and the archive's measurement is kept for as long as the
archive's snapshots (``core.lake.snapshot_ids``) stay the same, so a commit that adds a verdict
changes the next card, and nothing else reads the archive again.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from modstream.models.cards import DriftEvidence, LabelEvidence, MadeFrom, ModelCard, Notice, card_for, read_notices
from modstream.models.heads import read_cards
from modstream.models.repository import Repository
from modstream.models.taxonomy import ensemble_components, read_taxonomy

Snapshots = dict[str, int | None]


@dataclass(frozen=True)
class Quality:
    """Reviewers' verdicts over one period of the archive, measured."""

    rows: list[tuple[str, LabelEvidence]]
    """Each label's evidence, paired with the model version of the decisions."""
    since: datetime | None = None
    until: datetime | None = None
    made_from: MadeFrom | None = None
    unavailable: list[str] = field(default_factory=list)
    """Why the archive could not be read (then ``rows`` is empty)."""


class EvidenceSource(Protocol):
    """What the cards' quality and drift sections are made from (the composer reads it)."""

    def snapshots(self) -> dict[str, int | None]:
        """The archive's current snapshot id per table (blocking). Raises ``OSError`` when it
        cannot be read."""
        ...

    def quality(self) -> Quality:
        """The archive's verdicts, measured (blocking), with the snapshots read in ``made_from``."""
        ...

    async def drift(self) -> DriftEvidence | str:
        """The drift monitor's state, or why it cannot be read."""
        ...


def serving_version(root: Path, model: str) -> int:
    """The version Triton serves: the pinned or newest of an ONNX model's, else (an ensemble, a
    Python model) the newest version folder."""
    repository = Repository(root, model)
    if repository.versions():
        return repository.serving()
    numbers = [int(path.name) for path in repository.folder.iterdir() if path.is_dir() and path.name.isdigit()]
    return max(numbers, default=0)


def is_ensemble(root: Path, name: str) -> bool:
    return 'platform: "ensemble"' in (root / name / "config.pbtxt").read_text()


def served(root: Path, ensemble: str) -> list[tuple[str, str]]:
    """(name, serving version) of the ensemble, then of each of its components: the members
    with weights (an ONNX graph); the ensemble's own steps, preprocess and taxonomy, are
    described in its card."""
    members = sorted(m for m in ensemble_components(root, ensemble) if Repository(root, m).versions())
    return [(name, str(serving_version(root, name))) for name in [ensemble, *members]]


def notices_in(path: Path) -> dict[str, Notice] | str:
    """The components' rows of THIRD_PARTY_NOTICES at ``path``, or why there are none (an
    installed package has no checkout around it)."""
    try:
        return read_notices(path.read_text())
    except OSError as exc:
        return f"THIRD_PARTY_NOTICES ({exc.strerror or exc}: {path}): no details or licences"


def card_of(
    root: Path,
    name: str,
    version: str,
    *,
    notices: dict[str, Notice] | str,
    quality: Quality,
    drift: DriftEvidence | str,
    now: datetime,
) -> ModelCard:
    """The card of ``name`` (an ensemble or a component) at ``version``. ``notices`` and
    ``drift``: what was read, or why it could not be."""
    taxonomy = read_taxonomy(root)
    members = ensemble_components(root, name) if is_ensemble(root, name) else set()
    components = {m: str(serving_version(root, m)) for m in sorted(members)} or {name: version}
    labels = taxonomy.produced_by(set(components)) + taxonomy.learned_labels(root, set(components))
    heads = read_cards(Repository(root, "heads").folder / components["heads"]).heads if "heads" in components else {}
    unavailable = [
        *([notices] if isinstance(notices, str) else []),
        *quality.unavailable,
        *([drift] if isinstance(drift, str) else []),
    ]
    return card_for(
        name,
        version,
        components=components,
        taxonomy=taxonomy,
        labels=labels,
        notices={} if isinstance(notices, str) else notices,
        heads=heads,
        quality=None if quality.unavailable else quality.rows,
        since=quality.since,
        until=quality.until,
        now=now,
        drift=drift if isinstance(drift, DriftEvidence) else None,
        made_from=quality.made_from,
        unavailable=unavailable,
    )


def slug(card: ModelCard) -> str:
    """``moderation-1``: the card's name in URLs and file names."""
    return f"{card.name}-{card.version}"


class ServedCards:
    """The serving ensemble's card and its components', made again at every call; the archive's
    measurement is read again only when the archive has changed (a new snapshot)."""

    def __init__(self, root: Path, ensemble: str, source: EvidenceSource, notices: Path) -> None:
        self.root = root
        self.ensemble = ensemble
        self.source = source
        self.notices = notices
        """Where THIRD_PARTY_NOTICES is (read at every call, like the repository's files)."""
        self._kept: tuple[Snapshots, Quality] | None = None
        self._reading = asyncio.Lock()
        self.measured = 0
        """How many times the archive was measured (a test reads it)."""

    async def quality(self) -> Quality:
        async with self._reading:  # one measurement at a time: the others wait for it and share it
            try:
                snapshots = await asyncio.to_thread(self.source.snapshots)
            except OSError as exc:
                return Quality(rows=[], unavailable=[f"the archive: {exc}"])
            if self._kept is None or self._kept[0] != snapshots:
                measured = await asyncio.to_thread(self.source.quality)
                self.measured += 1
                if measured.unavailable:
                    return measured  # not kept: the next call tries again
                # Kept under the snapshots it read (a commit may have landed since those above).
                self._kept = (measured.made_from.snapshots if measured.made_from else snapshots, measured)
            return self._kept[1]

    async def cards(self, now: datetime) -> list[ModelCard]:
        quality = await self.quality()
        drift = await self.source.drift()
        notices = notices_in(self.notices)
        return [
            card_of(self.root, name, version, notices=notices, quality=quality, drift=drift, now=now)
            for name, version in served(self.root, self.ensemble)
        ]
