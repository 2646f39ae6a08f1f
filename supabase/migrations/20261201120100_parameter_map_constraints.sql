-- The register map refuses what the agent would refuse (issue 11; agent/plc/registers.py `_validate`):
-- a row the database accepts must never be a map the agent cannot load. Before this migration a float32
-- at address 65535, two parameters on the same registers, or a write_address on a read-only row were
-- accepted and stopped the agent.
--
-- The rules, per machine:
--   width        1 address for coil/discrete_input rows and for bool/int16/uint16, 2 for int32/uint32/
--                float32 in holding/input registers;
--   bounds       0 <= address and address + width - 1 <= 65535, the same for write_address;
--   writable     write_address is set exactly when writable (the reverse half existed already);
--   finite       scale, offset, min_value, max_value and deadband are finite numbers (no NaN/Infinity:
--                a NaN limit would let every value through a range check);
--   reads        no two parameters whose [address, address + width) overlap in the same register table;
--   writes       no write range [write_address, write_address + width) overlapping another parameter's
--                write range or readings in its write table (coil for bit registers, holding for word
--                registers): a write there would change what the other parameter reads or writes.
-- The overlap rules are exclusion constraints (btree_gist for the equality columns), so they hold under
-- concurrent edits too. If existing rows break a rule this migration fails, naming the constraint and the
-- conflicting key values: fix those rows, then apply it again.

create extension if not exists btree_gist with schema extensions;

-- ---------------------------------------------------------------------------------------------
-- The width rule and the write table, in one place (used by the checks and the exclusion constraints)
-- ---------------------------------------------------------------------------------------------
create or replace function public.parameter_width(p_register text, p_data_type text) returns integer
  language sql immutable parallel safe
  set search_path = ''
  as $$
    select case
      when p_register in ('coil', 'discrete_input') then 1
      when p_data_type in ('int32', 'uint32', 'float32') then 2
      else 1
    end
  $$;
comment on function public.parameter_width(text, text) is
  'Addresses one parameter occupies in its table: 1 for coil/discrete_input and for bool/int16/uint16, '
  '2 for int32/uint32/float32 (agent/plc/registers.py Parameter.width).';

create or replace function public.parameter_write_register(p_register text) returns text
  language sql immutable parallel safe
  set search_path = ''
  as $$
    select case when p_register in ('coil', 'discrete_input') then 'coil' else 'holding' end
  $$;
comment on function public.parameter_write_register(text) is
  'The table a parameter''s writes go to: coil for bit registers, holding for word registers '
  '(agent/plc/registers.py RegisterKind.write_kind).';

-- What a parameter occupies in its write table: its write range, plus its readings when it is read from
-- that same table. Two parameters whose footprints overlap would read or write each other's registers.
create or replace function public.parameter_write_footprint(
  p_register text, p_data_type text, p_address integer, p_write_address integer
) returns int4multirange
  language sql immutable parallel safe
  set search_path = ''
  as $$
    select case
             when p_register in ('coil', 'holding')
             then int4multirange(int4range(p_address, p_address + public.parameter_width(p_register, p_data_type)))
             else '{}'::int4multirange
           end
         + case
             when p_write_address is null then '{}'::int4multirange
             else int4multirange(
               int4range(p_write_address, p_write_address + public.parameter_width(p_register, p_data_type)))
           end
  $$;
comment on function public.parameter_write_footprint(text, text, integer, integer) is
  'Addresses a parameter occupies in its write table (parameter_write_register): its write range and, '
  'for coil/holding rows, its read range. Overlapping footprints are refused (parameters_write_range_overlap).';

-- ---------------------------------------------------------------------------------------------
-- Row checks
-- ---------------------------------------------------------------------------------------------
alter table public.parameters
  drop constraint parameters_address_check,
  drop constraint parameters_write_address_check,
  add constraint parameters_address_in_range
    check (address >= 0 and address + public.parameter_width(register, data_type) - 1 <= 65535),
  add constraint parameters_write_address_in_range
    check (write_address is null
           or (write_address >= 0 and write_address + public.parameter_width(register, data_type) - 1 <= 65535)),
  add constraint parameters_write_address_only_when_writable check (write_address is null or writable),
  -- NaN compares greater than every number in PostgreSQL, so these bounds refuse it as well as ±Infinity
  add constraint parameters_numbers_are_finite check (
    scale between -1.7976931348623157e308 and 1.7976931348623157e308
    and "offset" between -1.7976931348623157e308 and 1.7976931348623157e308
    and (min_value is null or min_value between -1.7976931348623157e308 and 1.7976931348623157e308)
    and (max_value is null or max_value between -1.7976931348623157e308 and 1.7976931348623157e308)
    and deadband between -1.7976931348623157e308 and 1.7976931348623157e308
  );

-- ---------------------------------------------------------------------------------------------
-- Overlaps (checked in this order: an overlap of two readings is reported as such)
-- ---------------------------------------------------------------------------------------------
alter table public.parameters
  add constraint parameters_address_overlap exclude using gist (
    machine_id with =,
    register with =,
    int4range(address, address + public.parameter_width(register, data_type)) with &&
  );

alter table public.parameters
  add constraint parameters_write_range_overlap exclude using gist (
    machine_id with =,
    public.parameter_write_register(register) with =,
    public.parameter_write_footprint(register, data_type, address, write_address) with &&
  );

comment on constraint parameters_address_overlap on public.parameters is
  'No two parameters of a machine read overlapping addresses [address, address + width) of one table.';
comment on constraint parameters_write_range_overlap on public.parameters is
  'No parameter writes where another parameter of the machine writes or reads (in the write table).';

-- ---------------------------------------------------------------------------------------------
-- Grants: the checks and index expressions run with the privileges of whoever writes parameters
-- ---------------------------------------------------------------------------------------------
revoke all on function
  public.parameter_width(text, text),
  public.parameter_write_register(text),
  public.parameter_write_footprint(text, text, integer, integer)
  from public, anon, authenticated, service_role;
grant execute on function
  public.parameter_width(text, text),
  public.parameter_write_register(text),
  public.parameter_write_footprint(text, text, integer, integer)
  to service_role, authenticated;
