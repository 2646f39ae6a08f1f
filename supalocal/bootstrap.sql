-- What a real Supabase database already has before `supabase/migrations` run, and nothing more.
--
-- Our migrations must apply unchanged with `supabase db reset` on a real project, so they may rely only
-- on what the supabase/postgres image provides: its roles, schemas, the `supabase_realtime`
-- publication and the legacy default privileges on `public` (docs/LOCAL_STACK.md §2).
-- This file recreates exactly that on a vanilla PostgreSQL 15. It is idempotent: it runs on every
-- start and after every reset (dropping `public` also drops its default privileges).
--
-- Run it as the cluster superuser (`postgres`, created by initdb). On real Supabase `postgres` is not
-- a superuser, but migrations there run as `postgres` too, so ownership and default privileges match.

-- ---------------------------------------------------------------------------------------------
-- Roles (cluster-wide)
-- ---------------------------------------------------------------------------------------------
do $bootstrap$
declare
  r record;
begin
  for r in
    select * from (values
      ('anon',                    'nologin inherit'),
      ('authenticated',           'nologin inherit'),
      ('service_role',            'nologin inherit bypassrls'),
      ('authenticator',           'login noinherit'),
      ('supabase_admin',          'login superuser createdb createrole replication bypassrls'),
      ('supabase_auth_admin',     'login noinherit createrole'),
      ('supabase_realtime_admin', 'nologin noinherit'),
      ('supabase_read_only_user', 'login bypassrls'),
      ('dashboard_user',          'nologin createdb createrole replication')
    ) as t(name, options)
  loop
    if not exists (select 1 from pg_roles where rolname = r.name) then
      execute format('create role %I %s', r.name, r.options);
    end if;
  end loop;
end
$bootstrap$;

grant anon, authenticated, service_role to authenticator;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role postgres set search_path to "$user", public, extensions;

-- ---------------------------------------------------------------------------------------------
-- Schemas and extensions
-- ---------------------------------------------------------------------------------------------
create schema if not exists extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;

-- `public` as the image leaves it: usable by the API roles, and (legacy behaviour, see the
-- `auto_expose_new_tables` note of the Supabase CLI's config.toml) everything created in it by `postgres`
-- is granted to them by default. Our migrations must therefore revoke what they do not want.
create schema if not exists public;
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;

-- auth: only the JWT accessors that RLS policies use (GoTrue itself is out of scope).
create schema if not exists auth authorization supabase_admin;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255) unique,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  created_at timestamptz,
  updated_at timestamptz
);

create or replace function auth.uid() returns uuid
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $$;

create or replace function auth.role() returns text
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $$;

create or replace function auth.email() returns text
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
  $$;

create or replace function auth.jwt() returns jsonb
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;

-- Schemas other Supabase services own; present so `grant usage` and search paths resolve.
create schema if not exists realtime;
create schema if not exists storage;
create schema if not exists graphql_public;
grant usage on schema realtime, storage, graphql_public to postgres, anon, authenticated, service_role;

-- Migration history, in the Supabase CLI's own table (supabase/cli pkg/migration).
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key,
  statements text[],
  name text
);
create table if not exists supabase_migrations.seed_files (
  path text primary key,
  hash text not null
);

-- ---------------------------------------------------------------------------------------------
-- Realtime publication: created empty by the image; migrations only `alter publication … add table`.
-- ---------------------------------------------------------------------------------------------
do $bootstrap$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$bootstrap$;
