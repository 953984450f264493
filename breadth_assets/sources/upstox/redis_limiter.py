"""The Upstox rate limiter shared by several machines, its state in Redis.

Upstox's limits are per user, so when several machines (Celery workers) fetch for one user, the
file limiter's per-machine count is not enough. Here the recent slots live in one Redis sorted
set per Upstox user, and one Lua script finds and records each slot atomically, on the Redis
server's clock: machines whose clocks disagree still count one timeline. A machine then sleeps,
on its own monotonic clock, the delay the script reported.

Losing that state must not reset the count (docs/design.md, "Pacing"). Redis keeps it on disk
(`scripts/redis.sh`: an append-only file); beside the sorted set, a hash records the state's
epoch, the Redis run it was last checked under and the pause after a 429. Each machine keeps a
journal of its own slots (`limiter.Journal`, a small local file). When the hash is missing (a
flushed or new Redis) or Redis restarted (its run id changed: a crash may have lost the last
second's writes), the next script call starts a new epoch, assumes the last second full
(`rate_limits.assumed_full_second`), and every limiter, on its next request, adds its machine's
journal back before taking a slot.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from breadth_assets.sources.upstox.limiter import Journal, default_state_path
from breadth_assets.sources.upstox.rate_limits import (
    DEFAULT_MARGIN,
    FUTURE_TOLERANCE,
    MAX_BLOCK,
    MAX_ENTRIES,
    PRODUCTION_LIMITS,
    RESERVE_AHEAD,
    LimiterUnavailable,
    RateLimits,
    SlotLimiter,
    assumed_full_second,
)

URL_ENV = "BREADTH_UPSTOX_LIMITER_URL"
KEY_PREFIX = "breadth_assets:upstox:"
STATE_SUFFIX = ":state"
_SCHEMES = ("redis", "rediss", "unix")

# Shared by the scripts: the server's clock, and whether the state hash (KEYS[2]) is the current
# one. `current` is false when the hash has no epoch (a flushed or new Redis) or was last checked
# under another run of the server (a restart: INFO's run_id changes), else the epoch.
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local key, state = KEYS[1], KEYS[2]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function exact(x) return string.format('%.17g', x) end
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local fields = redis.call('HMGET', state, 'epoch', 'run', 'blocked')
local current = false
if fields[1] and fields[2] == run then current = fields[1] end
"""

# KEYS: the user's sorted set (score = a slot's start on the server's clock, member = a unique id
# per reservation, what `_release` removes) and its state hash.
# ARGV: member, the epoch the caller has synced with, RESERVE_AHEAD, horizon, FUTURE_TOLERANCE,
# MAX_ENTRIES, MAX_BLOCK, then (span, limit) pairs from `Schedule.spans`.
# Returns {slot - now, 1 if reserved else 0, now, the current epoch or ''}; nothing is reserved
# unless the caller's epoch is current. Numbers as %.17g strings, since Redis would truncate a
# Lua number to an integer.
# The search is `Schedule.earliest_free`, asking the set for the limit-th newest entry of each
# window instead of reading all of them. An entry older than the longest window can no longer
# push a slot past now, so dropping it a second late (a margin against rounding) changes
# nothing; entries far in the future come from a server clock that jumped back and are dropped,
# as the file limiter drops them. The set expires when its newest slot has left every window;
# the state hash does not expire.
SCRIPT = (
    _PRELUDE
    + """
if not current or current ~= ARGV[2] then
  return {'0', 0, exact(now), current or ''}
end
local member = ARGV[1]
local ahead, horizon, future = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local most, longest_block = tonumber(ARGV[6]), tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. exact(now - horizon - 1))
redis.call('ZREMRANGEBYSCORE', key, '(' .. exact(now + future), '+inf')
local count = redis.call('ZCARD', key)
local slot = now
if count > 0 then
  slot = math.max(slot, tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]))
end
local blocked = tonumber(fields[3] or '0') or 0
if blocked <= now + longest_block then slot = math.max(slot, blocked) end
for i = 8, #ARGV, 2 do
  local span, limit = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if count >= limit then
    local entry = redis.call('ZRANGE', key, -limit, -limit, 'WITHSCORES')
    slot = math.max(slot, tonumber(entry[2]) + span)
  end
end
if slot > now + ahead then
  return {exact(slot - now), 0, exact(now), current}
end
redis.call('ZADD', key, exact(slot), member)
redis.call('ZREMRANGEBYRANK', key, 0, -(most + 1))
redis.call('PEXPIRE', key, math.ceil((slot - now + horizon + 1) * 1000))
return {exact(slot - now), 1, exact(now), current}
"""
)

# Brings the state up to date and adds a machine's journal.
# ARGV: a new epoch's name, 1 to assume a missing state's last second full (0: start it empty),
# how many requests that second held and their spacing, horizon, FUTURE_TOLERANCE, MAX_ENTRIES,
# then (score, member) pairs of the journal. When the state is not current, a new epoch starts:
# the slots a restart kept stay, and the second before now is assumed full (members
# 'assumed:<epoch>:<k>', `count` of them `spacing` apart up to now, as
# `rate_limits.assumed_full_second`).
# Journal entries still in the longest window are added (again: ZADD of a member already there
# changes nothing). Returns {the current epoch, 1 if it was started now else 0}.
SYNC_SCRIPT = (
    _PRELUDE
    + """
local started = 0
if not current then
  current = ARGV[1]
  started = 1
  redis.call('HSET', state, 'epoch', current, 'run', run)
  if ARGV[2] == '1' then
    local count, spacing = tonumber(ARGV[3]), tonumber(ARGV[4])
    for k = 0, count - 1 do
      redis.call('ZADD', key, exact(now - k * spacing), 'assumed:' .. current .. ':' .. k)
    end
  end
end
local horizon, future, most = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
for i = 8, #ARGV, 2 do
  local score = tonumber(ARGV[i])
  if score and score > now - horizon - 1 and score <= now + future then
    redis.call('ZADD', key, exact(score), ARGV[i + 1])
  end
end
redis.call('ZREMRANGEBYRANK', key, 0, -(most + 1))
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
if newest then
  local left = tonumber(newest) - now + horizon + 1
  if left > 0 then redis.call('PEXPIRE', key, math.ceil(left * 1000)) end
end
return {current, started}
"""
)

# Seconds until a 429's pause ends (0 or less: none), on the server's clock.
BLOCKED_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local blocked = tonumber(redis.call('HGET', KEYS[2], 'blocked') or '0') or 0
return string.format('%.17g', blocked - now)
"""

# After a 429: no slot before now + ARGV[1] seconds, for every limiter sharing the state.
BLOCK_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local blocked = tonumber(redis.call('HGET', KEYS[2], 'blocked') or '0') or 0
local ends = math.max(blocked, now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[2], 'blocked', string.format('%.17g', ends))
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

    `journal`: where this machine keeps its own slots for a flushed or new Redis (default: a
    file per Redis and user beside `limiter.default_state_path()`).

    When Redis cannot be reached, `acquire` raises `LimiterUnavailable` naming host:port:
    requests are never sent unlimited.
    """

    def __init__(
        self,
        url: str,
        name: str,
        limits: RateLimits = PRODUCTION_LIMITS,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        timeout: float = 5.0,
        journal: str | Path | None = None,
        late: float | None = None,
    ) -> None:
        super().__init__(limits, margin, clock, sleep, late)
        if not name or not name.isprintable() or " " in name or len(name) > 100:
            raise ValueError(f"limiter name {name!r}: up to 100 printable characters, no spaces")
        self.address = redis_address(url)
        self.key = KEY_PREFIX + name
        self.state_key = self.key + STATE_SUFFIX
        self._url = url.strip()
        parts = urlsplit(self._url)
        password = parts.password
        self._secrets = (password, unquote(password)) if password else ()
        self._redis = redis.Redis.from_url(
            self._url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )
        self._script = self._redis.register_script(SCRIPT)
        self._sync_script = self._redis.register_script(SYNC_SCRIPT)
        self._block_script = self._redis.register_script(BLOCK_SCRIPT)
        self._blocked_script = self._redis.register_script(BLOCKED_SCRIPT)
        # str(float) is the shortest text that reads back as the same float, in Lua too.
        numbers = (RESERVE_AHEAD, self.schedule.horizon, FUTURE_TOLERANCE, MAX_ENTRIES, MAX_BLOCK)
        spans = (x for pair in self.schedule.spans for x in pair)
        self._args = [str(x) for x in (*numbers, *spans)]
        if journal is None:
            where = f"{self.address}{parts.path}|{self.key}".encode()
            digest = hashlib.sha256(where).hexdigest()[:16]
            journal = default_state_path().parent / f"upstox-redis-{digest}.bin"
        self.journal = Journal(Path(journal).expanduser(), self.schedule.horizon)
        self._epoch = ""  # the epoch this limiter last added its journal to

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.address}, key={self.key!r}, limits={self.limits})"

    @property
    def _lock_name(self) -> tuple[str, str, str]:
        return ("redis", self.address, self.key)

    def _reserve(self) -> tuple[float, object, bool]:
        """A slot from the script; its delay is counted from when the answer arrives, so a
        machine sleeps at most the return trip too long, never too short. A state this limiter
        has not synced with (a new epoch, or its first request) gets its journal first."""
        member = uuid.uuid4().hex
        for _ in range(3):
            delay, reserved, now, epoch = self._call(
                self._script, [member, self._epoch, *self._args]
            )
            if epoch and epoch.decode() == self._epoch:
                break
            self._sync(assume_full=True)
        else:
            raise LimiterUnavailable(
                f"the Upstox rate limiter's state at {self.address} keeps changing epochs; "
                "the request was not sent"
            )
        slot = self.clock() + float(delay)
        if reserved:
            self.journal.add(float(now) + float(delay), member, float(now))
        return slot, member, bool(reserved)

    def _sync(self, assume_full: bool) -> bool:
        """Brings the state up to date (a new epoch when it was missing or Redis restarted) and
        adds this machine's journal; whether a new epoch started."""
        server_now = self._server_now()
        journal = [x for score, member in self.journal.entries(server_now) for x in (score, member)]
        assumed = assumed_full_second(0.0, self.limits)
        args = [
            uuid.uuid4().hex,
            "1" if assume_full else "0",
            len(assumed),
            1 / self.limits.per_second,
            self.schedule.horizon,
            FUTURE_TOLERANCE,
            MAX_ENTRIES,
            *journal,
        ]
        epoch, started = self._call(self._sync_script, [str(x) for x in args])
        self._epoch = epoch.decode()
        return bool(started)

    def _release(self, handle: object) -> None:
        """Best effort: a slot that cannot be given back still counts, which is only stricter."""
        with contextlib.suppress(redis.RedisError):
            self._redis.zrem(self.key, str(handle))
        self.journal.remove(str(handle))

    def _blocked(self) -> bool:
        left = float(self._call(self._blocked_script, []))
        return 0 < left <= MAX_BLOCK

    def _block_until(self, seconds: float) -> None:
        self._call(self._block_script, [repr(float(seconds))])

    def _start_empty(self) -> bool:
        return self._sync(assume_full=False)

    def _server_now(self) -> float:
        try:
            seconds, micros = self._redis.time()
        except redis.RedisError as error:
            raise self._unavailable(error) from None
        return seconds + micros / 1e6

    def _call(self, script, args: list[str]):
        try:
            return script(keys=[self.key, self.state_key], args=args)
        except redis.RedisError as error:
            raise self._unavailable(error) from None

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
