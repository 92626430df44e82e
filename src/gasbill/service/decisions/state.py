"""The decision state kept per account: what has fired, and the valve."""

from __future__ import annotations

from gasbill.service.ports import DecisionStateRecord, UnitOfWork


def state_row(uow: UnitOfWork, account_id: int) -> DecisionStateRecord:
    """The account's decision state, locked; created (all armed, valve open) on first use."""
    return uow.decision_states.locked(account_id)
