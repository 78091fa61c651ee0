"""An erasure receipt: what was found of the uploads and removed, where, with counts and time,
and what was kept and why. Pure: built by ``run``, stored as JSON, shown by the CLI and the API."""

from datetime import datetime

from pydantic import BaseModel, Field

from modstream.core.events import new_id


class Place(BaseModel):
    """One place that held something of the uploads."""

    name: str
    found: int | None = Field(description="items held there before; none where it cannot be counted")
    removed: int
    note: str = ""
    seconds: float = Field(default=0.0, description="how long finding and removing it there took")


class Kept(BaseModel):
    """Something of the uploads deliberately kept, and why."""

    what: str
    why: str


class ErasureReceipt(BaseModel):
    receipt_id: str = Field(default_factory=new_id)
    requested_by: str
    asked: list[str] = Field(description="what was asked: event ids, or subject:<id>")
    event_ids: list[str] = Field(description="the uploads erased: those asked, and those found of the subject")
    started_at: datetime
    finished_at: datetime
    search_seconds: float = Field(default=0.0, description="finding the uploads (archive, queues, open appeals)")
    places: list[Place]
    kept: list[Kept]

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def removed(self) -> int:
        return sum(place.removed for place in self.places)

    def text(self) -> str:
        """The receipt as a person reads it."""
        width = max((len(p.name) for p in self.places), default=0)
        lines = [
            f"erasure {self.receipt_id}, asked by {self.requested_by} for {', '.join(self.asked)}",
            f"{len(self.event_ids)} uploads, {self.removed} items removed in {self.seconds:.2f} s "
            f"(found in {self.search_seconds:.2f} s)",
            *(
                f"  {p.name:<{width}}  found {'-' if p.found is None else p.found:>5}  removed {p.removed:>5}"
                + f"  {p.seconds:6.2f} s"
                + (f"  ({p.note})" if p.note else "")
                for p in self.places
            ),
            "kept:",
            *(f"  {k.what}: {k.why}" for k in self.kept),
        ]
        return "\n".join(lines)
