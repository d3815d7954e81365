"""A lease in the coordination Redis: one rebuild (or rollback, or first index) at a time.

A plain lock with a long expiry outlives the process that took it: a rebuild killed with
SIGKILL held the old three-hour lock for three hours. A lease expires quickly
(``TTL_SECONDS``) unless its holder keeps renewing it, which a background thread does every
``TTL_SECONDS / 4``; a holder that dies frees it within a minute. A holder that cannot renew
(Redis unreachable, or the key taken over after an expiry) is told through
:attr:`Lease.lost`, and a rebuild checks that before it swaps aliases.
"""

from __future__ import annotations

import logging
import threading
import uuid
from types import TracebackType

import redis

from search import stores

logger = logging.getLogger(__name__)

REBUILD_KEY = "indexing:rebuild-lease"
TTL_SECONDS = 60.0

# KEYS: the lease. ARGV: token, ttl in ms. Extends the lease if the token still holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS: the lease. ARGV: token. Deletes it if the token still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaseTaken(RuntimeError):
    """Someone else holds the lease."""


class Lease:
    """``with Lease(REBUILD_KEY, "rebuild"):`` holds the lease for the block (or raises
    :class:`LeaseTaken`; Redis errors propagate: without Redis no lease can be promised)."""

    def __init__(self, name: str, purpose: str, ttl: float = TTL_SECONDS) -> None:
        self.key = stores.key(name)
        self.purpose = purpose
        self.ttl = ttl
        self.token = f"{purpose}:{uuid.uuid4().hex}"
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        client = stores.coordination()
        if not client.set(self.key, self.token, nx=True, px=int(self.ttl * 1000)):
            holder = client.get(self.key)
            raise LeaseTaken(
                f"{(holder or b'?').decode().split(':')[0]} in progress (lease '{self.key}'; "
                f"it expires within {self.ttl:.0f} s of its holder stopping)"
            )
        self._thread = threading.Thread(target=self._renew, name="lease-renewal", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        renew = stores.coordination().register_script(_RENEW)
        while not self._stop.wait(self.ttl / 4):
            try:
                if not renew(keys=[self.key], args=[self.token, int(self.ttl * 1000)]):
                    logger.error("%s lost its lease %s", self.purpose, self.key)
                    self.lost.set()
                    return
            except redis.RedisError as exc:
                logger.warning("%s cannot renew its lease (%s)", self.purpose, exc)

    def held(self) -> bool:
        """Whether this lease is still ours (asked of Redis, not assumed)."""
        if self.lost.is_set():
            return False
        return stores.coordination().get(self.key) == self.token.encode()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            stores.coordination().register_script(_RELEASE)(keys=[self.key], args=[self.token])
        except redis.RedisError as error:
            logger.warning("cannot release lease %s (%s); it expires by itself", self.key, error)


def holder(name: str = REBUILD_KEY) -> str | None:
    """What holds the lease now (``rebuild``, ``rollback`` ...), or None (also when Redis
    cannot be asked)."""
    try:
        value = stores.coordination().get(stores.key(name))
    except redis.RedisError:
        return None
    return value.decode().split(":")[0] if value else None
