"""The durable alert spool: SQLite in WAL mode with full fsync, written before any delivery is tried.

Tables (format 1, recorded in `meta`):
- `notifications(seq, alert_id, grp, created, body)`: one row per notification; `seq` is AUTOINCREMENT so
  it is never reused, which makes the idempotency key `<fingerprint>-<seq>` unique for the spool's life.
- `deliveries(output, seq, attempts, next_at, last_error)`: what an output still owes. Delivery order is
  `seq` order per output; an acknowledged row is deleted, and a notification row goes once no output
  owes it.
- `dead_letter(...)`: notifications an output rejected (4xx) or gave up on (retry limit, spool full),
  kept with the reason for an operator.
- `open_alerts(fingerprint, body)`: the router's dedup state, so a restart neither re-notifies an open
  condition nor forgets to resolve it.

One connection is shared by the router and the delivery threads behind a lock: SQLite serialises writers
anyway, and the rows are small. `synchronous=FULL` makes a commit survive power loss, which is the promise
`AlertRouter.submit` makes when it returns.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from agent.alerting.payload import alert_from_json, alert_to_json
from agent.errors import LogwardenError
from agent.state import set_aside
from agent.types import Alert

log = structlog.get_logger("logwarden.alerting.spool")

FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, grp TEXT NOT NULL,
    created REAL NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    output TEXT NOT NULL, seq INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (output, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_seq ON deliveries (seq);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT, output TEXT NOT NULL, seq INTEGER NOT NULL, alert_id TEXT NOT NULL,
    body TEXT NOT NULL, reason TEXT NOT NULL, attempts INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS open_alerts (fingerprint TEXT PRIMARY KEY, body TEXT NOT NULL);
"""


@dataclass(slots=True)
class Notification:
    """A notification to spool: the alert (its id is assigned here), its window group and its outputs."""

    alert: Alert
    grp: str
    outputs: Sequence[str]


@dataclass(slots=True)
class Pending:
    seq: int
    grp: str
    created: float
    attempts: int
    next_at: float
    alert: Alert


class Spool:
    def __init__(
        self, path: Path, *, max_pending: int = 100_000, max_dead_letters: int = 10_000, busy_timeout_s: float = 10.0
    ) -> None:
        self.path = path
        self.max_pending = max_pending
        self.max_dead_letters = max_dead_letters
        self.busy_timeout_s = busy_timeout_s
        self.dropped_full = 0
        """Notifications pushed out of a full spool (oldest first) since start."""
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open(path, busy_timeout_s)
        except sqlite3.OperationalError as exc:
            # Locked, busy, unopenable or an I/O error says nothing about the file's content: setting it aside
            # (and deleting its WAL) would hide or lose the pending alerts of a healthy spool, e.g. one held by a
            # second daemon on the same state_dir. Refuse to start instead, naming the file.
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise LogwardenError(
                    f"{path}: the alert spool is locked by another process (is another logwarden using this "
                    "state_dir?)"
                ) from None
            raise LogwardenError(f"{path}: the alert spool cannot be opened: {exc}") from None
        except sqlite3.DatabaseError as exc:
            # A spool we cannot read must not stop alerting: keep it for inspection and start empty.
            kept = set_aside(path)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(str(path) + suffix).unlink()
            log.error("spool_set_aside", path=str(path), kept=str(kept), error=str(exc))
            self._db = self._open(path, busy_timeout_s)

    @staticmethod
    def _open(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_s)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
            elif row[0] != str(FORMAT_VERSION):
                raise sqlite3.DatabaseError(f"unsupported spool format_version {row[0]!r}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    @contextlib.contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction; `durable=False` skips the fsync (for acks and retry bookkeeping).

        Losing an ack to a power cut only means one more delivery with the same idempotency key, while
        an fsync per ack would bound delivery to the disk's flush rate. The next durable commit flushes
        the WAL, non-durable commits included.
        """
        with self._lock:
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    def commit(
        self,
        notifications: Sequence[Notification],
        now: float,
        *,
        open_upserts: dict[str, dict[str, Any]] | None = None,
        open_deletes: Sequence[str] = (),
    ) -> list[Alert]:
        """Spool notifications and the router's state change in one transaction; returns the alerts with ids.

        An output already holding `max_pending` rows loses its oldest to the dead-letter table (reason
        `spool full`): a receiver gone for days must not fill the disk.
        """
        out: list[Alert] = []
        touched: set[str] = set()
        with self._tx() as db:
            for n in notifications:
                if not n.outputs:
                    continue
                cur = db.execute(
                    "INSERT INTO notifications (alert_id, grp, created, body) VALUES ('', ?, ?, '')", (n.grp, now)
                )
                seq = int(cur.lastrowid or 0)
                n.alert.id = f"{n.alert.fingerprint}-{seq}"
                db.execute(
                    "UPDATE notifications SET alert_id=?, body=? WHERE seq=?", (n.alert.id, alert_to_json(n.alert), seq)
                )
                db.executemany("INSERT INTO deliveries (output, seq) VALUES (?, ?)", [(o, seq) for o in n.outputs])
                touched.update(n.outputs)
                out.append(n.alert)
            for fp, body in (open_upserts or {}).items():
                db.execute("INSERT OR REPLACE INTO open_alerts VALUES (?, ?)", (fp, json.dumps(body)))
            for fp in open_deletes:
                db.execute("DELETE FROM open_alerts WHERE fingerprint=?", (fp,))
            for output in touched:
                self._trim(db, output, now)
        return out

    def _trim(self, db: sqlite3.Connection, output: str, now: float) -> None:
        (count,) = db.execute("SELECT COUNT(*) FROM deliveries WHERE output=?", (output,)).fetchone()
        excess = int(count) - self.max_pending
        if excess <= 0:
            return
        seqs = [r[0] for r in db.execute(
            "SELECT seq FROM deliveries WHERE output=? ORDER BY seq LIMIT ?", (output, excess)
        )]
        self._dead_letter(db, output, seqs, "spool full: oldest pending notification dropped", now)
        before, self.dropped_full = self.dropped_full, self.dropped_full + len(seqs)
        if before.bit_length() != self.dropped_full.bit_length():  # at 1, 2, 4, 8, ... drops: not one per alert
            log.error("spool_full", output=output, dropped=self.dropped_full, max_pending=self.max_pending)

    def head(self, output: str, limit: int, *, by_group: bool) -> list[Pending]:
        """The oldest pending notifications of an output: its next request, in order.

        With `by_group` only the head's window group is taken, so one message carries one window. Unreadable
        rows are dead-lettered on the way; an empty answer means nothing readable is pending, since the
        delivery thread then sleeps until the next commit wakes it.
        """
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT d.seq, n.grp, n.created, d.attempts, d.next_at, n.body FROM deliveries d "
                    "JOIN notifications n ON n.seq = d.seq WHERE d.output=? ORDER BY d.seq LIMIT ?",
                    (output, limit),
                ).fetchall()
            out: list[Pending] = []
            skipped = False
            for seq, grp, created, attempts, next_at, body in rows:
                if out and by_group and grp != out[0].grp:
                    break
                try:
                    alert = alert_from_json(body)
                except ValueError as exc:
                    with self._tx() as db:
                        self._dead_letter(db, output, [seq], f"unreadable spool row: {exc}", 0.0)
                    log.error("spool_row_unreadable", output=output, seq=seq, error=str(exc))
                    skipped = True
                    break  # what follows belongs to the next request, read afresh
                out.append(Pending(seq, grp, created, attempts, next_at, alert))
            if out or not skipped:
                return out

    def ack(self, output: str, seqs: Sequence[int]) -> None:
        with self._tx(durable=False) as db:
            db.executemany("DELETE FROM deliveries WHERE output=? AND seq=?", [(output, s) for s in seqs])
            self._collect(db, seqs)

    def retry_later(self, output: str, seqs: Sequence[int], attempts: int, next_at: float, error: str) -> None:
        with self._tx(durable=False) as db:
            db.executemany(
                "UPDATE deliveries SET attempts=?, next_at=?, last_error=? WHERE output=? AND seq=?",
                [(attempts, next_at, error[:2000], output, s) for s in seqs],
            )

    def dead_letter(self, output: str, seqs: Sequence[int], reason: str, now: float) -> None:
        with self._tx() as db:
            self._dead_letter(db, output, seqs, reason, now)

    def _dead_letter(self, db: sqlite3.Connection, output: str, seqs: Sequence[int], reason: str, now: float) -> None:
        for seq in seqs:
            db.execute(
                "INSERT INTO dead_letter (output, seq, alert_id, body, reason, attempts, at) "
                "SELECT d.output, d.seq, n.alert_id, n.body, ?, d.attempts, ? FROM deliveries d "
                "JOIN notifications n ON n.seq = d.seq WHERE d.output=? AND d.seq=?",
                (reason[:4000], now, output, seq),
            )
            db.execute("DELETE FROM deliveries WHERE output=? AND seq=?", (output, seq))
        # Moving rows from `deliveries` to here frees nothing: bound the table, or a receiver gone for days
        # fills the disk through it. The ids only grow, so this keeps the newest `max_dead_letters`.
        db.execute("DELETE FROM dead_letter WHERE id <= (SELECT MAX(id) FROM dead_letter) - ?",
                   (self.max_dead_letters,))
        self._collect(db, seqs)

    @staticmethod
    def _collect(db: sqlite3.Connection, seqs: Sequence[int]) -> None:
        db.executemany(
            "DELETE FROM notifications WHERE seq=? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq=?)",
            [(s, s) for s in seqs],
        )

    def pending(self, output: str | None = None) -> int:
        with self._lock:
            if output is None:
                row = self._db.execute("SELECT COUNT(*) FROM deliveries").fetchone()
            else:
                row = self._db.execute("SELECT COUNT(*) FROM deliveries WHERE output=?", (output,)).fetchone()
        return int(row[0])

    def dead_letters(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """(output, alert id, reason) of the newest dead letters, for operators and tests."""
        with self._lock:
            rows = self._db.execute(
                "SELECT output, alert_id, reason FROM dead_letter ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def load_open(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT fingerprint, body FROM open_alerts").fetchall()
        out: dict[str, dict[str, Any]] = {}
        for fp, body in rows:
            try:
                doc = json.loads(body)
            except json.JSONDecodeError:
                continue
            if isinstance(doc, dict):
                out[str(fp)] = doc
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
