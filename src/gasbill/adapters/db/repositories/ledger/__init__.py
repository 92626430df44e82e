"""The ledger in the database (DESIGN §6).

store   SqlLedger: the domain rules over ledger_account and transfer
rows    the tables as Core, ledger accounts by code and id, rows <-> Transfer
batch   what a batch of transfers needs, read in bulk (record_many)
sums    balances derived from transfers, and the whole-ledger checks
"""

from __future__ import annotations

from gasbill.adapters.db.repositories.ledger.rows import AccountInfo
from gasbill.adapters.db.repositories.ledger.store import SqlLedger

__all__ = ["AccountInfo", "SqlLedger"]
