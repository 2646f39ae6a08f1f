"""The operator console's model (docs/DESIGN.md §6 "Operator console"): what the page at `/` shows.

`view.build_view` is the pure core (`inputs.ConsoleInputs` → JSON-able view model; the state and the
degraded conditions are `verdicts`, the words `words`); `memory` keeps the bounded history it
needs (trend ring buffer, run journal, spool depth); `feed.Console` connects them to the live agent;
`alarms` is the shape of a process alarm the console reads (a Protocol). Serving it is `agent.http`'s job.
"""

from agent.console.alarms import ALARM_STATES, AlarmLike, AlarmSource, no_alarms
from agent.console.feed import Console
from agent.console.inputs import ConsoleInputs
from agent.console.memory import (
    MAX_RECENT_RUNS,
    MAX_TIMELINE,
    TREND_RESOLUTION_S,
    TREND_WINDOW_S,
    CurrentRun,
    FinishedRun,
    RunJournal,
    RunLike,
    SpoolGauge,
    TimelineEntry,
    TrendBuffer,
)
from agent.console.view import TREND_CHARTS, TrendChart, build_view, trend_keys
from agent.console.words import component_title, duration_text, number_text, step_text

__all__ = [
    "ALARM_STATES",
    "MAX_RECENT_RUNS",
    "MAX_TIMELINE",
    "TREND_CHARTS",
    "TREND_RESOLUTION_S",
    "TREND_WINDOW_S",
    "AlarmLike",
    "AlarmSource",
    "Console",
    "ConsoleInputs",
    "CurrentRun",
    "FinishedRun",
    "RunJournal",
    "RunLike",
    "SpoolGauge",
    "TimelineEntry",
    "TrendBuffer",
    "TrendChart",
    "build_view",
    "component_title",
    "duration_text",
    "no_alarms",
    "number_text",
    "step_text",
    "trend_keys",
]
