"""Decisions on every balance change and in a periodic sweep (DESIGN §7).

`decide_account` runs inside the caller's unit of work, right after what
changed the balance (billing, a payment, a top-up's ending), and never
commits: a warning is recorded, and a valve command queued, in the same
transaction as the change behind it. It judges the account's balance (the
ledger's available prepaid money in system mode; the meter's reported
balance plus top-ups in flight in meter mode), runs the pure decision
functions with the state they last returned, and stores their new state.

The valve state follows the commands: `on_valve_command_ended` is called when
a `setvalveoff`/`setvalveon` of ours ends; `decide_account` also catches up
with a pending command that ended without that call (a cancellation, say).
"""

from gasbill.service.decisions.account import decide_account
from gasbill.service.decisions.balance import judge_balance, recent_use
from gasbill.service.decisions.outcomes import Decision, DisplaySync, JudgedBalance, SweepOutcome
from gasbill.service.decisions.policies import ACTOR, WINDOW_DAYS, valve_policy, warning_policy
from gasbill.service.decisions.state import state_row
from gasbill.service.decisions.sweep import account_decider, sweep
from gasbill.service.decisions.valves import on_valve_command_ended

__all__ = [
    "ACTOR",
    "WINDOW_DAYS",
    "Decision",
    "DisplaySync",
    "JudgedBalance",
    "SweepOutcome",
    "account_decider",
    "decide_account",
    "judge_balance",
    "on_valve_command_ended",
    "recent_use",
    "state_row",
    "sweep",
    "valve_policy",
    "warning_policy",
]
