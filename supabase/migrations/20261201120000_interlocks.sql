-- Interlocks (issue 11, DESIGN §5 "One guarded path to the PLC"): per-machine safety rules the agent
-- enforces at its write gate and on every sample frame while a recipe runs. The dashboard edits them,
-- the agent reads them (realtime, so it reloads on change). Also: agent_instances.error, where the
-- agent says why it is degraded (a refused register map, a refused interlock set).
--
-- The condition language is validated here as far as a schema can (shape, operators, numbers, bounds);
-- whether a key exists in the map is the agent's to check, because the map changes independently.
-- Grants are explicit: nothing here relies on default privileges in `public`.

-- ---------------------------------------------------------------------------------------------
-- Validators (pure, immutable). They raise instead of returning false so the error names the element
-- and the rule; PostgREST passes the message and the check_violation code (23514) to the dashboard.
-- ---------------------------------------------------------------------------------------------

-- Parameter keys (parameters_key_check) plus the fnmatch metacharacters * ? [ ] ! -.
-- 200 characters: keys are far shorter; a bound keeps matching cheap.
create or replace function public.check_interlock_targets(p_targets text[]) returns boolean
  language plpgsql immutable
  set search_path = ''
  as $$
  declare
    i integer;
  begin
    if p_targets is null then
      return true;  -- the column is NOT NULL; let that constraint speak
    end if;
    if array_ndims(p_targets) > 1 then
      raise exception 'interlocks.targets must be a one-dimensional array'
        using errcode = '23514', constraint = 'interlocks_targets_check';
    end if;
    for i in 1 .. coalesce(cardinality(p_targets), 0) loop
      if p_targets[i] is null or p_targets[i] !~ '^[a-z0-9_.*?!\[\]-]{1,200}$' then
        raise exception 'interlocks.targets[%]: % is not a parameter key or key pattern (a-z 0-9 _ . and the '
          'fnmatch characters * ? [ ] ! -, 1..200 characters)', i, coalesce(quote_literal(p_targets[i]), 'null')
          using errcode = '23514', constraint = 'interlocks_targets_check';
      end if;
    end loop;
    return true;
  end;
  $$;
comment on function public.check_interlock_targets(text[]) is
  'CHECK of interlocks.targets: every element a parameter key or an fnmatch-style pattern of keys '
  '(a-z 0-9 _ . * ? [ ] ! -, 1..200 characters). Raises check_violation naming the element; else true.';

-- The condition language (docs/CONTRACT.md "interlocks"):
--   {"key": K, "op": "lt"|"le"|"gt"|"ge", "value": number}
--   {"key": K, "op": "eq"|"ne",           "value": number|boolean}
--   {"key": K, "op": "between"|"outside", "low": number, "high": number}   (low <= high, bounds inclusive)
-- K is one parameter key (no patterns). Numbers are bounded to |x| <= 1e308 so every one is a finite
-- float64 for the agent. At most 32 conditions: they are evaluated on every frame.
create or replace function public.check_interlock_conditions(p_conditions jsonb) returns boolean
  language plpgsql immutable
  set search_path = ''
  as $$
  declare
    v_count integer;
    v_item jsonb;
    v_at text;
    v_op text;
    v_name text;
    v_allowed text[];
    v_extra text[];
    i integer;
  begin
    if p_conditions is null then
      return true;  -- the column is NOT NULL; let that constraint speak
    end if;
    if jsonb_typeof(p_conditions) <> 'array' then
      raise exception 'interlocks.conditions must be a JSON array of conditions, got a JSON %',
        jsonb_typeof(p_conditions) using errcode = '23514', constraint = 'interlocks_conditions_check';
    end if;
    v_count := jsonb_array_length(p_conditions);
    if v_count not between 1 and 32 then
      raise exception 'interlocks.conditions must hold 1..32 conditions, got %', v_count
        using errcode = '23514', constraint = 'interlocks_conditions_check';
    end if;
    for i in 0 .. v_count - 1 loop
      v_item := p_conditions -> i;
      v_at := format('interlocks.conditions[%s]', i);
      if jsonb_typeof(v_item) <> 'object' then
        raise exception '%: a condition is an object {key, op, value} or {key, op, low, high}, got a JSON %',
          v_at, jsonb_typeof(v_item) using errcode = '23514', constraint = 'interlocks_conditions_check';
      end if;
      if jsonb_typeof(v_item -> 'key') is distinct from 'string'
         or (v_item ->> 'key') !~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$' then
        raise exception '%: key must be a parameter key (like "pressure_gauge_1.pressure"), got %',
          v_at, coalesce((v_item -> 'key')::text, 'nothing') using errcode = '23514',
          constraint = 'interlocks_conditions_check';
      end if;
      v_op := case when jsonb_typeof(v_item -> 'op') = 'string' then v_item ->> 'op' end;
      if v_op is null or v_op not in ('lt', 'le', 'gt', 'ge', 'eq', 'ne', 'between', 'outside') then
        raise exception '%: op must be one of lt, le, gt, ge, eq, ne, between, outside, got %',
          v_at, coalesce((v_item -> 'op')::text, 'nothing') using errcode = '23514',
          constraint = 'interlocks_conditions_check';
      end if;
      v_allowed := case when v_op in ('between', 'outside') then array['key', 'op', 'low', 'high']
                        else array['key', 'op', 'value'] end;
      select array_agg(k order by k) into v_extra from jsonb_object_keys(v_item) as k where k <> all (v_allowed);
      if v_extra is not null then
        raise exception '%: unknown field(s) % for op %; allowed: %', v_at, array_to_string(v_extra, ', '), v_op,
          array_to_string(v_allowed, ', ') using errcode = '23514', constraint = 'interlocks_conditions_check';
      end if;
      foreach v_name in array case when v_op in ('between', 'outside') then array['low', 'high']
                                   else array['value'] end loop
        if jsonb_typeof(v_item -> v_name) = 'boolean' and v_op in ('eq', 'ne') then
          continue;
        end if;
        if jsonb_typeof(v_item -> v_name) is distinct from 'number' then
          raise exception '%: % must be a number% for op %, got %', v_at, v_name,
            case when v_op in ('eq', 'ne') then ' or a boolean' else '' end, v_op,
            coalesce((v_item -> v_name)::text, 'nothing')
            using errcode = '23514', constraint = 'interlocks_conditions_check';
        end if;
        if abs((v_item ->> v_name)::numeric) > 1e308 then
          raise exception '%: % is out of range (|x| <= 1e308)', v_at, v_name
            using errcode = '23514', constraint = 'interlocks_conditions_check';
        end if;
      end loop;
      if v_op in ('between', 'outside') and (v_item ->> 'low')::numeric > (v_item ->> 'high')::numeric then
        raise exception '%: low % is greater than high %', v_at, v_item -> 'low', v_item -> 'high'
          using errcode = '23514', constraint = 'interlocks_conditions_check';
      end if;
    end loop;
    return true;
  end;
  $$;
comment on function public.check_interlock_conditions(jsonb) is
  'CHECK of interlocks.conditions: a JSON array of 1..32 conditions {key, op: lt|le|gt|ge, value: number}, '
  '{key, op: eq|ne, value: number|boolean} or {key, op: between|outside, low: number, high: number} with '
  'low <= high; no other fields; |numbers| <= 1e308. Raises check_violation naming the condition; else true.';

-- ---------------------------------------------------------------------------------------------
-- interlocks
-- ---------------------------------------------------------------------------------------------
create table public.interlocks (
  id uuid primary key default gen_random_uuid(),
  machine_id uuid not null references public.machines (id) on delete cascade,
  name text not null
    constraint interlocks_name_check check (char_length(name) between 1 and 80 and name = btrim(name)),
  kind text not null
    constraint interlocks_kind_check check (kind in ('permit', 'trip')),
  enabled boolean not null default true,
  targets text[] not null default '{}'
    constraint interlocks_targets_check check (public.check_interlock_targets(targets)),
  conditions jsonb not null
    constraint interlocks_conditions_check check (public.check_interlock_conditions(conditions)),
  hold_ms integer not null default 0
    constraint interlocks_hold_ms_check check (hold_ms between 0 and 3600000),
  action text not null default 'abort'
    constraint interlocks_action_check check (action in ('abort', 'hold')),
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint interlocks_machine_name_key unique (machine_id, name),
  constraint interlocks_permit_has_targets check (kind <> 'permit' or cardinality(targets) >= 1),
  constraint interlocks_trip_has_no_targets check (kind <> 'trip' or cardinality(targets) = 0),
  constraint interlocks_permit_has_no_hold check (kind <> 'permit' or hold_ms = 0)
);
comment on table public.interlocks is
  'Safety interlocks of a machine (DESIGN §5). conditions are what MUST be true, all of them (AND). '
  'permit: checked at the agent''s write gate before a write to a parameter matching one of targets that '
  'moves it away from its safe value (a valve opening, a non-zero setpoint); if any condition is not '
  'true the write is refused, naming the interlock. Writes towards the safe value (closing, zero) are never '
  'refused. trip: checked on every sample frame while a recipe runs; once a condition has been false for '
  'longer than hold_ms, the agent acts (action: abort = run aborted to the safe state, hold = run paused) '
  'and names the interlock in the run''s error and the step record. A condition whose parameter is unknown '
  'or has no reading is not true (fail-safe). enabled = false: the rule is kept but not enforced. The '
  'dashboard edits these rows; the agent only reads them and reloads on change (realtime).';
comment on column public.interlocks.name is
  'Unique per machine, 1..80 characters, no surrounding blanks; quoted in refusals and run errors.';
comment on column public.interlocks.kind is
  'permit: guards writes to targets; trip: watched continuously while a recipe runs.';
comment on column public.interlocks.targets is
  'permit: parameter keys it guards, exact or fnmatch-style patterns matched against the whole key '
  '(* ? [seq] [!seq], case-sensitive), e.g. valve_*.state; at least one. trip: none (empty).';
comment on column public.interlocks.conditions is
  'JSON array of 1..32 conditions that must all be true: {key, op: lt|le|gt|ge, value: number}, '
  '{key, op: eq|ne, value: number|boolean}, {key, op: between|outside, low, high} (inclusive bounds: '
  'between is low <= x <= high, outside is x < low or x > high). key is one parameter key, in '
  'engineering units (raw * scale + offset).';
comment on column public.interlocks.hold_ms is
  'trip: how long (ms, 0..3600000) the conditions may be false before the trip acts; 0 = on the first '
  'frame. permit: always 0 (a permit has no grace time).';
comment on column public.interlocks.action is
  'What a trip does to the running recipe: abort (to the safe state, run aborted) or hold (run paused).';

create index interlocks_machine_idx on public.interlocks (machine_id);

create trigger interlocks_set_updated_at before update on public.interlocks
  for each row execute function public.set_updated_at();

-- Moving a rule to another machine would never reach the old machine's agent (its realtime filter sees
-- only rows of its machine); delete and insert instead.
create or replace function public.interlocks_keep_machine() returns trigger
  language plpgsql
  set search_path = ''
  as $$
  begin
    if new.machine_id is distinct from old.machine_id then
      raise exception 'interlocks.machine_id is immutable (interlock %): delete it and insert it for the other machine',
        old.name using errcode = '23514';
    end if;
    return new;
  end;
  $$;
comment on function public.interlocks_keep_machine() is
  'Trigger: interlocks.machine_id never changes, so the agent of the old machine always sees a rule go.';

create trigger interlocks_keep_machine before update of machine_id on public.interlocks
  for each row execute function public.interlocks_keep_machine();

-- ---------------------------------------------------------------------------------------------
-- Security: the dashboard edits, the service role does everything, the machine's agent reads its own
-- machine's rules only, anon nothing.
-- ---------------------------------------------------------------------------------------------
alter table public.interlocks enable row level security;
revoke all on table public.interlocks from public, anon, authenticated, service_role, ald_agent;

grant select, insert, update, delete on table public.interlocks to service_role;
create policy service_role_all on public.interlocks for all to service_role using (true) with check (true);

grant select, insert, update, delete on table public.interlocks to authenticated;
create policy authenticated_read on public.interlocks for select to authenticated using (true);
create policy authenticated_write on public.interlocks for insert to authenticated with check (true);
create policy authenticated_update on public.interlocks for update to authenticated using (true) with check (true);
create policy authenticated_delete on public.interlocks for delete to authenticated using (true);

grant select on table public.interlocks to ald_agent;
create policy ald_agent_own on public.interlocks for select to ald_agent
  using (machine_id = public.jwt_machine_id());

revoke all on function
  public.check_interlock_targets(text[]),
  public.check_interlock_conditions(jsonb),
  public.interlocks_keep_machine()
  from public, anon, authenticated, service_role;
-- evaluated inside the CHECK constraints by whoever writes interlocks (and callable by the dashboard to
-- validate a rule before saving it)
grant execute on function
  public.check_interlock_targets(text[]),
  public.check_interlock_conditions(jsonb)
  to service_role, authenticated;

-- ---------------------------------------------------------------------------------------------
-- Realtime: the agent reloads its rules on any change; DELETE events carry machine_id for the filter.
-- ---------------------------------------------------------------------------------------------
alter publication supabase_realtime add table public.interlocks;
alter table public.interlocks replica identity full;

-- ---------------------------------------------------------------------------------------------
-- agent_instances.error: why the instance is degraded (null = healthy), written with each heartbeat.
-- ---------------------------------------------------------------------------------------------
alter table public.agent_instances add column error text;
comment on column public.agent_instances.error is
  'Why this instance is degraded, e.g. a register map or interlock set it refused (old one kept); '
  'null = healthy. Written by the agent with each heartbeat.';

-- The view's `a.*` was expanded when it was created; list the columns so it carries error too (a
-- replaced view may only add columns at the end, after alive).
create or replace view public.agent_instance_status
  with (security_invoker = true)
  as select a.instance_id, a.machine_id, a.color, a.version, a.role, a.started_at, a.last_seen,
            a.plc_connected, a.realtime_connected, a.spool_depth,
            a.last_seen > now() - interval '30 seconds' as alive,
            a.error
     from public.agent_instances a;
comment on view public.agent_instance_status is
  'agent_instances plus alive = a beat within the last 30 s (DESIGN §4); error = why it is degraded.';
