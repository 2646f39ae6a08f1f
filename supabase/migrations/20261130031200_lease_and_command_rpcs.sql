-- RPCs of the single-writer lease (docs/DESIGN.md §5 "Lease and fencing") and of command claiming.
--
-- Fencing: every acquisition of a free or expired lease draws a new token from a global sequence, so
-- tokens only grow. Whoever acts for a machine presents (holder, token); a holder whose lease expired
-- or was taken over has a stale token and every RPC below refuses it. All functions are SECURITY
-- DEFINER so a dashboard user needs no write privilege on the tables, with an empty search_path so
-- no caller-controlled schema can shadow what they reference.

-- A key scoped to one machine (JWT role `ald_agent`, claim `machine_id`; see the machine_agent_role
-- migration) may act for that machine only. These RPCs are SECURITY DEFINER, so RLS does not apply
-- inside them: each checks the caller's scope first. Other roles (service_role, authenticated) are
-- not restricted here.
create or replace function public.assert_machine_scope(p_machine_id uuid)
  returns void
  language plpgsql
  stable
  set search_path = ''
  as $$
  declare
    v_claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  begin
    if v_claims ->> 'role' = 'ald_agent' and (v_claims ->> 'machine_id') is distinct from p_machine_id::text then
      raise exception 'this key acts for machine %, not %', coalesce(v_claims ->> 'machine_id', '(none)'), p_machine_id
        using errcode = '42501';
    end if;
  end;
  $$;

create or replace function public.acquire_lease(p_machine_id uuid, p_holder text, p_ttl_s double precision)
  returns bigint
  language plpgsql
  security definer
  set search_path = ''
  as $$
  declare
    v_lease public.machine_leases%rowtype;
    v_token bigint;
    v_ttl interval;
  begin
    perform public.assert_machine_scope(p_machine_id);
    if p_machine_id is null or coalesce(p_holder, '') = '' then
      raise exception 'acquire_lease: machine_id and holder are required' using errcode = '22023';
    end if;
    if p_ttl_s is null or not (p_ttl_s > 0 and p_ttl_s <= 3600) then
      raise exception 'acquire_lease: ttl must be in (0, 3600] seconds, got %', p_ttl_s using errcode = '22023';
    end if;
    v_ttl := make_interval(secs => p_ttl_s);

    select * into v_lease from public.machine_leases where machine_id = p_machine_id for update;
    if not found then
      -- first lease ever for this machine; a racing first acquirer makes this insert a no-op
      insert into public.machine_leases (machine_id, holder, token, acquired_at, expires_at)
      values (p_machine_id, p_holder, nextval('public.machine_lease_token_seq'), now(), now() + v_ttl)
      on conflict (machine_id) do nothing
      returning token into v_token;
      if v_token is not null then
        return v_token;
      end if;
      select * into v_lease from public.machine_leases where machine_id = p_machine_id for update;
    end if;

    if v_lease.expires_at > now() then
      if v_lease.holder <> p_holder then
        return null;  -- held by someone else
      end if;
      -- re-acquire by the live holder: extend, keep the token
      update public.machine_leases set expires_at = greatest(expires_at, now() + v_ttl)
      where machine_id = p_machine_id;
      return v_lease.token;
    end if;

    -- free (released) or expired: a new, strictly larger token
    update public.machine_leases
    set holder = p_holder, token = nextval('public.machine_lease_token_seq'),
        acquired_at = now(), expires_at = now() + v_ttl
    where machine_id = p_machine_id
    returning token into v_token;
    return v_token;
  end;
  $$;
comment on function public.acquire_lease(uuid, text, double precision) is
  'Take the lease of a machine for p_ttl_s seconds. Returns the fencing token, or null if another '
  'holder has an unexpired lease. A free/released/expired lease gets a NEW token, strictly larger than '
  'any before; the current live holder re-acquiring keeps its token (and extends expiry).';

create or replace function public.renew_lease(
  p_machine_id uuid, p_holder text, p_token bigint, p_ttl_s double precision)
  returns boolean
  language plpgsql
  security definer
  set search_path = ''
  as $$
  begin
    perform public.assert_machine_scope(p_machine_id);
    if p_ttl_s is null or not (p_ttl_s > 0 and p_ttl_s <= 3600) then
      raise exception 'renew_lease: ttl must be in (0, 3600] seconds, got %', p_ttl_s using errcode = '22023';
    end if;
    update public.machine_leases
    set expires_at = now() + make_interval(secs => p_ttl_s)
    where machine_id = p_machine_id and holder = p_holder and token = p_token and expires_at > now();
    return found;
  end;
  $$;
comment on function public.renew_lease(uuid, text, bigint, double precision) is
  'Extend a live lease to now + p_ttl_s. True only if (holder, token) holds it and it has not expired; '
  'an expired lease cannot be renewed (acquire again, which yields a new token).';

create or replace function public.release_lease(p_machine_id uuid, p_holder text, p_token bigint)
  returns boolean
  language plpgsql
  security definer
  set search_path = ''
  as $$
  begin
    perform public.assert_machine_scope(p_machine_id);
    -- keep the row (and its token) so the next acquisition still draws a larger one
    update public.machine_leases
    set expires_at = now()
    where machine_id = p_machine_id and holder = p_holder and token = p_token and expires_at > now();
    return found;
  end;
  $$;
comment on function public.release_lease(uuid, text, bigint) is
  'Give a live lease up at once (handover). True only if (holder, token) held it; the next '
  'acquire_lease by anyone gets a new token.';

create or replace function public.claim_command(
  p_command_id bigint, p_machine_id uuid, p_holder text, p_token bigint)
  returns setof public.machine_commands
  language plpgsql
  security definer
  set search_path = ''
  as $$
  declare
    v_cmd public.machine_commands%rowtype;
  begin
    perform public.assert_machine_scope(p_machine_id);
    -- The lease row is share-locked so it cannot change hands until this claim commits.
    perform 1 from public.machine_leases
    where machine_id = p_machine_id and holder = p_holder and token = p_token and expires_at > now()
    for share;
    if not found then
      return;  -- not the lease holder, or a stale token
    end if;

    -- FOR UPDATE serialises racing claimers; the loser re-reads the row and sees it is no longer pending.
    select * into v_cmd from public.machine_commands
    where id = p_command_id and machine_id = p_machine_id
    for update;
    if not found or v_cmd.status <> 'pending' then
      return;
    end if;
    if v_cmd.expires_at <= now() then
      update public.machine_commands set status = 'expired', finished_at = now() where id = p_command_id;
      return;
    end if;

    return query
      update public.machine_commands
      set status = 'claimed', claimed_by = p_holder, claimed_at = now()
      where id = p_command_id
      returning *;
  end;
  $$;
comment on function public.claim_command(bigint, uuid, text, bigint) is
  'Atomically claim a pending command of p_machine_id. Returns the claimed row (status claimed, '
  'claimed_by = p_holder, claimed_at set), or no row if the caller does not hold an unexpired lease '
  'with p_token for that machine, or the command is unknown, for another machine, or not pending. '
  'A pending command past expires_at is marked expired (and not returned): it never runs.';

create or replace function public.expire_commands(p_machine_id uuid)
  returns integer
  language plpgsql
  security definer
  set search_path = ''
  as $$
  declare
    v_count integer;
  begin
    perform public.assert_machine_scope(p_machine_id);
    update public.machine_commands
    set status = 'expired', finished_at = now()
    where machine_id = p_machine_id and status = 'pending' and expires_at <= now();
    get diagnostics v_count = row_count;
    return v_count;
  end;
  $$;
comment on function public.expire_commands(uuid) is
  'Mark every pending command of p_machine_id past its expires_at as expired; returns how many. '
  'The agent calls it at start and on each poll so stale commands never run after a restart.';
