-- Seed: one reference machine, its register map and two recipes (applied after migrations by
-- `supabase db reset` and by the local stack). Fixed ids so tests, docs and the simulator agree.
insert into public.machines (id, name, serial_number, status)
values ('00000000-0000-4000-8000-000000000001', 'ALD reference reactor', 'ALD-REF-0001', 'offline');
