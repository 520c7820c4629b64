"""The simulated microservice shop: which requests arrive and which lines each request writes, in order.

Every request is a session (one request id) that walks an ordered path through the services — gateway
receives, auth validates, cache answers or the database does, the gateway completes — so order-sensitive
models can learn the paths and a step that goes missing or out of order is visible. Incidents do not live
here; they arrive as a `Mods` value that bends one session (fail the DB step, slow it, drop a step...).

Invariants the tests (and the labels' exactness) rely on:
- every normal session's event-key sequence is in `NORMAL_SEQUENCES`;
- every normal database duration is below `NORMAL_DB_MAX_MS`, every latency-spiked one at or above
  `SPIKE_MIN_MS`, and every 2xx gateway completion of a normal session is below `SPIKE_MIN_MS`;
- the never-seen templates (`NOVEL_ERRORS`) are written only by the new_template incident.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

NORMAL_DB_MAX_MS = 150
SPIKE_MIN_MS = 600
_SPIKE_MAX_MS = 4000


@dataclass(slots=True)
class Event:
    """One log record of a session: its time, header fields, event key and message (plus stack lines)."""

    t: float
    level: str
    service: str
    key: str
    text: str
    cont: tuple[str, ...] = ()
    incident: int = -1
    """Index of the incident that produced or changed this line; -1 for normal traffic."""


@dataclass(slots=True)
class Mods:
    """How an incident bends one session; the default bends nothing."""

    incident: int = -1
    fail_db: bool = False
    slow_db: bool = False
    novel: str = ""
    break_mode: str = ""
    """`missing_auth`, `missing_cache`, `auth_after_backend` or `done_before_backend`."""


@dataclass(slots=True)
class Session:
    rid: str
    kind: str
    events: list[Event] = field(default_factory=list)
    incident: int = -1
    detail: str = ""


NORMAL_SEQUENCES: frozenset[tuple[str, ...]] = frozenset(
    {
        ("gw.recv", "auth.ok", "cache.hit", "gw.done"),
        ("gw.recv", "auth.ok", "cache.miss", "db.select", "gw.done"),
        ("gw.recv", "auth.ok", "cache.miss", "db.pool_error", "gw.done"),
        ("gw.recv", "auth.ok", "inv.reserve", "db.insert", "pay.charge", "queue.publish", "gw.done",
         "worker.consume", "worker.email"),
        ("gw.recv", "auth.ok", "inv.reserve", "db.insert", "pay.declined", "gw.done"),
        ("gw.recv", "auth.ok", "inv.reserve", "db.pool_error", "gw.done"),
        ("gw.recv", "auth.ok", "search.query", "gw.done"),
        ("gw.recv", "auth.ok", "search.timeout", "gw.done"),
        ("gw.recv", "auth.login_ok", "gw.done"),
        ("gw.recv", "auth.login_fail", "gw.done"),
        ("gw.health",),
        ("cache.evict",),
        ("sched.start", "db.delete", "sched.done"),
    }
)
"""Every path a session of normal traffic can take (by event key)."""

NOVEL_ERRORS: tuple[str, ...] = (
    "Circuit breaker bank-api transitioned to OPEN after {n} consecutive failures, rejecting calls",
    "TLS handshake with acquirer gateway {host} failed: certificate has expired",
    "Idempotency key conflict for charge ch_{hex}: payload does not match the original request",
)
"""Error templates normal traffic never writes: the new_template incident picks one."""

_KINDS: tuple[tuple[str, float], ...] = (
    ("order_read", 0.34),
    ("order_create", 0.12),
    ("search", 0.24),
    ("login", 0.12),
    ("health", 0.10),
    ("evict", 0.05),
    ("job", 0.03),
)
LOGIN_FAIL_P = 0.08
_WORDS = ("headphones", "laptop", "usb-c", "monitor", "keyboard", "coffee", "shoes", "backpack", "lamp", "desk")
_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar")
_JOBS = ("cleanup-expired-sessions", "rebuild-search-index", "expire-carts")
_SEARCH_TRACE = (
    "\tat java.base/java.net.SocketInputStream.socketRead0(Native Method)",
    "\tat org.apache.http.impl.io.SessionInputBufferImpl.fillBuffer(SessionInputBufferImpl.java:153)",
    "\tat org.elasticsearch.client.RestClient.performRequest(RestClient.java:288)",
    "\tat com.shop.search.SearchService.query(SearchService.java:{line})",
    "\t... 42 more",
)
_DB_TRACE = (
    "\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)",
    "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
    "\tat com.shop.orders.OrderRepository.{method}(OrderRepository.java:{line})",
    "\tat com.shop.orders.OrderController.handle(OrderController.java:57)",
    "\t... 87 more",
)


class Traffic:
    """Builds sessions from one seeded random stream, so the same seed gives the same shop."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._clients = [f"10.{rng.randrange(1, 40)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(300)]
        self._attackers = [f"203.0.113.{rng.randrange(1, 255)}" for _ in range(6)]
        self._kinds = [k for k, _ in _KINDS]
        self._weights = [w for _, w in _KINDS]
        self._builders: dict[str, Callable[[Session, float, Mods], None]] = {
            "order_read": self._order_read,
            "order_create": self._order_create,
            "search": self._search,
            "login": self._login,
            "health": self._health,
            "evict": self._evict,
            "job": self._job,
        }
        self._next_order = 10_000 + rng.randrange(50_000)
        self._offset = rng.randrange(10**6)

    # -- public ------------------------------------------------------------------------------------------

    def pick_kind(self) -> str:
        return self.rng.choices(self._kinds, self._weights)[0]

    def session(self, t0: float, kind: str, mods: Mods) -> Session:
        s = Session(self._rid(), kind, incident=mods.incident)
        self._builders[kind](s, t0, mods)
        if mods.break_mode and s.incident >= 0:
            _break(s, mods.break_mode)
        return s

    def login_failure(self, t0: float, incident: int) -> Session:
        """A failed login from one of a few attacker addresses (the frequency_shift incident's session)."""
        s = Session(self._rid(), "login", incident=incident)
        self._login(s, t0, Mods(incident=incident), force_fail=True)
        for e in s.events:
            e.incident = incident
        return s

    # -- helpers -----------------------------------------------------------------------------------------

    def _rid(self) -> str:
        return f"{self.rng.getrandbits(48):012x}"

    def _ms(self, median: float, sigma: float, hi: int) -> int:
        v = self.rng.lognormvariate(math.log(median), sigma)
        return max(1, min(hi, round(v)))

    def _db_ms(self, mods: Mods, median: float) -> int:
        if mods.slow_db:
            return max(SPIKE_MIN_MS, min(_SPIKE_MAX_MS, round(self.rng.lognormvariate(math.log(1400), 0.4))))
        return self._ms(median, 0.6, NORMAL_DB_MAX_MS)

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _user(self) -> int:
        return self.rng.randrange(1000, 6000)

    def _add(self, s: Session, t: float, level: str, service: str, key: str, text: str,
             cont: tuple[str, ...] = (), mark: bool = False) -> None:
        s.events.append(Event(t, level, service, key, text, cont, s.incident if mark else -1))

    def _auth(self, s: Session, t: float, scope: str, mods: Mods) -> float:
        d = self._ms(3, 0.5, 30)
        t += d / 1000
        self._add(s, t, "INFO", "auth-service", "auth.ok",
                  f"Token validated for user_id={self._user()} scope={scope} in {d}ms")
        return t

    def _pool_error(self, s: Session, t: float, table: str, method: str, mark: bool) -> float:
        t += self._ms(4, 0.4, 20) / 1000
        trace = tuple(x.format(method=method, line=self.rng.randrange(60, 240)) for x in _DB_TRACE)
        self._add(s, t, "ERROR", "order-service", "db.pool_error",
                  f"Query on {table} failed: connection pool exhausted (active=50, idle=0, "
                  f"waiting={self.rng.randrange(3, 60)})", trace, mark)
        return t

    def _done(self, s: Session, t0: float, t: float, method: str, path: str, status: int,
              mark: bool = False) -> None:
        t += self._ms(2, 0.5, 10) / 1000
        total = max(1, round((t - t0) * 1000))
        size = self.rng.randrange(200, 9000) if status < 300 else self.rng.randrange(80, 400)
        self._add(s, t, "INFO" if status < 500 else "WARN", "api-gateway", "gw.done",
                  f"Completed {method} {path} status={status} bytes={size} in {total}ms", mark=mark)

    # -- session kinds ------------------------------------------------------------------------------------

    def _order_read(self, s: Session, t0: float, mods: Mods) -> None:
        oid = self.rng.randrange(10_000, self._next_order)
        path = f"/api/v1/orders/{oid}"
        self._add(s, t0, "INFO", "api-gateway", "gw.recv", f"Received GET {path} from {self.rng.choice(self._clients)}")
        t = self._auth(s, t0, "orders:read", mods)
        miss = self.rng.random() < 0.35
        t += self._ms(1, 0.4, 8) / 1000
        if not miss:
            self._add(s, t, "DEBUG", "cache-proxy", "cache.hit",
                      f"Cache hit key=order:{oid} ttl={self.rng.randrange(5, 600)}s")
            self._done(s, t0, t, "GET", path, 200)
            return
        self._add(s, t, "DEBUG", "cache-proxy", "cache.miss", f"Cache miss key=order:{oid}")
        if mods.fail_db or self.rng.random() < 0.002:
            t = self._pool_error(s, t, "orders", "findById", mods.fail_db)
            self._done(s, t0, t, "GET", path, 503, mods.fail_db)
            return
        d = self._db_ms(mods, 9)
        t += d / 1000
        self._add(s, t, "INFO", "order-service", "db.select",
                  f"Executed SELECT on orders (id={oid}) rows=1 in {d}ms", mark=mods.slow_db)
        self._done(s, t0, t, "GET", path, 200, mods.slow_db)

    def _order_create(self, s: Session, t0: float, mods: Mods) -> None:
        path = "/api/v1/orders"
        self._add(s, t0, "INFO", "api-gateway", "gw.recv", f"Received POST {path} from {self.rng.choice(self._clients)}")
        t = self._auth(s, t0, "orders:write", mods)
        d = self._ms(6, 0.5, 50)
        t += d / 1000
        self._add(s, t, "INFO", "inventory-service", "inv.reserve",
                  f"Reserved {self.rng.randrange(1, 6)} units of sku=SKU-{self.rng.randrange(10000, 99999)} "
                  f"warehouse={self.rng.choice(('eu-west-1', 'eu-central-1', 'us-east-1'))} in {d}ms")
        if mods.fail_db or self.rng.random() < 0.002:
            t = self._pool_error(s, t, "orders", "insert", mods.fail_db)
            self._done(s, t0, t, "POST", path, 503, mods.fail_db)
            return
        oid = self._next_order
        self._next_order += 1
        d = self._db_ms(mods, 7)
        t += d / 1000
        self._add(s, t, "INFO", "order-service", "db.insert",
                  f"Executed INSERT on orders (id={oid}) rows=1 in {d}ms", mark=mods.slow_db)
        d = self._ms(140, 0.35, 250)
        t += d / 1000
        amount = f"{self.rng.randrange(5, 400)}.{self.rng.randrange(100):02d}"
        card = f"****{self.rng.randrange(10000):04d}"
        if mods.novel:
            self._add(s, t, "ERROR", "payment-service", "pay.novel", mods.novel, mark=True)
            self._done(s, t0, t, "POST", path, 502, True)
            return
        if self.rng.random() < 0.03:
            self._add(s, t, "WARN", "payment-service", "pay.declined",
                      f"Card {card} declined amount={amount} currency=EUR reason=insufficient_funds")
            self._done(s, t0, t, "POST", path, 402, mods.slow_db)
            return
        self._add(s, t, "INFO", "payment-service", "pay.charge",
                  f"Charged amount={amount} currency=EUR card={card} provider=stripe in {d}ms")
        d = self._ms(2, 0.5, 20)
        t += d / 1000
        event_id = self._uuid()
        partition = self.rng.randrange(12)
        self._add(s, t, "INFO", "order-service", "queue.publish",
                  f"Published order.created event_id={event_id} to topic=orders partition={partition} in {d}ms")
        self._done(s, t0, t, "POST", path, 201, mods.slow_db)
        t = s.events[-1].t + (20 + self._ms(40, 0.8, 900)) / 1000
        self._offset += self.rng.randrange(1, 40)
        self._add(s, t, "INFO", "notification-worker", "worker.consume",
                  f"Consumed order.created event_id={event_id} partition={partition} offset={self._offset} "
                  f"lag={self.rng.randrange(0, 30)}")
        d = self._ms(45, 0.5, 400)
        t += d / 1000
        self._add(s, t, "INFO", "notification-worker", "worker.email",
                  f"Sent order_confirmation email to user_id={self._user()} took {d / 1000:.3f}s")

    def _search(self, s: Session, t0: float, mods: Mods) -> None:
        word = self.rng.choice(_WORDS)
        path = f"/api/v1/search?q={word}"
        self._add(s, t0, "INFO", "api-gateway", "gw.recv", f"Received GET {path} from {self.rng.choice(self._clients)}")
        t = self._auth(s, t0, "catalog:read", mods)
        if self.rng.random() < 0.004:
            t += self._ms(60, 0.3, 120) / 1000
            trace = tuple(x.format(line=self.rng.randrange(40, 90)) for x in _SEARCH_TRACE)
            self._add(s, t, "ERROR", "search-service", "search.timeout",
                      "Search backend request failed: java.net.SocketTimeoutException: Read timed out", trace)
            self._done(s, t0, t, "GET", path, 504)
            return
        d = self._ms(30, 0.5, 200)
        t += d / 1000
        self._add(s, t, "INFO", "search-service", "search.query",
                  f"Search query={word} page={self.rng.randrange(1, 5)} hits={self.rng.randrange(0, 500)} in {d}ms")
        self._done(s, t0, t, "GET", path, 200)

    def _login(self, s: Session, t0: float, mods: Mods, force_fail: bool = False) -> None:
        path = "/api/v1/login"
        ip = self.rng.choice(self._attackers if force_fail else self._clients)
        self._add(s, t0, "INFO", "api-gateway", "gw.recv", f"Received POST {path} from {ip}")
        user = f"{self.rng.choice(_USERS)}{self.rng.randrange(100)}"
        d = self._ms(40, 0.3, 120)
        t = t0 + d / 1000
        if force_fail or self.rng.random() < LOGIN_FAIL_P:
            self._add(s, t, "WARN", "auth-service", "auth.login_fail",
                      f"Login failed for user={user} from {ip}: invalid credentials")
            self._done(s, t0, t, "POST", path, 401)
            return
        self._add(s, t, "INFO", "auth-service", "auth.login_ok", f"Login succeeded for user={user} method=password in {d}ms")
        self._done(s, t0, t, "POST", path, 200)

    def _health(self, s: Session, t0: float, mods: Mods) -> None:
        self._add(s, t0, "DEBUG", "api-gateway", "gw.health",
                  f"Health probe GET /healthz status=200 in {self.rng.randrange(1, 4)}ms from 10.0.0.{self.rng.randrange(2, 9)}")

    def _evict(self, s: Session, t0: float, mods: Mods) -> None:
        self._add(s, t0, "INFO", "cache-proxy", "cache.evict",
                  f"Evicted {self.rng.randrange(10, 900)} expired keys from shard={self.rng.randrange(8)} "
                  f"memory_used={self.rng.randrange(55, 85)}%")

    def _job(self, s: Session, t0: float, mods: Mods) -> None:
        name = self.rng.choice(_JOBS)
        self._add(s, t0, "INFO", "scheduler", "sched.start", f"Job {name} started run_id={self._uuid()}")
        rows = self.rng.randrange(0, 5000)
        d = self._db_ms(mods, 25)
        t = t0 + d / 1000
        self._add(s, t, "INFO", "order-service", "db.delete",
                  f"Executed DELETE on {name.split('-')[-1]} rows={rows} in {d}ms", mark=mods.slow_db)
        t += self._ms(3, 0.5, 20) / 1000
        self._add(s, t, "INFO", "scheduler", "sched.done",
                  f"Job {name} finished rows={rows} in {max(1, round((t - t0) * 1000))}ms", mark=mods.slow_db)


def _break(s: Session, mode: str) -> None:
    """Drop or reorder a step of a session; the times of the remaining slots stay increasing."""
    keys = [e.key for e in s.events]
    times = [e.t for e in s.events]
    if mode == "missing_auth" and "auth.ok" in keys:
        del s.events[keys.index("auth.ok")]
    elif mode == "missing_cache" and "cache.miss" in keys:
        del s.events[keys.index("cache.miss")]
    elif mode == "missing_cache" and "cache.hit" in keys:
        del s.events[keys.index("cache.hit")]
    elif mode == "auth_after_backend" and "auth.ok" in keys:
        i = keys.index("auth.ok")
        s.events[i], s.events[i + 1] = s.events[i + 1], s.events[i]
        for e, t in zip(s.events, times, strict=False):
            e.t = t
    elif mode == "done_before_backend" and "gw.done" in keys:
        i = keys.index("gw.done")
        done = s.events.pop(i)
        s.events.insert(i - 1, done)
        for e, t in zip(s.events, times, strict=False):
            e.t = t
    s.detail = mode
    for e in s.events:
        e.incident = s.incident
