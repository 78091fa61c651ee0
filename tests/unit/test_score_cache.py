"""The duplicate cache: scores reused only for the same bytes under the serving model version."""

from modstream.core.events import ModelRef
from modstream.core.inference import Scores
from modstream.worker.duplicates import ScoreCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def scores(version: str, score: float = 0.5) -> Scores:
    return Scores(by_label={"sexual.any": score}, model=ModelRef(name="moderation", version=version))


def test_a_reupload_reuses_the_scores_of_the_same_model_version() -> None:
    cache = ScoreCache(10, 60)
    assert cache.get("a") is None
    cache.put("a", scores("1"))
    assert cache.get("a") == scores("1")
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_new_model_version_makes_older_entries_miss() -> None:
    cache = ScoreCache(10, 60)
    cache.put("a", scores("1"))
    cache.put("b", scores("2"))  # Triton answered with version 2: it serves now
    assert cache.get("a") is None
    assert cache.get("b") == scores("2")
    assert len(cache) == 1  # the stale entry is gone, not kept


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = ScoreCache(10, 60, clock)
    cache.put("a", scores("1"))
    clock.now = 60.0
    assert cache.get("a") is not None
    clock.now = 60.5
    assert cache.get("a") is None


def test_the_least_recently_used_entry_goes_first_past_the_size_bound() -> None:
    cache = ScoreCache(2, 60)
    cache.put("a", scores("1"))
    cache.put("b", scores("1"))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", scores("1"))
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_size_zero_turns_the_cache_off() -> None:
    cache = ScoreCache(0, 60)
    cache.put("a", scores("1"))
    assert cache.get("a") is None
    assert len(cache) == 0


def test_a_probe_of_the_serving_version_ends_reuse_even_when_every_upload_is_a_duplicate() -> None:
    cache = ScoreCache(10, 60)
    cache.put("a", scores("1"))
    cache.serving("1")
    assert cache.get("a") is not None
    cache.serving("2")  # deployed: the worker's probe saw it before any new upload was scored
    assert cache.get("a") is None
