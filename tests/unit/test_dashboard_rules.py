"""The dashboard's pure rules: sign-in throttling, and the blur levels the stylesheet must know."""

import re

import pytest
from modstream.review.web.app import HERE
from modstream.review.web.sessions import BLUR_LEVELS
from modstream.review.web.throttle import LoginLimits, Refusal, refusal

LIMITS = LoginLimits(per_user=3, per_address=5, window_seconds=60.0)


def test_attempts_under_both_limits_go_ahead() -> None:
    assert refusal(LIMITS, [], [], now=1000.0) is None
    assert refusal(LIMITS, [990.0, 995.0], [990.0, 995.0, 996.0, 997.0], now=1000.0) is None


def test_the_user_limit_refuses_until_the_oldest_failure_leaves_the_window() -> None:
    found = refusal(LIMITS, [950.0, 960.0, 970.0], [], now=1000.0)
    assert found == Refusal(scope="user", retry_after=10.0)  # 950 + 60 - 1000
    assert refusal(LIMITS, [950.0, 960.0, 970.0], [], now=1010.0) is None  # 950 has left: 2 remain


def test_with_more_failures_than_the_limit_enough_of_them_must_leave() -> None:
    # Five failures, limit three: one more attempt once only two remain, i.e. when the third leaves.
    found = refusal(LIMITS, [960.0, 950.0, 980.0, 970.0, 990.0], [], now=1000.0)
    assert found == Refusal(scope="user", retry_after=30.0)  # 970 + 60 - 1000


def test_failures_outside_the_window_do_not_count() -> None:
    assert refusal(LIMITS, [900.0, 930.0, 940.0, 950.0], [], now=1000.0) is None
    assert refusal(LIMITS, [1000.0 - 60.0, 990.0, 995.0], [], now=1000.0) is None  # exactly 60 s old: gone


def test_the_address_limit_counts_failures_of_every_name() -> None:
    found = refusal(LIMITS, [], [991.0, 992.0, 993.0, 994.0, 995.0], now=1000.0)
    assert found == Refusal(scope="address", retry_after=51.0)
    assert refusal(LIMITS, [], [991.0, 992.0, 993.0, 994.0], now=1000.0) is None


@pytest.mark.parametrize(
    ("refused", "message"),
    [
        (Refusal("user", 899.4), "Too many failed sign-ins for this name. Try again in 15 minutes."),
        (Refusal("address", 70.0), "Too many failed sign-ins from this address. Try again in 1 minute."),
        (Refusal("user", 2.0), "Too many failed sign-ins for this name. Try again in 1 minute."),
    ],
)
def test_refusals_say_why_and_for_how_long(refused: Refusal, message: str) -> None:
    assert refused.message == message


def test_every_blur_level_has_its_rule_in_the_stylesheet() -> None:
    """The job page names the level as a class (the CSP allows no style attribute)."""
    css = (HERE / "static" / "dashboard.css").read_text()
    rules = dict(re.findall(r"^\.blur-(\w+) \{ --blur: (\d+)px; \}", css, re.MULTILINE))
    assert {level: int(px) for level, px in rules.items()} == BLUR_LEVELS
