-- Row level security and privileges (docs/CONTRACT.md §5: RLS on for every table, nothing granted to anon).
--
-- Supabase's legacy default privileges grant ALL on every new object in `public` to anon,
-- authenticated and service_role (docs/LOCAL_STACK.md §2). We start from nothing and grant
-- explicitly: service_role (the agent) reads and writes everything, authenticated (dashboard users)
-- reads everything, edits recipes and inserts commands (only the columns the dashboard may set),
-- anon gets nothing at all. Writes to leases and command claims go through SECURITY DEFINER RPCs.

-- ---------------------------------------------------------------------------------------------
-- Start from zero, and stop future objects in `public` from being granted to anon by default.
-- ---------------------------------------------------------------------------------------------
revoke all on all tables in schema public from anon, authenticated, service_role, public;
revoke all on all sequences in schema public from anon, authenticated, service_role, public;
revoke all on all functions in schema public from anon, authenticated, service_role, public;
alter default privileges in schema public revoke all on tables from anon;
alter default privileges in schema public revoke all on sequences from anon;
alter default privileges in schema public revoke all on functions from anon;

-- ---------------------------------------------------------------------------------------------
-- RLS on every table (partitions too: they are reached through the parent only)
-- ---------------------------------------------------------------------------------------------
alter table public.machines enable row level security;
alter table public.parameters enable row level security;
alter table public.recipes enable row level security;
alter table public.recipe_steps enable row level security;
alter table public.machine_commands enable row level security;
alter table public.process_runs enable row level security;
alter table public.run_steps enable row level security;
alter table public.parameter_history enable row level security;
alter table public.parameter_history_default enable row level security;
alter table public.parameter_latest enable row level security;
alter table public.machine_leases enable row level security;
alter table public.agent_instances enable row level security;

do $security$
declare
  r record;
begin
  for r in
    select c.relname from pg_class c
    join pg_inherits i on i.inhrelid = c.oid
    where i.inhparent = 'public.parameter_history'::regclass
  loop
    execute format('alter table public.%I enable row level security', r.relname);
  end loop;
end
$security$;

-- ---------------------------------------------------------------------------------------------
-- service_role: everything (it has BYPASSRLS; the policies state the intent explicitly)
-- ---------------------------------------------------------------------------------------------
grant select, insert, update, delete on all tables in schema public to service_role;
grant usage, select on all sequences in schema public to service_role;

create policy service_role_all on public.machines for all to service_role using (true) with check (true);
create policy service_role_all on public.parameters for all to service_role using (true) with check (true);
create policy service_role_all on public.recipes for all to service_role using (true) with check (true);
create policy service_role_all on public.recipe_steps for all to service_role using (true) with check (true);
create policy service_role_all on public.machine_commands for all to service_role using (true) with check (true);
create policy service_role_all on public.process_runs for all to service_role using (true) with check (true);
create policy service_role_all on public.run_steps for all to service_role using (true) with check (true);
create policy service_role_all on public.parameter_history for all to service_role using (true) with check (true);
create policy service_role_all on public.parameter_latest for all to service_role using (true) with check (true);
create policy service_role_all on public.machine_leases for all to service_role using (true) with check (true);
create policy service_role_all on public.agent_instances for all to service_role using (true) with check (true);

-- ---------------------------------------------------------------------------------------------
-- authenticated (dashboard users): read all, edit recipes, insert commands
-- ---------------------------------------------------------------------------------------------
grant select on
  public.machines, public.parameters, public.recipes, public.recipe_steps, public.machine_commands,
  public.process_runs, public.run_steps, public.parameter_history, public.parameter_latest,
  public.machine_leases, public.agent_instances, public.agent_instance_status
  to authenticated;
grant select on public.agent_instance_status to service_role;

create policy authenticated_read on public.machines for select to authenticated using (true);
create policy authenticated_read on public.parameters for select to authenticated using (true);
create policy authenticated_read on public.recipes for select to authenticated using (true);
create policy authenticated_read on public.recipe_steps for select to authenticated using (true);
create policy authenticated_read on public.machine_commands for select to authenticated using (true);
create policy authenticated_read on public.process_runs for select to authenticated using (true);
create policy authenticated_read on public.run_steps for select to authenticated using (true);
create policy authenticated_read on public.parameter_history for select to authenticated using (true);
create policy authenticated_read on public.parameter_latest for select to authenticated using (true);
create policy authenticated_read on public.machine_leases for select to authenticated using (true);
create policy authenticated_read on public.agent_instances for select to authenticated using (true);

-- commands: only the columns the dashboard may set; status/claim fields keep their defaults
grant insert (machine_id, type, payload, idempotency_key, expires_at) on public.machine_commands to authenticated;
create policy authenticated_insert_pending on public.machine_commands for insert to authenticated
  with check (status = 'pending' and claimed_by is null and claimed_at is null and finished_at is null);

-- recipes are authored in the dashboard
grant insert, update, delete on public.recipes, public.recipe_steps to authenticated;
create policy authenticated_write on public.recipes for insert to authenticated with check (true);
create policy authenticated_update on public.recipes for update to authenticated using (true) with check (true);
create policy authenticated_delete on public.recipes for delete to authenticated using (true);
create policy authenticated_write on public.recipe_steps for insert to authenticated with check (true);
create policy authenticated_update on public.recipe_steps for update to authenticated using (true) with check (true);
create policy authenticated_delete on public.recipe_steps for delete to authenticated using (true);

-- ---------------------------------------------------------------------------------------------
-- Functions: the RPCs for the agent and the dashboard; helpers stay private
-- ---------------------------------------------------------------------------------------------
-- The lease and the claim are the agent's alone: a dashboard user holding a free lease would lock the
-- machine's agent out until it expired (ald_agent, the machine-scoped agent role, is granted them later).
grant execute on function
  public.acquire_lease(uuid, text, double precision),
  public.renew_lease(uuid, text, bigint, double precision),
  public.release_lease(uuid, text, bigint),
  public.claim_command(bigint, uuid, text, bigint)
  to service_role;
-- housekeeping anyone who reads the commands may trigger: pending commands past expires_at become expired
grant execute on function public.expire_commands(uuid) to service_role, authenticated;

grant execute on function public.ensure_parameter_history_partitions(integer) to service_role;
-- evaluated inside a CHECK constraint by whoever writes recipe_steps
grant execute on function public.recipe_step_config_is_valid(text, jsonb) to service_role, authenticated;
