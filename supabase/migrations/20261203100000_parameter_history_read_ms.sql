-- parameter_history.read_ms: how long the frame's full PLC read took, milliseconds (issue 14, item 2).
--
-- A frame's `ts` is the midpoint of its read (docs/DESIGN.md §5 "Sampling"), so every value in it was acquired
-- within ts ± read_ms/2: with the duration in the row, a reader knows how precise each timestamp is, and a slow
-- read (a slow address range, a busy PLC) is visible in the history itself, not only in /metrics.
--
-- Nullable, no default: rows written before this column, and frames spooled by an older agent and replayed now
-- (their payload has no `read_ms` key), read NULL = not recorded. Added on the partitioned parent, so it lands on
-- every partition (the default one included) and on every partition created later (`partition of` copies the
-- parent's columns and checks; create_parameter_history_partition moves rows with `like`/`select *`, which
-- follow the parent's column list).
--
-- Locking: a nullable column without a default is a catalogue change (no table rewrite). The check is added
-- NOT VALID, so this migration does not scan months of history under the ACCESS EXCLUSIVE lock it holds
-- until commit (every agent's insert would wait); it is enforced for every row written from now on, and the
-- next migration (20261203100100) validates the existing rows — all NULL — in its own transaction, under a
-- lock that lets inserts continue.

alter table public.parameter_history add column read_ms double precision;

alter table public.parameter_history
  add constraint parameter_history_read_ms_check
  check (read_ms >= 0 and read_ms < 'infinity') not valid;  -- also refuses NaN (it sorts above infinity)

comment on column public.parameter_history.read_ms is
  'Wall time of the frame''s whole PLC read, milliseconds (>= 0, finite; NULL: not recorded, e.g. a row '
  'from an older agent). ts is the midpoint of that read: every value was acquired within ts ± read_ms/2.';
