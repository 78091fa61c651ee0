"""The benchmark's uploads: distinct bytes unless it asks for exact re-uploads; which of them the
saliency_on_block bench sends to a blocking tenant."""

import hashlib
import io
import itertools

import pytest
from modstream.bench.run import uploads
from modstream.bench.saliency_cost import blocked_turn
from PIL import Image

from tests import images


def pool() -> list[bytes]:
    photo = images.photos()[0].convert("RGB")
    return [images.encode(photo, "JPEG", quality=85), images.encode(photo, "PNG"), images.encode(photo, "WEBP")]


def test_every_upload_is_distinct_and_still_decodes_to_the_same_picture() -> None:
    made = uploads(pool(), 30)
    assert len({hashlib.sha256(d).hexdigest() for d in made}) == 30
    for data, source in zip(made[:3], pool(), strict=True):
        with Image.open(io.BytesIO(data)) as shown, Image.open(io.BytesIO(source)) as original:
            assert shown.tobytes() == original.tobytes()


def test_a_duplicate_rate_repeats_earlier_uploads_exactly() -> None:
    made = uploads(pool(), 1000, duplicate_rate=0.3, seed=1)
    repeats = len(made) - len(set(made))
    assert 250 <= repeats <= 350
    assert uploads(pool(), 1000, duplicate_rate=0.0, nonce="n") == uploads(pool(), 1000, nonce="n")
    assert len(set(uploads(pool(), 1000))) == 1000


def test_two_calls_share_no_bytes_unless_told_to() -> None:
    # A second run (or a second benchmark within the cache's TTL) must find nothing cached.
    assert not set(uploads(pool(), 50)) & set(uploads(pool(), 50))


@pytest.mark.parametrize(("share", "count"), [(0.05, 300), (0.1, 40), (0.01, 300), (1.0, 7), (0.29, 100)])
def test_the_blocked_share_is_exact_and_spread_over_the_run(share: float, count: int) -> None:
    blocked = [i for i in range(count) if blocked_turn(share)(i)]
    assert len(blocked) == round(count * share)
    # No stretch of the run is without its part: the gaps are as even as whole uploads allow.
    gaps = {b - a for a, b in itertools.pairwise(blocked)}
    assert not gaps or max(gaps) - min(gaps) <= 1
