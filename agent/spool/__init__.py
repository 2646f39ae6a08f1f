"""The durable local outbox and the shipper that drains it to Supabase; the quarantine's way out and the
spool file's backup and restore, for operators."""

from agent.spool.backup import SpoolCounts, backup_spool, restore_spool
from agent.spool.quarantine import (
    QuarantinedRecord,
    discard_quarantined,
    list_quarantined,
    replay_quarantined,
    show_quarantined,
)
from agent.spool.routes import CAUSAL, ROUTES, SHIP_ORDER, Route, collapse
from agent.spool.shipper import Shipper, ShipperStats
from agent.spool.store import DROPPABLE_KINDS, Record, Spool, SpoolState, SpoolStats
from agent.spool.writer import SpoolWriter

__all__ = [
    "CAUSAL",
    "DROPPABLE_KINDS",
    "ROUTES",
    "SHIP_ORDER",
    "QuarantinedRecord",
    "Record",
    "Route",
    "Shipper",
    "ShipperStats",
    "Spool",
    "SpoolCounts",
    "SpoolState",
    "SpoolStats",
    "SpoolWriter",
    "backup_spool",
    "collapse",
    "discard_quarantined",
    "list_quarantined",
    "replay_quarantined",
    "restore_spool",
    "show_quarantined",
]
