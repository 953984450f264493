"""The Upstox rate limiter shared by several machines, its state in Redis.

Upstox's limits are per user, so when several machines (Celery workers) fetch for one user, the
file limiter's per-machine count is not enough. Here the recent slots live in one Redis sorted
set per Upstox user, and one Lua script finds and records each slot atomically, on the Redis
server's clock: machines whose clocks disagree still count one timeline. A machine then sleeps,
on its own monotonic clock, the delay the script reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from breadth_assets.sources.upstox.rate_limits import (
    FUTURE_TOLERANCE,
    MAX_ENTRIES,
    PRODUCTION_LIMITS,
    RESERVE_AHEAD,
    LimiterUnavailable,
    RateLimits,
    SlotLimiter,
)

URL_ENV = "BREADTH_UPSTOX_LIMITER_URL"
KEY_PREFIX = "breadth_assets:upstox:"
_SCHEMES = ("redis", "rediss", "unix")

# KEYS[1]: the user's sorted set; score = a slot's start on the server's clock, member = a
# unique id per reservation (what `_release` removes).
# ARGV: member, RESERVE_AHEAD, horizon, FUTURE_TOLERANCE, MAX_ENTRIES, then (span, limit) pairs
# from `Schedule.spans`. Returns {slot - now, 1 if reserved else 0}; the delay as a %.17g string,
# since Redis would truncate a Lua number to an integer.
# The search is `Schedule.earliest_free`, asking the set for the limit-th newest entry of each
# window instead of reading all of them. An entry older than the longest window can no longer
# push a slot past now, so dropping it a second late (a margin against rounding) changes
# nothing; entries far in the future come from a server clock that jumped back and are dropped,
# as the file limiter drops them. The key expires when its newest slot has left every window.
SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local key, member = KEYS[1], ARGV[1]
local ahead, horizon, future = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local most = tonumber(ARGV[5])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function exact(x) return string.format('%.17g', x) end
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. exact(now - horizon - 1))
redis.call('ZREMRANGEBYSCORE', key, '(' .. exact(now + future), '+inf')
local count = redis.call('ZCARD', key)
local slot = now
if count > 0 then
  slot = math.max(slot, tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]))
end
for i = 6, #ARGV, 2 do
  local span, limit = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if count >= limit then
    local entry = redis.call('ZRANGE', key, -limit, -limit, 'WITHSCORES')
    slot = math.max(slot, tonumber(entry[2]) + span)
  end
end
if slot > now + ahead then
  return {exact(slot - now), 0}
end
redis.call('ZADD', key, exact(slot), member)
redis.call('ZREMRANGEBYRANK', key, 0, -(most + 1))
redis.call('PEXPIRE', key, math.ceil((slot - now + horizon + 1) * 1000))
return {exact(slot - now), 1}
"""


def token_key(token: str) -> str:
    """The Redis key's name for a token's user when none is configured: a hash, never the token.
    Every machine using the same token shares the key."""
    return "token-" + hashlib.sha256(token.strip().encode()).hexdigest()[:16]


def redis_address(url: str) -> str:
    """host:port (or the socket path) of a Redis URL: what errors name, never the password."""
    try:
        parts = urlsplit(url.strip())
        if parts.scheme not in _SCHEMES:
            raise ValueError
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        raise ValueError(
            f"{URL_ENV} is not a Redis URL (redis://[:password@]host:port/db)"
        ) from None


class RedisRateLimiter(SlotLimiter):
    """Counts the requests of every limiter, on any machine, that uses the same Redis and `name`
    (the Upstox user: a configured name, or `token_key(token)`). See `SlotLimiter` for the
    margin and pacing; the margin must also cover the difference in round trips to Redis
    between machines (a LAN's are well under a millisecond).

    When Redis cannot be reached, `acquire` raises `LimiterUnavailable` naming host:port:
    requests are never sent unlimited.
    """

    def __init__(
        self,
        url: str,
        name: str,
        limits: RateLimits = PRODUCTION_LIMITS,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(limits, margin, clock, sleep)
        if not name or not name.isprintable() or " " in name or len(name) > 100:
            raise ValueError(f"limiter name {name!r}: up to 100 printable characters, no spaces")
        self.address = redis_address(url)
        self.key = KEY_PREFIX + name
        self._url = url.strip()
        password = urlsplit(self._url).password
        self._secrets = (password, unquote(password)) if password else ()
        self._redis = redis.Redis.from_url(
            self._url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )
        self._script = self._redis.register_script(SCRIPT)
        # str(float) is the shortest text that reads back as the same float, in Lua too.
        numbers = (RESERVE_AHEAD, self.schedule.horizon, FUTURE_TOLERANCE, MAX_ENTRIES)
        spans = (x for pair in self.schedule.spans for x in pair)
        self._args = [str(x) for x in (*numbers, *spans)]

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.address}, key={self.key!r}, limits={self.limits})"

    @property
    def _lock_name(self) -> tuple[str, str, str]:
        return ("redis", self.address, self.key)

    def _reserve(self) -> tuple[float, object, bool]:
        """A slot from the script; its delay is counted from when the answer arrives, so a
        machine sleeps at most the return trip too long, never too short."""
        member = uuid.uuid4().hex
        try:
            delay, reserved = self._script(keys=[self.key], args=[member, *self._args])
        except redis.RedisError as error:
            raise self._unavailable(error) from None
        return self.clock() + float(delay), member, bool(reserved)

    def _release(self, handle: object) -> None:
        """Best effort: a slot that cannot be given back still counts, which is only stricter."""
        with contextlib.suppress(redis.RedisError):
            self._redis.zrem(self.key, str(handle))

    def _unavailable(self, error: redis.RedisError) -> LimiterUnavailable:
        """The error in words that name host:port and never the URL's password."""
        detail = str(error).replace(self._url, self.address)
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        if isinstance(error, redis.AuthenticationError):
            what = "refused the URL's credentials"
        elif isinstance(error, redis.ConnectionError | redis.TimeoutError):
            what = "is unreachable"
        else:
            what = "failed"
        return LimiterUnavailable(
            f"the Upstox rate limiter's Redis at {self.address} {what} "
            f"({type(error).__name__}: {detail}); the request was not sent"
        )
