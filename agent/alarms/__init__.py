"""Process alarms (ISA-18.2 practice): per-parameter limits evaluated on every frame, trip interlocks as alarms,
acknowledgement through the command table, every move shipped through the spool.

    model.py      ActiveAlarm, AlarmLimit, parse_alarm_limits, states   pure: alarms and limits as data
    evaluator.py  LimitEvaluator                                         pure: on-delay, deadband, raise/clear
    book.py       AlarmBook                                              the live book: frames, trips, acks
    store.py      load_open_alarms, keep_cached, keep_in_sync            restart and hand-over: Supabase, cache, spool
"""

from agent.alarms.book import ACK_ALL, AlarmBook
from agent.alarms.evaluator import Cleared, LimitEvaluator, Raised
from agent.alarms.model import (
    LIMIT_KINDS,
    SEVERITIES,
    ActiveAlarm,
    AlarmKind,
    AlarmLimit,
    AlarmState,
    LimitSet,
    Severity,
    alarm_from_row,
    alarm_row,
    parse_alarm_limits,
)
from agent.alarms.store import keep_cached, keep_in_sync, load_open_alarms

__all__ = [
    "ACK_ALL",
    "LIMIT_KINDS",
    "SEVERITIES",
    "ActiveAlarm",
    "AlarmBook",
    "AlarmKind",
    "AlarmLimit",
    "AlarmState",
    "Cleared",
    "LimitEvaluator",
    "LimitSet",
    "Raised",
    "Severity",
    "alarm_from_row",
    "alarm_row",
    "keep_cached",
    "keep_in_sync",
    "load_open_alarms",
    "parse_alarm_limits",
]
