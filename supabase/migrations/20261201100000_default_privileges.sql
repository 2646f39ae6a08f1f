-- Nothing new in `public` is open to the API roles by default; every grant is explicit.
--
-- The supabase/postgres image grants ALL on every new table, sequence and function that `postgres`
-- creates in `public` to anon, authenticated and service_role (docs/LOCAL_STACK.md), and PostgreSQL
-- itself grants EXECUTE on every new function to PUBLIC (so to anon and authenticated as well).
-- 20261130031300_security revoked the schema default from anon only: a later migration's table or function
-- was therefore readable, writable or callable by every signed-in dashboard user until someone remembered
-- to revoke it. From here on, a migration that adds an object grants what each role needs, and only that
-- (tests/supalocal/test_contract.py lists what each role may do and fails on anything extra).
--
-- service_role keeps the image's defaults: it is the project's admin key (BYPASSRLS) and the agent's
-- service-role mode relies on it for new tables.

-- ---------------------------------------------------------------------------------------------
-- Future objects: no default grants to anon or authenticated, no EXECUTE for PUBLIC
-- ---------------------------------------------------------------------------------------------
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on functions from anon, authenticated;
-- PUBLIC's EXECUTE is a global default: a per-schema entry cannot remove it, a role-wide one can.
alter default privileges for role postgres revoke execute on functions from public;

-- ---------------------------------------------------------------------------------------------
-- Objects created since 20261130031300 got the old defaults: take back what was not meant
-- ---------------------------------------------------------------------------------------------
-- jwt_machine_id() reads the machine claim for ald_agent's policies; the dashboard has no use for it.
revoke all on function public.jwt_machine_id() from authenticated, anon, public;
grant execute on function public.jwt_machine_id() to ald_agent, service_role;

-- Partitions of parameter_history made later (ensure_parameter_history_partitions) are reached through
-- the parent, which carries every grant; a partition itself grants nothing to the API roles.
do $privileges$
declare
  r record;
begin
  for r in
    select c.relname from pg_class c
    join pg_inherits i on i.inhrelid = c.oid
    where i.inhparent = 'public.parameter_history'::regclass
  loop
    execute format('revoke all on table public.%I from anon, authenticated', r.relname);
  end loop;
end
$privileges$;
