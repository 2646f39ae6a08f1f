-- Tables the dashboard (and the agent's command intake) follow live (docs/CONTRACT.md §6).
-- The publication exists on every Supabase database; we only add tables to it.
-- REPLICA IDENTITY FULL where old rows matter: status transitions are read from old_record, and
-- DELETE events can only be filtered by machine_id when the old row carries it.
-- parameter_latest and run_steps keep the default identity: they are high volume, and their
-- consumers only need the new row.

alter publication supabase_realtime add table
  public.machines,
  public.parameters,
  public.machine_commands,
  public.process_runs,
  public.run_steps,
  public.parameter_latest,
  public.agent_instances;

alter table public.machines replica identity full;
alter table public.parameters replica identity full;
alter table public.machine_commands replica identity full;
alter table public.process_runs replica identity full;
alter table public.agent_instances replica identity full;
