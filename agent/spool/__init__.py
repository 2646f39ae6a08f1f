"""The durable local outbox and the shipper that drains it to Supabase."""

from agent.spool.routes import ROUTES, SHIP_ORDER, Route, collapse
from agent.spool.shipper import Shipper, ShipperStats
from agent.spool.store import DROPPABLE_KINDS, Record, Spool, SpoolState, SpoolStats
from agent.spool.writer import SpoolWriter

__all__ = [
    "DROPPABLE_KINDS",
    "ROUTES",
    "SHIP_ORDER",
    "Record",
    "Route",
    "Shipper",
    "ShipperStats",
    "Spool",
    "SpoolState",
    "SpoolStats",
    "SpoolWriter",
    "collapse",
]
