-- Numbers in a command's payload and a recipe step's config must fit a 64-bit register value.
--
-- Why in the database: a jsonb number is arbitrary-precision, so the dashboard could store `1e400` or a
-- 5,001-digit integer. The agent refuses such a value when it parses a command (agent/numbers.py), but Python
-- cannot even decode an integer of more than 4,300 digits from JSON: the claim of such a command failed after the
-- row was already `claimed`, and it stayed `claimed` forever. Refusing it at insert gives the dashboard a clear
-- error (23514, naming the constraint) and leaves nothing half-done. The bounds are the agent's
-- (agent/limits.py MIN_INTEGER … MAX_INTEGER: int64 … uint64), docs/CONTRACT.md §2.

create or replace function public.json_numbers_fit_64_bits(p_value jsonb) returns boolean
  language sql
  immutable
  parallel safe
  set search_path = ''
  as $$
    select p_value is null or not jsonb_path_exists(
      p_value,
      '$.** ? (@.type() == "number" && (@ > 18446744073709551615 || @ < -9223372036854775808))'
    )
  $$;

comment on function public.json_numbers_fit_64_bits(jsonb) is
  'True when every number anywhere in the JSON value lies within int64 … uint64 (docs/CONTRACT.md §2).';

revoke execute on function public.json_numbers_fit_64_bits(jsonb) from public, anon, authenticated, service_role;
-- evaluated by the CHECK constraints of whoever inserts commands, edits recipes, or (the machine's agent)
-- moves a command's status
grant execute on function public.json_numbers_fit_64_bits(jsonb) to service_role, authenticated, ald_agent;

alter table public.machine_commands
  add constraint machine_commands_payload_numbers_fit
  check (public.json_numbers_fit_64_bits(payload));

alter table public.recipe_steps
  add constraint recipe_steps_config_numbers_fit
  check (public.json_numbers_fit_64_bits(config));
