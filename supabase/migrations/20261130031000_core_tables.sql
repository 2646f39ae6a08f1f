-- Core tables of the data contract (docs/CONTRACT.md §2): machines, register map, recipes, commands, runs,
-- live values, leases and agent heartbeats. Security (RLS, grants) and realtime live in later files.
--
-- Conventions: enum-like columns are text + check constraints (cheap to extend in a migration, and
-- PostgREST/Realtime send them as plain strings); every row has created_at/updated_at where it is
-- mutable; foreign keys cascade from `machines` so deleting a machine removes its data.

create or replace function public.set_updated_at() returns trigger
  language plpgsql
  set search_path = ''
  as $$
  begin
    new.updated_at := now();
    return new;
  end;
  $$;
comment on function public.set_updated_at() is
  'Trigger: stamps updated_at on every UPDATE so the dashboard can order and poll by it.';

-- ---------------------------------------------------------------------------------------------
-- machines
-- ---------------------------------------------------------------------------------------------
create table public.machines (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(name) between 1 and 200),
  serial_number text unique,
  status text not null default 'offline'
    constraint machines_status_check
    check (status in ('offline', 'idle', 'running', 'paused', 'error', 'maintenance')),
  current_run_id uuid,  -- FK added after process_runs exists
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.machines is 'One row per ALD tool. The agent owns status and current_run_id.';

create trigger machines_set_updated_at before update on public.machines
  for each row execute function public.set_updated_at();

-- ---------------------------------------------------------------------------------------------
-- parameters: the register map, one row per machine parameter
-- ---------------------------------------------------------------------------------------------
create table public.parameters (
  id uuid primary key default gen_random_uuid(),
  machine_id uuid not null references public.machines (id) on delete cascade,
  key text not null
    constraint parameters_key_check check (key ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$'),
  component text not null,
  name text not null,
  unit text,
  data_type text not null
    constraint parameters_data_type_check
    check (data_type in ('bool', 'int16', 'uint16', 'int32', 'uint32', 'float32')),
  register text not null
    constraint parameters_register_check
    check (register in ('coil', 'discrete_input', 'holding', 'input')),
  address integer not null check (address between 0 and 65535),
  write_address integer check (write_address between 0 and 65535),
  scale double precision not null default 1 check (scale <> 0),
  "offset" double precision not null default 0,
  min_value double precision,
  max_value double precision,
  writable boolean not null default false,
  logged boolean not null default true,
  deadband double precision not null default 0 check (deadband >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint parameters_machine_key_key unique (machine_id, key),
  -- target of parameter_latest's composite FK: a live value must belong to the same machine
  constraint parameters_machine_id_id_key unique (machine_id, id),
  constraint parameters_bit_registers_are_bool
    check (register not in ('coil', 'discrete_input') or data_type = 'bool'),
  constraint parameters_writable_has_write_address check (not writable or write_address is not null),
  constraint parameters_range_check check (min_value is null or max_value is null or min_value <= max_value)
);
comment on table public.parameters is
  'Register map (one row per machine parameter). Engineering value = raw * scale + offset. '
  'write_address null = read-only. The agent loads it at start and reloads it on change.';

create trigger parameters_set_updated_at before update on public.parameters
  for each row execute function public.set_updated_at();

-- ---------------------------------------------------------------------------------------------
-- recipes and recipe_steps (a tree through parent_step_id; loops nest)
-- ---------------------------------------------------------------------------------------------
create table public.recipes (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(name) between 1 and 200),
  version integer not null default 1 check (version >= 1),
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint recipes_name_version_key unique (name, version)
);

create trigger recipes_set_updated_at before update on public.recipes
  for each row execute function public.set_updated_at();

create or replace function public.recipe_step_config_is_valid(p_type text, p_config jsonb) returns boolean
  language sql immutable
  set search_path = ''
  as $$
    -- CASE keeps the evaluation order, so a cast only runs once the JSON type was checked.
    select case
      when jsonb_typeof(p_config) is distinct from 'object' then false
      when p_type = 'valve' then
        case when jsonb_typeof(p_config -> 'valve') = 'number'
                  and jsonb_typeof(p_config -> 'duration_ms') = 'number'
             then (p_config ->> 'valve')::numeric >= 1
                  and (p_config ->> 'valve')::numeric = trunc((p_config ->> 'valve')::numeric)
                  and (p_config ->> 'duration_ms')::numeric > 0
             else false end
      when p_type = 'purge' then
        case when jsonb_typeof(p_config -> 'duration_ms') = 'number'
                  and coalesce(jsonb_typeof(p_config -> 'gas'), 'string') = 'string'
                  and coalesce(jsonb_typeof(p_config -> 'flow_sccm'), 'number') = 'number'
             then (p_config ->> 'duration_ms')::numeric > 0
                  and coalesce((p_config ->> 'flow_sccm')::numeric, 0) >= 0
             else false end
      when p_type = 'parameter' then
        jsonb_typeof(p_config -> 'parameter') = 'string'
        and coalesce(jsonb_typeof(p_config -> 'value'), 'null') in ('number', 'boolean')
        and coalesce(jsonb_typeof(p_config -> 'wait'), 'object') = 'object'
      when p_type = 'wait' then
        case when jsonb_typeof(p_config -> 'duration_ms') = 'number'
             then (p_config ->> 'duration_ms')::numeric >= 0
             else false end
      when p_type = 'loop' then
        case when jsonb_typeof(p_config -> 'count') = 'number'
             then (p_config ->> 'count')::numeric >= 1
                  and (p_config ->> 'count')::numeric = trunc((p_config ->> 'count')::numeric)
             else false end
      else false
    end
  $$;
comment on function public.recipe_step_config_is_valid(text, jsonb) is
  'Shape check of recipe_steps.config by type (DESIGN §4): valve {valve:int>=1, duration_ms>0}; '
  'purge {duration_ms>0, gas?, flow_sccm?>=0}; parameter {parameter:key, value:number|bool, wait?}; '
  'wait {duration_ms>=0}; loop {count:int>=1}. The agent still validates semantics (keys, limits).';

create table public.recipe_steps (
  id uuid primary key default gen_random_uuid(),
  recipe_id uuid not null references public.recipes (id) on delete cascade,
  parent_step_id uuid,
  sequence integer not null check (sequence >= 0),
  type text not null
    constraint recipe_steps_type_check
    check (type in ('valve', 'purge', 'parameter', 'wait', 'loop')),
  name text not null default '',
  config jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint recipe_steps_recipe_id_id_key unique (recipe_id, id),
  -- a parent lives in the same recipe
  constraint recipe_steps_parent_fkey foreign key (recipe_id, parent_step_id)
    references public.recipe_steps (recipe_id, id) on delete cascade,
  constraint recipe_steps_not_own_parent check (parent_step_id is distinct from id),
  -- siblings are totally ordered (top-level steps have parent null: nulls not distinct)
  constraint recipe_steps_sibling_sequence_key unique nulls not distinct (recipe_id, parent_step_id, sequence),
  constraint recipe_steps_config_check check (public.recipe_step_config_is_valid(type, config))
);
create index recipe_steps_parent_step_id_idx on public.recipe_steps (parent_step_id);

create trigger recipe_steps_set_updated_at before update on public.recipe_steps
  for each row execute function public.set_updated_at();

-- ---------------------------------------------------------------------------------------------
-- machine_commands: the dashboard inserts, the lease holder claims (claim_command) and finishes
-- ---------------------------------------------------------------------------------------------
create table public.machine_commands (
  id bigint generated always as identity primary key,
  machine_id uuid not null references public.machines (id) on delete cascade,
  type text not null
    constraint machine_commands_type_check
    check (type in ('start_recipe', 'stop_recipe', 'pause_recipe', 'resume_recipe', 'set_parameter')),
  payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object'),
  status text not null default 'pending'
    constraint machine_commands_status_check
    check (status in ('pending', 'claimed', 'running', 'succeeded', 'failed', 'rejected', 'expired')),
  claimed_by text,
  claimed_at timestamptz,
  finished_at timestamptz,
  expires_at timestamptz not null default (now() + interval '5 minutes'),
  error text,
  idempotency_key text unique,
  created_at timestamptz not null default now(),
  constraint machine_commands_claim_recorded
    check (status in ('pending', 'expired', 'rejected') or (claimed_by is not null and claimed_at is not null)),
  constraint machine_commands_finished_is_terminal
    check (finished_at is null or status in ('succeeded', 'failed', 'rejected', 'expired'))
);
comment on table public.machine_commands is
  'Commands for a machine. Dashboard inserts (machine_id, type, payload[, idempotency_key, expires_at]); '
  'status pending -> claimed (claim_command, lease holder only) -> running -> succeeded|failed; '
  'pending -> expired|rejected. Terminal states never change.';

-- the agent's poll: pending commands of one machine, oldest first (never scans other machines)
create index machine_commands_pending_idx on public.machine_commands (machine_id, id)
  where status = 'pending';
-- the dashboard's history per machine
create index machine_commands_machine_created_idx on public.machine_commands (machine_id, created_at desc);

create or replace function public.machine_commands_check_transition() returns trigger
  language plpgsql
  set search_path = ''
  as $$
  begin
    if new.status is distinct from old.status and not (
         (old.status = 'pending' and new.status in ('claimed', 'rejected', 'expired'))
      or (old.status = 'claimed' and new.status in ('running', 'succeeded', 'failed', 'rejected'))
      or (old.status = 'running' and new.status in ('succeeded', 'failed'))
    ) then
      raise exception 'illegal machine_commands status change % -> % (command %)', old.status, new.status, old.id
        using errcode = '23514';
    end if;
    if new.machine_id is distinct from old.machine_id then
      raise exception 'machine_commands.machine_id is immutable (command %)', old.id using errcode = '23514';
    end if;
    return new;
  end;
  $$;
comment on function public.machine_commands_check_transition() is
  'Trigger: only legal status moves (pending->claimed|rejected|expired, claimed->running|succeeded|'
  'failed|rejected, running->succeeded|failed); terminal rows are final, so an expired command never runs.';

create trigger machine_commands_check_transition before update on public.machine_commands
  for each row execute function public.machine_commands_check_transition();

-- ---------------------------------------------------------------------------------------------
-- process_runs and run_steps
-- ---------------------------------------------------------------------------------------------
create table public.process_runs (
  id uuid primary key default gen_random_uuid(),
  machine_id uuid not null references public.machines (id) on delete cascade,
  recipe_id uuid references public.recipes (id) on delete set null,
  command_id bigint references public.machine_commands (id) on delete set null,
  recipe_snapshot jsonb not null default '{}'::jsonb,
  status text not null default 'running'
    constraint process_runs_status_check
    check (status in ('running', 'paused', 'succeeded', 'failed', 'aborted', 'interrupted')),
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  error text,
  total_steps integer not null default 0 check (total_steps >= 0),
  completed_steps integer not null default 0 check (completed_steps >= 0),
  current_step jsonb check (current_step is null or jsonb_typeof(current_step) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint process_runs_progress_check check (completed_steps <= total_steps),
  constraint process_runs_finished_check
    check (finished_at is null or status not in ('running', 'paused'))
);
comment on table public.process_runs is
  'One row per recipe execution; the dashboard follows progress (completed_steps/total_steps, '
  'current_step {path, type, name, loop_iteration, loop_count}) on it.';

create index process_runs_machine_started_idx on public.process_runs (machine_id, started_at desc);
-- at most one active run per machine; a crashed agent marks its old run interrupted first
create unique index process_runs_one_active_per_machine on public.process_runs (machine_id)
  where status in ('running', 'paused');
create index process_runs_command_id_idx on public.process_runs (command_id) where command_id is not null;

create trigger process_runs_set_updated_at before update on public.process_runs
  for each row execute function public.set_updated_at();

alter table public.machines
  add constraint machines_current_run_id_fkey foreign key (current_run_id)
  references public.process_runs (id) on delete set null;

create table public.run_steps (
  run_id uuid not null references public.process_runs (id) on delete cascade,
  seq integer not null check (seq >= 0),
  path text not null,
  type text not null
    constraint run_steps_type_check
    check (type in ('valve', 'purge', 'parameter', 'wait', 'loop')),
  name text not null default '',
  planned_ms double precision check (planned_ms >= 0),
  started_at timestamptz not null,
  ended_at timestamptz,
  actual_ms double precision check (actual_ms >= 0),
  status text not null default 'running'
    constraint run_steps_status_check
    check (status in ('running', 'succeeded', 'failed', 'aborted', 'skipped')),
  detail jsonb not null default '{}'::jsonb check (jsonb_typeof(detail) = 'object'),
  primary key (run_id, seq)
);
comment on table public.run_steps is
  'One row per executed step, keyed (run_id, seq) so spool replays are idempotent. Valve rows carry '
  'measured open/close times in detail.';

-- ---------------------------------------------------------------------------------------------
-- parameter_latest: the live view, upserted each cycle
-- ---------------------------------------------------------------------------------------------
create table public.parameter_latest (
  machine_id uuid not null references public.machines (id) on delete cascade,
  parameter_id uuid not null,
  value jsonb check (value is null or jsonb_typeof(value) in ('number', 'boolean', 'null')),
  ts timestamptz not null,
  primary key (machine_id, parameter_id),
  constraint parameter_latest_parameter_fkey foreign key (machine_id, parameter_id)
    references public.parameters (machine_id, id) on delete cascade
);
comment on table public.parameter_latest is
  'Latest value per (machine, parameter): number, bool or null (null = read failed).';

-- ---------------------------------------------------------------------------------------------
-- machine_leases: single-writer lease with a fencing token (RPCs in a later migration)
-- ---------------------------------------------------------------------------------------------
create sequence public.machine_lease_token_seq as bigint;
comment on sequence public.machine_lease_token_seq is
  'Fencing tokens: global and monotonic, so a new lease always has a larger token than any before.';

create table public.machine_leases (
  machine_id uuid primary key references public.machines (id) on delete cascade,
  holder text not null check (length(holder) between 1 and 200),
  token bigint not null check (token > 0),
  acquired_at timestamptz not null default now(),
  expires_at timestamptz not null
);
comment on table public.machine_leases is
  'Who may act for a machine. Write only through acquire_lease/renew_lease/release_lease.';

-- ---------------------------------------------------------------------------------------------
-- agent_instances: heartbeat every 10 s, dead after 30 s without one
-- ---------------------------------------------------------------------------------------------
create table public.agent_instances (
  instance_id text primary key check (length(instance_id) between 1 and 200),
  machine_id uuid not null references public.machines (id) on delete cascade,
  color text check (color in ('blue', 'green')),
  version text not null default '',
  role text not null default 'standby' constraint agent_instances_role_check check (role in ('active', 'standby')),
  started_at timestamptz not null default now(),
  last_seen timestamptz not null default now(),
  plc_connected boolean not null default false,
  realtime_connected boolean not null default false,
  spool_depth integer not null default 0 check (spool_depth >= 0)
);
create index agent_instances_machine_idx on public.agent_instances (machine_id, last_seen desc);
comment on table public.agent_instances is
  'Agent heartbeats (every 10 s). An instance is dead after 30 s without a beat: see agent_instance_status.';

create view public.agent_instance_status
  with (security_invoker = true)
  as select a.*, a.last_seen > now() - interval '30 seconds' as alive
     from public.agent_instances a;
comment on view public.agent_instance_status is
  'agent_instances plus alive = a beat within the last 30 s (DESIGN §4).';
