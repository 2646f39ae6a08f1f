-- Process alarms (issue 13, ISA-18.2 practice; docs/CONTRACT.md §2 "alarm_limits" and "alarms",
-- docs/DESIGN.md §5 "Process alarms").
--
-- alarm_limits: per-parameter limits (low-low, low, high, high-high), a deadband that applies to clearing,
-- an on-delay that applies to raising, and a severity per limit. The dashboard edits them; the machine's
-- agent reads them and reloads them on change (realtime), like the interlocks.
--
-- alarms: one row per alarm occurrence, written only by the agent (through its spool: a full row each time,
-- upserted by id, so a replay changes nothing). State follows ISA-18.2:
--   active_unacked --ack--> active_acked --return to normal--> closed
--   active_unacked --return to normal--> cleared_unacked --ack--> closed
-- The dashboard acknowledges through the command table (type ack_alarm), never by writing the row.
--
-- machine_commands: the ack_alarm type, and requested_by (who asked: taken from the caller's token, so a
-- dashboard user cannot claim to be somebody else; the agent records it as alarms.acked_by).
-- Grants are explicit: nothing here relies on default privileges in `public`.

-- ---------------------------------------------------------------------------------------------
-- alarm_limits
-- ---------------------------------------------------------------------------------------------
create table public.alarm_limits (
  id uuid primary key default gen_random_uuid(),
  machine_id uuid not null references public.machines (id) on delete cascade,
  key text not null
    constraint alarm_limits_key_check check (key ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$' and char_length(key) <= 200),
  enabled boolean not null default true,
  low_low double precision,
  low double precision,
  high double precision,
  high_high double precision,
  low_low_severity text not null default 'critical',
  low_severity text not null default 'medium',
  high_severity text not null default 'medium',
  high_high_severity text not null default 'critical',
  deadband double precision not null default 0,
  on_delay_ms integer not null default 0
    constraint alarm_limits_on_delay_ms_check check (on_delay_ms between 0 and 3600000),
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint alarm_limits_machine_key_key unique (machine_id, key),
  constraint alarm_limits_severity_check check (
    low_low_severity in ('critical', 'high', 'medium', 'low')
    and low_severity in ('critical', 'high', 'medium', 'low')
    and high_severity in ('critical', 'high', 'medium', 'low')
    and high_high_severity in ('critical', 'high', 'medium', 'low')),
  constraint alarm_limits_has_a_limit check (num_nonnulls(low_low, low, high, high_high) >= 1),
  -- a NaN or infinite limit would let every value through (or raise on every value)
  constraint alarm_limits_numbers_are_finite check (
    (low_low is null or (low_low <> 'NaN' and abs(low_low) < 'Infinity'))
    and (low is null or (low <> 'NaN' and abs(low) < 'Infinity'))
    and (high is null or (high <> 'NaN' and abs(high) < 'Infinity'))
    and (high_high is null or (high_high <> 'NaN' and abs(high_high) < 'Infinity'))
    and deadband <> 'NaN' and deadband < 'Infinity'),
  constraint alarm_limits_deadband_check check (deadband >= 0),
  -- low_low < low < high < high_high, for those that are set
  constraint alarm_limits_ordered check (
    (low_low is null or low is null or low_low < low)
    and (low_low is null or high is null or low_low < high)
    and (low_low is null or high_high is null or low_low < high_high)
    and (low is null or high is null or low < high)
    and (low is null or high_high is null or low < high_high)
    and (high is null or high_high is null or high < high_high))
);
comment on table public.alarm_limits is
  'Process alarm limits of a machine, one row per parameter key (docs/CONTRACT.md §2). A value beyond a '
  'limit (x > high, x > high_high, x < low, x < low_low) for on_delay_ms raises an alarm of that limit''s '
  'severity; it clears once the value is back by more than deadband (x <= high - deadband, …). An '
  'unreadable value neither raises nor clears. The dashboard edits these rows; the agent reloads on change.';
comment on column public.alarm_limits.key is
  'The parameter key the limits apply to (a key of the machine''s register map; unknown keys never alarm).';
comment on column public.alarm_limits.deadband is
  'Engineering units, >= 0: how far back inside a limit the value must come before its alarm clears.';
comment on column public.alarm_limits.on_delay_ms is
  'How long (ms, 0..3600000) a value must stay beyond a limit before the alarm is raised; 0 = at once.';

create index alarm_limits_machine_idx on public.alarm_limits (machine_id);

create trigger alarm_limits_set_updated_at before update on public.alarm_limits
  for each row execute function public.set_updated_at();

-- As for interlocks: moving a row to another machine would never reach the old machine's agent.
create or replace function public.alarm_limits_keep_machine() returns trigger
  language plpgsql
  set search_path = ''
  as $$
  begin
    if new.machine_id is distinct from old.machine_id then
      raise exception 'alarm_limits.machine_id is immutable (limits of %): delete the row and insert it for the '
        'other machine', old.key using errcode = '23514';
    end if;
    return new;
  end;
  $$;
comment on function public.alarm_limits_keep_machine() is
  'Trigger: alarm_limits.machine_id never changes, so the agent of the old machine always sees a row go.';

create trigger alarm_limits_keep_machine before update of machine_id on public.alarm_limits
  for each row execute function public.alarm_limits_keep_machine();

-- ---------------------------------------------------------------------------------------------
-- alarms
-- ---------------------------------------------------------------------------------------------
create table public.alarms (
  id uuid primary key,
  machine_id uuid not null references public.machines (id) on delete cascade,
  key text not null constraint alarms_key_check check (char_length(key) between 1 and 200),
  kind text not null
    constraint alarms_kind_check check (kind in ('low_low', 'low', 'high', 'high_high', 'trip')),
  severity text not null
    constraint alarms_severity_check check (severity in ('critical', 'high', 'medium', 'low')),
  state text not null
    constraint alarms_state_check check (state in ('active_unacked', 'active_acked', 'cleared_unacked', 'closed')),
  value double precision,
  limit_value double precision,
  message text not null default '' constraint alarms_message_check check (char_length(message) <= 2000),
  run_id uuid,
  raised_at timestamptz not null,
  acked_at timestamptz,
  acked_by text constraint alarms_acked_by_check check (char_length(acked_by) <= 200),
  cleared_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- the state is what happened: acknowledged or not, back to normal or not
  constraint alarms_state_matches check (
    (state = 'active_unacked' and acked_at is null and cleared_at is null)
    or (state = 'active_acked' and acked_at is not null and cleared_at is null)
    or (state = 'cleared_unacked' and acked_at is null and cleared_at is not null)
    or (state = 'closed' and acked_at is not null and cleared_at is not null)),
  constraint alarms_acked_by_with_ack check (acked_by is null or acked_at is not null)
);
comment on table public.alarms is
  'Process alarm occurrences (docs/CONTRACT.md §2), written by the machine''s agent only. ISA-18.2 states: '
  'active_unacked -> active_acked (acknowledged) -> closed (back to normal); active_unacked -> '
  'cleared_unacked (back to normal first) -> closed (acknowledged). kind trip: a trip interlock fired (key is '
  'the interlock''s name). Acknowledge with a machine_commands row of type ack_alarm.';
comment on column public.alarms.key is 'The parameter key, or for kind trip the interlock''s name.';
comment on column public.alarms.value is 'The value that raised the alarm (engineering units), null if none.';
comment on column public.alarms.limit_value is 'The limit it crossed, null for a trip without a numeric bound.';
comment on column public.alarms.run_id is 'The run active when it was raised (no foreign key, like history).';
comment on column public.alarms.acked_by is
  'Who acknowledged it: the ack_alarm command''s requested_by (the dashboard user, or the CLI''s user@host).';

-- the dashboard's and the restarting agent's query: a machine's open alarms, newest first
create index alarms_open_idx on public.alarms (machine_id, raised_at desc) where state <> 'closed';
create index alarms_machine_raised_idx on public.alarms (machine_id, raised_at desc);

create trigger alarms_set_updated_at before update on public.alarms
  for each row execute function public.set_updated_at();

-- ---------------------------------------------------------------------------------------------
-- machine_commands: ack_alarm, and who asked
-- ---------------------------------------------------------------------------------------------
alter table public.machine_commands drop constraint machine_commands_type_check;
alter table public.machine_commands add constraint machine_commands_type_check
  check (type in ('start_recipe', 'stop_recipe', 'pause_recipe', 'resume_recipe', 'set_parameter', 'ack_alarm'));

-- Who is asking, from the caller's token: the user's email, else its subject, else its role.
create or replace function public.jwt_requester() returns text
  language sql
  stable
  set search_path = ''
  as $$
    select left(coalesce(
      nullif(c ->> 'email', ''), nullif(c ->> 'sub', ''), nullif(c ->> 'role', ''), session_user::text), 200)
    from (select nullif(current_setting('request.jwt.claims', true), '')::jsonb as c) as claims
  $$;
comment on function public.jwt_requester() is
  'Who is asking, from request.jwt.claims: email, else sub, else role (the default of '
  'machine_commands.requested_by).';

alter table public.machine_commands add column requested_by text default public.jwt_requester()
  constraint machine_commands_requested_by_check check (char_length(requested_by) <= 200);
comment on column public.machine_commands.requested_by is
  'Who inserted the command: set from the caller''s token (a dashboard user cannot choose it); the service '
  'role may name an operator (the CLI sends cli:<user>@<host>). Recorded as alarms.acked_by by ack_alarm.';

-- ---------------------------------------------------------------------------------------------
-- Security: limits as interlocks (the dashboard edits, the machine's agent reads its own); alarms are
-- the agent's to write and everybody's (signed in) to read; anon nothing.
-- ---------------------------------------------------------------------------------------------
alter table public.alarm_limits enable row level security;
alter table public.alarms enable row level security;
revoke all on table public.alarm_limits, public.alarms from public, anon, authenticated, service_role, ald_agent;

grant select, insert, update, delete on table public.alarm_limits, public.alarms to service_role;
create policy service_role_all on public.alarm_limits for all to service_role using (true) with check (true);
create policy service_role_all on public.alarms for all to service_role using (true) with check (true);

grant select, insert, update, delete on table public.alarm_limits to authenticated;
create policy authenticated_read on public.alarm_limits for select to authenticated using (true);
create policy authenticated_write on public.alarm_limits for insert to authenticated with check (true);
create policy authenticated_update on public.alarm_limits for update to authenticated using (true) with check (true);
create policy authenticated_delete on public.alarm_limits for delete to authenticated using (true);

grant select on table public.alarms to authenticated;
create policy authenticated_read on public.alarms for select to authenticated using (true);

grant select on table public.alarm_limits to ald_agent;
create policy ald_agent_own on public.alarm_limits for select to ald_agent
  using (machine_id = public.jwt_machine_id());

-- upserts: insert, and update on conflict, both need the row readable
grant select, insert, update on table public.alarms to ald_agent;
create policy ald_agent_own on public.alarms for all to ald_agent
  using (machine_id = public.jwt_machine_id()) with check (machine_id = public.jwt_machine_id());

revoke all on function public.alarm_limits_keep_machine(), public.jwt_requester()
  from public, anon, authenticated, service_role;
-- evaluated as the default of machine_commands.requested_by by whoever inserts commands
grant execute on function public.jwt_requester() to service_role, authenticated;

-- ---------------------------------------------------------------------------------------------
-- Realtime: the agent reloads its limits on any change; the dashboard follows alarms live. FULL replica
-- identity: DELETE events carry machine_id for the filter, state moves can be read from old_record.
-- ---------------------------------------------------------------------------------------------
alter publication supabase_realtime add table public.alarm_limits, public.alarms;
alter table public.alarm_limits replica identity full;
alter table public.alarms replica identity full;
