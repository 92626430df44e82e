"""The audit trail's rules: each entry chained to the one before, the head anchored outside.

Two hash schemes, each entry keeping the one it was written with:

- **v1** (the first entries ever written): SHA-256 over the entry with its
  time spelled as the writer's clock gave it. Times that were written with an
  offset (+08:00) come back from the database in UTC, so v1 is checked
  against the same instant spelled in every whole-quarter-hour offset: the
  instant is what the hash commits to, the spelling of its zone is not.
- **v2** (every entry written now): HMAC-SHA256, under the audit key kept
  outside the database, of a canonical form — the instant in UTC with
  microseconds, the fields under sorted names, the scheme's version and the
  previous entry's hash. Nobody without the key can recompute a v2 chain,
  and a v1 entry after a v2 one is a downgrade, refused.

Deleting the newest entries leaves a chain that still links, so the head is
also *anchored*: from time to time (seq, hash) of the newest entry, sealed
with the same key, is appended to a file outside the database. A chain that
no longer holds an anchored entry, or holds it with another hash, is broken.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

GENESIS = "0" * 64
# The placeholder audit key ([app] audit_key), accepted only in the demo environment.
DEMO_AUDIT_KEY = "change-me-demo-audit-key"
V1, V2 = 1, 2
CURRENT = V2

# v1 times were spelled in their writer's offset: UTC first, then every quarter hour
_OFFSETS = [timedelta(0)] + [
    timedelta(minutes=15 * q) for q in range(-14 * 4, 14 * 4 + 1) if q != 0
]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime  # aware
    actor: str
    action: str
    entity: str
    entity_id: str
    before: str  # canonical JSON
    after: str  # canonical JSON
    prev_hash: str
    hash: str
    seq: int | None = None
    version: int = V1


def canonical_json(value: object) -> str:
    """One spelling per value: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def utc_instant(at: datetime) -> str:
    """An instant's one spelling: UTC, microseconds, `Z`."""
    if at.tzinfo is None:
        raise ValueError("audit times must be aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: str,
    after: str,
    prev_hash: str,
) -> str:
    """The v1 hash: SHA-256 of the entry with its time as `at` spells it (kept to verify v1)."""
    if at.tzinfo is None:
        raise ValueError("audit times must be aware")
    material = canonical_json(
        [
            at.isoformat(timespec="microseconds"),
            actor,
            action,
            entity,
            entity_id,
            before,
            after,
            prev_hash,
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def entry_mac(
    key: bytes,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: str,
    after: str,
    prev_hash: str,
) -> str:
    """The v2 hash: HMAC-SHA256 under the audit key of the entry's canonical form."""
    if not key:
        raise ValueError("the audit key cannot be empty")
    material = canonical_json(
        {
            "v": V2,
            "at": utc_instant(at),
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "before": before,
            "after": after,
            "prev_hash": prev_hash,
        }
    )
    return hmac.new(key, material.encode("utf-8"), hashlib.sha256).hexdigest()


def chain_entry(
    *,
    key: bytes,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: object,
    after: object,
    prev_hash: str,
) -> AuditRecord:
    """A new entry after `prev_hash`, in the current scheme, its time in UTC."""
    at = at.astimezone(UTC)
    before_json, after_json = canonical_json(before), canonical_json(after)
    digest = entry_mac(
        key,
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before_json,
        after=after_json,
        prev_hash=prev_hash,
    )
    return AuditRecord(
        at,
        actor,
        action,
        entity,
        entity_id,
        before_json,
        after_json,
        prev_hash,
        digest,
        version=CURRENT,
    )


def holds(record: AuditRecord, key: bytes) -> bool:
    """Does the entry's content give its hash, under the scheme it was written with?"""
    fields = {
        "actor": record.actor,
        "action": record.action,
        "entity": record.entity,
        "entity_id": record.entity_id,
        "before": record.before,
        "after": record.after,
        "prev_hash": record.prev_hash,
    }
    if record.version == V2:
        return hmac.compare_digest(record.hash, entry_mac(key, at=record.at, **fields))
    if record.version != V1:
        return False
    return any(
        entry_hash(at=record.at.astimezone(timezone(offset)), **fields) == record.hash
        for offset in _OFFSETS
    )


# -- the anchor: the head, sealed, kept outside the database -----------------------


@dataclass(frozen=True, slots=True)
class Anchor:
    """The newest entry at `at`: its seq and hash, and how many entries the log held."""

    at: datetime
    seq: int
    hash: str
    entries: int
    mac: str = ""

    def material(self) -> str:
        return canonical_json(
            {
                "at": utc_instant(self.at),
                "seq": self.seq,
                "hash": self.hash,
                "entries": self.entries,
            }
        )


@dataclass(frozen=True, slots=True)
class AnchorReading:
    """What an anchor file holds: its anchors in order, and the lines that are not one."""

    anchors: list[Anchor] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)  # line numbers


def seal_anchor(key: bytes, *, at: datetime, seq: int, hash: str, entries: int) -> Anchor:
    unsealed = Anchor(at.astimezone(UTC), seq, hash, entries)
    mac = hmac.new(key, unsealed.material().encode("utf-8"), hashlib.sha256).hexdigest()
    return Anchor(unsealed.at, seq, hash, entries, mac)


def anchor_sealed(anchor: Anchor, key: bytes) -> bool:
    expected = hmac.new(key, anchor.material().encode("utf-8"), hashlib.sha256).hexdigest()
    return hmac.compare_digest(anchor.mac, expected)


def anchor_line(anchor: Anchor) -> str:
    return canonical_json(
        {
            "at": utc_instant(anchor.at),
            "seq": anchor.seq,
            "hash": anchor.hash,
            "entries": anchor.entries,
            "mac": anchor.mac,
        }
    )


def parse_anchor(line: str) -> Anchor:
    """One line of the anchor file; ValueError if it is not one."""
    try:
        data = json.loads(line)
        at = datetime.strptime(data["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        anchor = Anchor(at, int(data["seq"]), str(data["hash"]), int(data["entries"]), data["mac"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an anchor line: {exc}") from None
    if not isinstance(anchor.mac, str):
        raise ValueError("not an anchor line: its mac is not text")
    return anchor


# -- verification -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int | None
    problem: str


@dataclass
class _Walk:
    key: bytes
    anchored: dict[int, Anchor]
    breaks: list[ChainBreak]
    previous: str = GENESIS
    seen_v2: bool = False
    last_seq: int = 0
    entries: int = 0

    def step(self, record: AuditRecord) -> None:
        self.entries += 1
        self.last_seq = record.seq or self.last_seq
        if record.prev_hash != self.previous:
            self._break(
                record, "does not follow the entry before it (an entry was removed or reordered)"
            )
        if not holds(record, self.key):
            problem = "its content does not match its hash (the entry was changed"
            self._break(record, problem + (", or the audit key)" if record.version == V2 else ")"))
        if record.version == V2:
            self.seen_v2 = True
        elif self.seen_v2:
            self._break(record, "is of the old hash scheme after the new one began (rewritten)")
        anchor = self.anchored.get(record.seq or 0)
        if anchor is not None and anchor.hash != record.hash:
            self._break(
                record,
                f"differs from the entry anchored at {utc_instant(anchor.at)} "
                "(the chain was rewritten)",
            )
        self.previous = record.hash

    def _break(self, record: AuditRecord, problem: str) -> None:
        self.breaks.append(ChainBreak(record.seq, problem))


def verify_chain(
    records: Iterable[AuditRecord], key: bytes, anchors: Sequence[Anchor] = ()
) -> list[ChainBreak]:
    """Every place the chain does not hold, in order; empty when it is intact.

    With anchors, also every anchor that is not sealed by the key, and an
    anchored head the log no longer reaches (its newest entries deleted or
    the table emptied).
    """
    breaks: list[ChainBreak] = []
    sealed: dict[int, Anchor] = {}
    for number, anchor in enumerate(anchors, 1):
        if anchor_sealed(anchor, key):
            sealed[anchor.seq] = anchor
        else:
            breaks.append(
                ChainBreak(
                    None,
                    f"anchor {number} (seq {anchor.seq}) is not sealed by the audit key "
                    "(forged, or the key was changed)",
                )
            )
    walk = _Walk(key, sealed, breaks)
    for record in records:
        walk.step(record)
    if sealed:
        head = sealed[max(sealed)]
        if head.seq > walk.last_seq:
            breaks.append(
                ChainBreak(
                    None,
                    f"the log ends at seq {walk.last_seq} ({walk.entries} entries) but held "
                    f"seq {head.seq} ({head.entries} entries) at {utc_instant(head.at)}: "
                    "its newest entries were deleted or the table emptied",
                )
            )
    return breaks
