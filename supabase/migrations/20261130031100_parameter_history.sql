-- parameter_history: one row per sample frame (docs/CONTRACT.md §2), range-partitioned by month on ts so that
-- retention is a cheap `drop table` of an old partition (docs/DESIGN.md §9: 200 machines at 1 Hz).
--
-- A default partition catches frames outside the prepared months (a clock far off, a late replay), so
-- an insert never fails for lack of a partition. Call ensure_parameter_history_partitions() monthly
-- (pg_cron on hosted Supabase, or the agent fleet's ops job) to keep the next month ready.

create table public.parameter_history (
  machine_id uuid not null references public.machines (id) on delete cascade,
  ts timestamptz not null,
  -- no FK: a frame must never be blocked behind its run row in the spool
  run_id uuid,
  "values" jsonb not null check (jsonb_typeof("values") = 'object'),
  primary key (machine_id, ts)
) partition by range (ts);
comment on table public.parameter_history is
  'One row per sample frame: values {key: number|bool|null} at acquisition time ts. '
  'PK (machine_id, ts) makes replays idempotent. Partitioned by month on ts.';

create index parameter_history_run_idx on public.parameter_history (run_id, ts) where run_id is not null;

create table public.parameter_history_default partition of public.parameter_history default;

create or replace function public.create_parameter_history_partition(p_month date) returns text
  language plpgsql
  security definer
  set search_path = ''
  as $$
  declare
    v_from date := date_trunc('month', p_month)::date;
    v_to date := (date_trunc('month', p_month) + interval '1 month')::date;
    v_name text := format('parameter_history_y%sm%s', to_char(v_from, 'YYYY'), to_char(v_from, 'MM'));
  begin
    if to_regclass(format('public.%I', v_name)) is not null then
      return v_name;
    end if;
    -- Rows for this month that already landed in the default partition would violate the new
    -- partition's bound: park them, attach, and move them back in one transaction.
    create temporary table pg_temp.parked (like public.parameter_history) on commit drop;
    with moved as (
      delete from public.parameter_history_default
      where ts >= v_from and ts < v_to
      returning *
    )
    insert into pg_temp.parked select * from moved;
    execute format(
      'create table public.%I partition of public.parameter_history for values from (%L) to (%L)',
      v_name, v_from, v_to);
    insert into public.parameter_history select * from pg_temp.parked;
    drop table pg_temp.parked;
    -- partitions are reached through the parent only: same RLS, nothing granted directly
    execute format('alter table public.%I enable row level security', v_name);
    execute format('revoke all on table public.%I from anon, authenticated', v_name);
    return v_name;
  end;
  $$;
comment on function public.create_parameter_history_partition(date) is
  'Creates the monthly partition of parameter_history holding p_month (idempotent), moving any rows '
  'of that month out of the default partition first. Returns the partition name.';

create or replace function public.ensure_parameter_history_partitions(p_months_ahead integer default 1)
  returns setof text
  language sql
  security definer
  set search_path = ''
  as $$
    select public.create_parameter_history_partition((date_trunc('month', now()) + make_interval(months => m))::date)
    from generate_series(0, greatest(p_months_ahead, 0)) as m
  $$;
comment on function public.ensure_parameter_history_partitions(integer) is
  'Creates the current month''s partition and the next p_months_ahead (default 1). Idempotent; '
  'schedule it monthly.';

select public.ensure_parameter_history_partitions(1);
