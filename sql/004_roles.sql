-- 004_roles: alog_writer writes, alog_reader only reads. Both are NOLOGIN
-- groups: grant them to login roles (GRANT alog_reader TO dashboard).
-- Roles are cluster-wide, so they may exist from another database.

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alog_writer') THEN
		CREATE ROLE alog_writer NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alog_reader') THEN
		CREATE ROLE alog_reader NOLOGIN;
	END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO alog_writer, alog_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO alog_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO alog_writer;
-- The writer creates and drops daily partitions: it owns the events table.
ALTER TABLE events OWNER TO alog_writer;
-- Partitions the writer creates later inherit these through its defaults.
ALTER DEFAULT PRIVILEGES FOR ROLE alog_writer IN SCHEMA public
	GRANT SELECT ON TABLES TO alog_reader;
GRANT CREATE ON SCHEMA public TO alog_writer;
