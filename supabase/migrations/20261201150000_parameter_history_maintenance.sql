-- parameter_history maintenance (DESIGN §9): the next months' partitions kept ready, and retention as the
-- drop of whole monthly partitions older than a horizon (a cheap `drop table`, no row-by-row delete).
--
-- Scheduled with pg_cron where the database has it (hosted Supabase: enable the extension in the dashboard
-- first): partitions on the 25th of each month at 03:00 UTC, ready before the month they hold. Retention is
-- NOT scheduled by default: dropping data is a decision; schedule drop_parameter_history_partitions with the
-- horizon your site keeps (docs/RUNBOOK.md, Partition maintenance). Where pg_cron is absent (the local stack,
-- a plain PostgreSQL), this migration says so and the runbook's monthly job runs the same calls.

create or replace function public.drop_parameter_history_partitions(p_keep_months integer default 24)
  returns setof text
  language plpgsql
  security definer
  set search_path = ''
  as $$
  declare
    v_oldest_kept date;
    v_partition record;
  begin
    if p_keep_months is null or p_keep_months < 1 then
      raise exception 'p_keep_months must be at least 1, got %', p_keep_months;
    end if;
    v_oldest_kept := (date_trunc('month', now()) - make_interval(months => p_keep_months))::date;
    for v_partition in
      select c.relname
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'public.parameter_history'::regclass
        and c.relname ~ '^parameter_history_y[0-9]{4}m[0-9]{2}$'
      order by c.relname
    loop
      if to_date(substring(v_partition.relname from 'y([0-9]{4})m') || substring(v_partition.relname from 'm([0-9]{2})$'),
                 'YYYYMM') < v_oldest_kept then
        execute format('drop table public.%I', v_partition.relname);
        return next v_partition.relname;
      end if;
    end loop;
  end;
  $$;
comment on function public.drop_parameter_history_partitions(integer) is
  'Retention: keeps the current month and the p_keep_months (>= 1, default 24) months before it; drops '
  'the older monthly partitions of parameter_history and returns their names. The default partition '
  'is never dropped.';

revoke all on function public.drop_parameter_history_partitions(integer) from public, anon, authenticated;
grant execute on function public.drop_parameter_history_partitions(integer) to service_role;

do $$
begin
  if not exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron') then
    raise notice 'pg_cron is not available: run the monthly partition job by hand or from cron (docs/RUNBOOK.md)';
    return;
  end if;
  begin
    create extension if not exists pg_cron;
    perform cron.schedule('ald-parameter-history-partitions', '0 3 25 * *',
                          'select public.ensure_parameter_history_partitions(2)');
  exception when others then  -- e.g. not in shared_preload_libraries: keep the migration, say what to do
    raise notice 'pg_cron could not be used (%): run the monthly partition job instead (docs/RUNBOOK.md)',
      sqlerrm;
  end;
end;
$$;
