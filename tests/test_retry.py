import email.utils
import random
import time

import pytest

from rationalrewards.retry import backoff_delay, parse_retry_after


def test_retry_after_parsing():
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert 50 < parse_retry_after(email.utils.formatdate(time.time() + 60)) <= 61
    assert parse_retry_after(email.utils.formatdate(time.time() - 60)) == 0.0


@pytest.mark.parametrize("full_jitter", [True, False])
def test_backoff_grows_exponentially_and_stays_under_the_cap(full_jitter):
    rng = random.Random(0)
    for retry, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 10.0), (500, 10.0)]:
        delays = [backoff_delay(retry, 0.5, 10.0, full_jitter=full_jitter, rng=rng) for _ in range(200)]
        low = 0.0 if full_jitter else cap / 2
        assert all(low <= d <= cap for d in delays)
        assert max(delays) - min(delays) > cap / 4  # jittered, not a constant


def test_backoff_is_reproducible_with_a_seeded_rng():
    a = [backoff_delay(k, 1.0, 30.0, rng=random.Random(7)) for k in range(1, 6)]
    b = [backoff_delay(k, 1.0, 30.0, rng=random.Random(7)) for k in range(1, 6)]
    assert a == b
    assert backoff_delay(3, 0.0, 30.0) == 0.0
