"""Retry timing shared by the HTTP clients: ``Retry-After`` headers and exponential backoff with jitter."""

from __future__ import annotations

import email.utils
import random
import time

# statuses worth another try: timeouts, conflicts, rate limits and server-side failures
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(
    retry: int, base_s: float, max_s: float, *, full_jitter: bool = False, rng: random.Random | None = None
) -> float:
    """The wait before retry number ``retry`` (1 for the first): ``base_s * 2**(retry - 1)``, capped at ``max_s``.

    Jittered so that clients failing together do not retry together: uniform in [0, cap] with ``full_jitter``,
    else uniform in [cap / 2, cap].
    """
    cap = min(max_s, base_s * 2.0 ** min(max(0, retry - 1), 60))
    uniform = (rng or random).uniform
    return uniform(0.0, cap) if full_jitter else uniform(cap / 2, cap)
