"""Retention (GDPR Art. 5(1)(e), storage limitation), the rules: a tenant's ``retention`` policy
section, the longest each kind of data is kept, and from when on it goes. Pure.

Each kind is counted from the upload (``occurred_at``, the archive's partition column):

- ``images``: the uploaded image and its versions in the object store; an image whose
  restriction can still be appealed stays (the appeal's reviewer must see it), until then;
- ``decisions``: the archive's decisions (automatic and human) and shadow scores; never
  shorter than the appeal window, since an appeal is heard against the decision on record;
- ``verdicts``: reviewers' verdicts in the archive;
- ``embeddings``: the image's embedding inside each archived decision (cleared, the row stays).

None keeps the kind for as long as the archive exists (the default: nothing goes unasked).
"""

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["images", "decisions", "verdicts", "embeddings"]
KINDS: tuple[Kind, ...] = ("images", "decisions", "verdicts", "embeddings")


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    images_days: float | None = Field(default=None, gt=0, description="days an uploaded image is kept")
    decisions_days: float | None = Field(default=None, gt=0, description="days archived decisions are kept")
    verdicts_days: float | None = Field(default=None, gt=0, description="days archived verdicts are kept")
    embeddings_days: float | None = Field(default=None, gt=0, description="days archived embeddings are kept")

    def days(self, kind: Kind) -> float | None:
        days: float | None = getattr(self, f"{kind}_days")
        return days

    def cutoffs(self, now: datetime) -> dict[Kind, datetime]:
        """For each kind with a limit, the upload time before which it goes."""
        return {kind: now - timedelta(days=days) for kind in KINDS if (days := self.days(kind)) is not None}
