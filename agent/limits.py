"""Bounded work: every limit on the size of what a user may send, in one place, each with how it was chosen.

A recipe, a command payload and the text quoted back in an error are all input from someone else; each
limit below keeps the agent's work (CPU on the event loop, memory, the size of a row it writes) small
whatever that input is. Figures: `bench/recipe_limits.py`, recorded in bench/RESULTS.md ("Recipe limits").

Recipes (checked by `agent.recipes.validate`, every breach reported as a `Problem`, nothing expanded first):

- `MAX_PLAN_STEPS` = 200,000 executable steps after loop expansion. A real ALD recipe is at most ~40,000
  (10,000 cycles × 4 steps); 5× that. The plan is compact (loops are not expanded in memory), so compiling
  a 200,000-step plan from a 5-step tree takes 0.1 ms and 10 kB (tracemalloc peak); the executor's walk
  costs ~3 µs a step, spread over the run. What the limit bounds is what a run writes: one `run_steps`
  record per step. Expanded eagerly, as before, 200,000 steps took 2.0–4.8 s and 145 MB, 40,000 took
  0.35–0.73 s and 29 MB (quiet vs loaded box).
- `MAX_RECIPE_STEPS` = 1,000 steps as stored (rows of `recipe_steps`, or nodes of a document), one page of
  PostgREST's `max_rows`. The tree itself is loaded, validated, compiled and snapshotted: at the limit
  `from_rows` 5–10 ms and validate + compile 25–45 ms of CPU (in a thread), peak 1.8 MB. It is still a burst
  of allocation: at 4,000 rows it set off full garbage collections of 70–330 ms that cost the 5 Hz sampler a
  tick in 2 of 5 runs; at 1,000, none in 6. The seeded recipes have 10 and 15 rows; a long deposition is a
  loop (5 rows for 10,000 cycles), so 1,000 is ~100× a real recipe.
- `MAX_SNAPSHOT_BYTES` = 512 kB: a run's row carries the recipe as JSON (`process_runs.recipe_snapshot`) in
  one request, and the local stack refuses a body over 1 MiB (a refused row is quarantined: the run would
  never appear on the dashboard). Half of that leaves room for the row and any gateway in front of a
  hosted project. It also bounds what long step names can add.
- `MAX_LOOP_COUNT` = 100,000 iterations: 10× the longest real deposition (10,000 cycles).
- `MAX_VALVE_PULSE_MS` = 10 s: ALD precursor pulses are 10 ms–2 s; a valve held open longer is not a pulse
  (it floods the chamber with precursor) and belongs in a process the interlocks can watch.
- `MAX_PURGE_MS`, `MAX_WAIT_MS`, `MAX_WAIT_TIMEOUT_MS` = 1 h each: long enough for a heater to settle from
  cold (the seed allows 30 min), short enough that a typo (an hour typed as ms × 1000) is caught.
- `MAX_RECIPE_MS` = 72 h of planned time (valve, purge and wait durations; a parameter wait's timeout is an
  upper bound, not a plan): three days, beyond the longest deposition a tool runs unattended.
- `MAX_DEPTH` = 8 levels of nesting: the seeded nanolaminate needs 3.
- `MAX_NAME_CHARS` = 200 for a step's name, as the database allows for a recipe's: a name is a label on the
  dashboard, and 1,000 of them must fit in the run's snapshot.

Commands and numbers:

- `MAX_KEY_CHARS` = 200: a register-map key is a dotted identifier (~30 characters in the reference map);
  also the bound on a purge's informational `gas` name.
- `MAX_VALVE_NUMBER` = 1,000: pulse valves are numbered from 1 (the reference reactor has 6).
- `MAX_REASON_CHARS` = 500: the free-text reason a stop/pause/resume may carry.
- `MIN_INTEGER`/`MAX_INTEGER`: the 64-bit range (int64 … uint64). No PLC register holds more; anything
  beyond is refused when the command or recipe is read, never passed on to fail in a float conversion.

Errors:

- `MAX_QUOTE_CHARS` = 200: one input quoted inside an error ("unknown parameter '…'").
- `MAX_ERROR_CHARS` = 2,000: a whole error text written to a row (`machine_commands.error`): enough for a
  header and a dozen located problems, the dashboard shows no more.
- `MAX_LISTED_PROBLEMS` = 20: an invalid recipe's error lists this many problems, then says how many more.
"""

from __future__ import annotations

__all__ = [
    "MAX_DEPTH",
    "MAX_ERROR_CHARS",
    "MAX_INTEGER",
    "MAX_KEY_CHARS",
    "MAX_LISTED_PROBLEMS",
    "MAX_LOOP_COUNT",
    "MAX_NAME_CHARS",
    "MAX_PLAN_STEPS",
    "MAX_PURGE_MS",
    "MAX_QUOTE_CHARS",
    "MAX_REASON_CHARS",
    "MAX_RECIPE_MS",
    "MAX_RECIPE_STEPS",
    "MAX_SNAPSHOT_BYTES",
    "MAX_VALVE_NUMBER",
    "MAX_VALVE_PULSE_MS",
    "MAX_WAIT_MS",
    "MAX_WAIT_TIMEOUT_MS",
    "MIN_INTEGER",
]

_HOUR_MS = 3_600_000

MAX_PLAN_STEPS = 200_000
MAX_RECIPE_STEPS = 1_000
MAX_SNAPSHOT_BYTES = 512 * 1024
MAX_LOOP_COUNT = 100_000
MAX_DEPTH = 8
MAX_NAME_CHARS = 200
MAX_VALVE_PULSE_MS = 10_000
MAX_PURGE_MS = _HOUR_MS
MAX_WAIT_MS = _HOUR_MS
MAX_WAIT_TIMEOUT_MS = _HOUR_MS
MAX_RECIPE_MS = 72 * _HOUR_MS

MAX_KEY_CHARS = 200
MAX_REASON_CHARS = 500
MAX_VALVE_NUMBER = 1_000
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**64 - 1

MAX_QUOTE_CHARS = 200
MAX_ERROR_CHARS = 2_000
MAX_LISTED_PROBLEMS = 20
