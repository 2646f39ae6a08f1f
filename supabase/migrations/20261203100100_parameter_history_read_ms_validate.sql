-- Validates parameter_history_read_ms_check (added NOT VALID by 20261203100000) on the rows that existed before
-- it: all of them have read_ms NULL, so this only proves it. A migration of its own so that its scan of every
-- partition runs in a transaction of its own, under SHARE UPDATE EXCLUSIVE: the agents' inserts go on meanwhile.
-- Validating the partitioned parent validates each partition and marks the parent's constraint valid.

alter table public.parameter_history validate constraint parameter_history_read_ms_check;
