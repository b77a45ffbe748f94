"""A rate limit as the services describe theirs: at most `calls` requests in any `window` seconds."""

from __future__ import annotations

import math
import time
from collections import deque


class RateWindow:
    def __init__(self, calls: int, window: float) -> None:
        if calls < 1 or window <= 0:
            raise ValueError(f"a rate limit needs calls >= 1 and window > 0, not {calls}, {window}")
        self.calls, self.window = calls, window
        self._seen: deque[float] = deque()

    def admit(self) -> int | None:
        """None if a request may go through now (it is counted), else the whole seconds to wait (Retry-After)."""
        now = time.monotonic()
        while self._seen and self._seen[0] <= now - self.window:
            self._seen.popleft()
        if len(self._seen) < self.calls:
            self._seen.append(now)
            return None
        return max(1, math.ceil(self._seen[0] + self.window - now))
