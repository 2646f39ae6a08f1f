-- A machine-scoped key for the agent (docs/CONTRACT.md §7: SUPABASE_KEY is "service-role or a machine-scoped JWT").
--
-- The service-role key opens every machine of the fab; a key left on an edge box should open one. Such a
-- key is a JWT signed with the project's JWT secret carrying `"role": "ald_agent"` and
-- `"machine_id": "<uuid>"` (`python -m supalocal machine-key` makes one for the local stack; docs/RUNBOOK.md
-- says how to mint one for a project). PostgREST and Realtime switch to the role named in the token, so
-- what `ald_agent` may do is exactly what an agent does, for the machine in its claim only:
--   read its machine, its parameter map, every recipe; read its commands and move their status;
--   write its runs and their steps, its telemetry and its heartbeats; the lease and command-claim RPCs for
--   its machine (they check the claim themselves: `assert_machine_scope`, they bypass RLS).
-- It cannot insert commands (that is the dashboard's act), edit recipes, or see another machine's rows.

do $role$
begin
  if not exists (select 1 from pg_roles where rolname = 'ald_agent') then
    create role ald_agent nologin noinherit;
  end if;
end
$role$;
grant ald_agent to authenticator;
grant usage on schema public to ald_agent;

-- The machine in the caller's token (null without one). SECURITY INVOKER and STABLE: evaluated by the
-- policies below once per statement.
create or replace function public.jwt_machine_id()
  returns uuid
  language sql
  stable
  set search_path = ''
  as $$
    select nullif(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'machine_id', '')::uuid
  $$;
revoke all on function public.jwt_machine_id() from public;
grant execute on function public.jwt_machine_id() to ald_agent;

-- ---------------------------------------------------------------------------------------------
-- Reads
-- ---------------------------------------------------------------------------------------------
grant select on public.recipes, public.recipe_steps to ald_agent;
create policy ald_agent_read on public.recipes for select to ald_agent using (true);
create policy ald_agent_read on public.recipe_steps for select to ald_agent using (true);

grant select on public.machines to ald_agent;
create policy ald_agent_own on public.machines for select to ald_agent using (id = public.jwt_machine_id());
grant select on public.parameters, public.machine_leases to ald_agent;
create policy ald_agent_own on public.parameters for select to ald_agent
  using (machine_id = public.jwt_machine_id());
create policy ald_agent_own on public.machine_leases for select to ald_agent
  using (machine_id = public.jwt_machine_id());

-- ---------------------------------------------------------------------------------------------
-- Status the agent reports: its machine's status, its commands' progress (claiming is the RPC's)
-- ---------------------------------------------------------------------------------------------
grant update (status, current_run_id) on public.machines to ald_agent;
create policy ald_agent_update on public.machines for update to ald_agent
  using (id = public.jwt_machine_id()) with check (id = public.jwt_machine_id());

grant select, update (status, error, finished_at) on public.machine_commands to ald_agent;
create policy ald_agent_own on public.machine_commands for select to ald_agent
  using (machine_id = public.jwt_machine_id());
create policy ald_agent_update on public.machine_commands for update to ald_agent
  using (machine_id = public.jwt_machine_id()) with check (machine_id = public.jwt_machine_id());

-- ---------------------------------------------------------------------------------------------
-- What the agent writes (upserts: insert, and update on conflict, both need the row readable)
-- ---------------------------------------------------------------------------------------------
grant select, insert, update on
  public.process_runs, public.run_steps, public.parameter_history, public.parameter_latest,
  public.agent_instances
  to ald_agent;

create policy ald_agent_own on public.process_runs for all to ald_agent
  using (machine_id = public.jwt_machine_id()) with check (machine_id = public.jwt_machine_id());
create policy ald_agent_own on public.parameter_history for all to ald_agent
  using (machine_id = public.jwt_machine_id()) with check (machine_id = public.jwt_machine_id());
create policy ald_agent_own on public.parameter_latest for all to ald_agent
  using (machine_id = public.jwt_machine_id()) with check (machine_id = public.jwt_machine_id());
create policy ald_agent_own on public.agent_instances for all to ald_agent
  using (machine_id = public.jwt_machine_id()) with check (machine_id = public.jwt_machine_id());
-- a step belongs to the machine of its run
create policy ald_agent_own on public.run_steps for all to ald_agent
  using (exists (select 1 from public.process_runs r where r.id = run_id and r.machine_id = public.jwt_machine_id()))
  with check (
    exists (select 1 from public.process_runs r where r.id = run_id and r.machine_id = public.jwt_machine_id()));

-- ---------------------------------------------------------------------------------------------
-- RPCs (each checks the token's machine: assert_machine_scope)
-- ---------------------------------------------------------------------------------------------
grant execute on function
  public.acquire_lease(uuid, text, double precision),
  public.renew_lease(uuid, text, bigint, double precision),
  public.release_lease(uuid, text, bigint),
  public.claim_command(bigint, uuid, text, bigint),
  public.expire_commands(uuid)
  to ald_agent;
