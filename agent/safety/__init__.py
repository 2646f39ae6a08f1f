"""The safety kernel: who may command the machine, and what may be written to it.

    rules.py          check_write(param, value, purpose=…)  pure: writable/range/type, pulse valves, watchdog
    interlocks.py     parse_interlocks(rows), TripMonitor    pure: permits and trips on live values
    gate.py           WriteGate, RunPort                     the one path to the PLC's outputs
    runs.py           RunController                          one run at a time, its records, its safe state
    trips.py          TripWatch                              trip interlocks on every frame of a run
    configuration.py  MapGuard, InterlockGuard               a run owns its map; bad config refused, not fatal
    fence.py          MachineFence                           ownership decided at the PLC (plc.owner)
    watchdog.py       Watchdog                               kicks while owner; stops so the PLC takes over
    lease.py          Lease                                  the single-writer lease in Supabase
    ownership.py      Ownership                              take-over and give-up on lease changes
    handover.py       Handover                               blue/green hand-over (admin routes)

Nothing else in the agent writes to the PLC: a test fails if a module outside `gate.py` calls a device's write.
"""

from agent.safety.configuration import InterlockGuard, MapGuard
from agent.safety.fence import MachineFence, owner_id
from agent.safety.gate import GateStats, RunPort, WriteGate
from agent.safety.handover import Handover, HandoverState
from agent.safety.interlocks import (
    Condition,
    Interlock,
    InterlockKind,
    InterlockSet,
    Op,
    TripAction,
    TripMonitor,
    Violation,
    parse_interlocks,
    recipe_conflicts,
)
from agent.safety.lease import Lease, LeaseRole
from agent.safety.ownership import Ownership, run_records_shipped, wants_machine
from agent.safety.rules import OWNER_KEY, WATCHDOG_KEY, WritePurpose, check_write, is_safe_value
from agent.safety.runs import ActiveRun, RunController
from agent.safety.trips import TripWatch
from agent.safety.watchdog import Watchdog

__all__ = [
    "OWNER_KEY",
    "WATCHDOG_KEY",
    "ActiveRun",
    "Condition",
    "GateStats",
    "Handover",
    "HandoverState",
    "Interlock",
    "InterlockGuard",
    "InterlockKind",
    "InterlockSet",
    "Lease",
    "LeaseRole",
    "MachineFence",
    "MapGuard",
    "Op",
    "Ownership",
    "RunController",
    "RunPort",
    "TripAction",
    "TripMonitor",
    "TripWatch",
    "Violation",
    "Watchdog",
    "WriteGate",
    "WritePurpose",
    "check_write",
    "is_safe_value",
    "owner_id",
    "parse_interlocks",
    "recipe_conflicts",
    "run_records_shipped",
    "wants_machine",
]
