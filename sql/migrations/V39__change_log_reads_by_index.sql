-- Every API instance's listener calls roster.changes_after every 5 ms. Its filter (xid past the
-- last snapshot's xmax, or among its in-progress xids) is an OR the planner would answer with a
-- sequential scan whenever it guessed the table small: and it is read at its physical size,
-- deleted rows included until VACUUM reclaims them. Pruned rows are dead tuples, so the log's
-- heap holds every row written since the last vacuum; with autovacuum off (as on this project's
-- CI machines) or behind, each poll scanned all of it. Measured on the bench database after
-- its load (32,717 dead rows, 243 live, 568 pages): 568 buffers and 0.5-3.4 ms a poll, against
-- 2 buffers and 0.04-0.1 ms by the index. In `make bench` the cache-on server (the one with a
-- listener) answered uncached requests 28-61% slower than the cache-off one for it (S7, S10,
-- S4, S11); with this migration, within 4%.
--
-- The function reads the log only through ix_change_log_xid now (a bitmap OR of the range and
-- the xid list), whatever the statistics say: the range starts past every pruned row, so a
-- poll's cost no longer depends on how long ago the table was vacuumed.

alter function roster.changes_after(pg_snapshot) set enable_seqscan = off;

comment on function roster.changes_after(pg_snapshot) is
  'The change log since snapshot p_after: the current snapshot first (pass it next time), then each change (kind, tenant_id, object_id, version, recorded_at: when it was written) committed since. Null p_after: the snapshot alone. Reads the log by its xid index only (V39), so a poll costs the same however many pruned rows await VACUUM.';
