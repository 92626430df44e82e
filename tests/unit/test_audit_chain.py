"""The audit chain's rules, pure: canonical v2 entries, v1 entries still checked, anchors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from gasbill.domain.audit import (
    GENESIS,
    V1,
    AuditRecord,
    canonical_json,
    chain_entry,
    entry_hash,
    seal_anchor,
    verify_chain,
)

KEY = b"a key kept outside the database"
BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=BEIJING)


def chain(n: int, *, key: bytes = KEY, zone: timezone = BEIJING) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for i in range(n):
        record = chain_entry(
            key=key,
            at=(T0 + timedelta(minutes=i)).astimezone(zone),
            actor="clerk1",
            action="payment.take",
            entity="account",
            entity_id=str(i),
            before={"balance": i, "名": "王芳"},
            after={"balance": i + 1},
            prev_hash=prev,
        )
        records.append(replace(record, seq=i + 1, at=record.at.astimezone(UTC)))  # read back
        prev = record.hash
    return records


def v1_chain(n: int, zone: timezone) -> list[AuditRecord]:
    """Entries as the first scheme wrote them: the time hashed in its writer's offset."""
    records, prev = [], GENESIS
    for i in range(n):
        at = (T0 + timedelta(minutes=i)).astimezone(zone)
        before, after = canonical_json({"n": i}), canonical_json(None)
        digest = entry_hash(
            at=at,
            actor="clerk1",
            action="payment.take",
            entity="account",
            entity_id=str(i),
            before=before,
            after=after,
            prev_hash=prev,
        )
        stored_at = at.astimezone(UTC)  # what the database gives back
        records.append(
            AuditRecord(
                stored_at,
                "clerk1",
                "payment.take",
                "account",
                str(i),
                before,
                after,
                prev,
                digest,
                i + 1,
                V1,
            )
        )
        prev = digest
    return records


def test_entries_written_in_any_offset_verify_once_read_back_in_utc():
    for zone in (BEIJING, UTC, timezone(timedelta(hours=-5, minutes=-30))):
        assert verify_chain(chain(5, zone=zone), KEY) == []


def test_the_first_schemes_entries_written_at_plus_eight_still_verify():
    old = v1_chain(4, BEIJING)
    assert verify_chain(old, KEY) == []
    # …and new entries continue the old chain
    new = chain_entry(
        key=KEY,
        at=T0,
        actor="a",
        action="x",
        entity="e",
        entity_id="1",
        before=None,
        after=None,
        prev_hash=old[-1].hash,
    )
    assert verify_chain([*old, replace(new, seq=5)], KEY) == []


def test_a_changed_v1_entry_is_still_found():
    old = v1_chain(3, BEIJING)
    old[1] = replace(old[1], actor="mallory")
    assert [b.seq for b in verify_chain(old, KEY)] == [2]
    moved = v1_chain(3, BEIJING)
    moved[1] = replace(moved[1], at=moved[1].at + timedelta(seconds=1))
    assert [b.seq for b in verify_chain(moved, KEY)] == [2]


def test_a_chain_recomputed_without_the_key_does_not_verify():
    forged = chain(4, key=b"a guessed key")
    breaks = verify_chain(forged, KEY)
    assert [b.seq for b in breaks] == [1, 2, 3, 4]
    assert "audit key" in breaks[0].problem


def test_a_v1_entry_after_a_v2_one_is_a_downgrade():
    records = chain(2)
    old = v1_chain(1, UTC)[0]
    downgraded = AuditRecord(
        records[1].at,
        records[1].actor,
        records[1].action,
        records[1].entity,
        records[1].entity_id,
        records[1].before,
        records[1].after,
        records[1].prev_hash,
        entry_hash(
            at=records[1].at,
            actor=records[1].actor,
            action=records[1].action,
            entity=records[1].entity,
            entity_id=records[1].entity_id,
            before=records[1].before,
            after=records[1].after,
            prev_hash=records[1].prev_hash,
        ),
        2,
        V1,
    )
    assert old.version == V1
    problems = [b.problem for b in verify_chain([records[0], downgraded], KEY)]
    assert any("old hash scheme" in p for p in problems)


def anchor_of(record: AuditRecord, entries: int, key: bytes = KEY):
    assert record.seq is not None
    return seal_anchor(key, at=T0, seq=record.seq, hash=record.hash, entries=entries)


def test_deleting_the_newest_entries_is_found_by_the_anchor():
    records = chain(6)
    anchors = [anchor_of(records[2], 3), anchor_of(records[5], 6)]
    assert verify_chain(records, KEY, anchors) == []
    breaks = verify_chain(records[:4], KEY, anchors)
    assert len(breaks) == 1
    assert "newest entries were deleted" in breaks[0].problem
    emptied = verify_chain([], KEY, anchors)
    assert "ends at seq 0 (0 entries)" in emptied[0].problem


def test_a_rewritten_anchored_entry_is_found():
    records = chain(3)
    anchors = [anchor_of(records[2], 3)]
    assert chain(3, zone=UTC) == records  # one canonical form, whatever the writer's zone
    rewritten = v1_chain(3, UTC)  # recomputed in the keyless first scheme: every link holds
    assert verify_chain(rewritten, KEY) == []
    assert any("anchored" in b.problem for b in verify_chain(rewritten, KEY, anchors))


def test_an_anchor_not_sealed_by_the_key_is_refused():
    records = chain(2)
    forged = anchor_of(records[1], 2, key=b"not the key")
    breaks = verify_chain(records, KEY, [forged])
    assert len(breaks) == 1
    assert "not sealed" in breaks[0].problem
