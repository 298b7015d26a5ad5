-- 002_sessions: a visitor's run of events without a 30-minute gap.

CREATE TABLE sessions (
	session_id      uuid        PRIMARY KEY, -- event id of its first event
	site            text        NOT NULL,
	visitor         bigint      NOT NULL,
	started_at      timestamptz NOT NULL,
	last_seen_at    timestamptz NOT NULL,
	entry_page      text,
	exit_page       text,
	exit_at         timestamptz,             -- time of the exit page view
	pageviews       integer     NOT NULL,
	events          integer     NOT NULL,    -- not page views
	interactive     integer     NOT NULL,    -- events without the non-interactive flag
	duration_ms     bigint GENERATED ALWAYS AS
		((extract(epoch FROM last_seen_at - started_at) * 1000)::bigint) STORED,
	bounce          boolean GENERATED ALWAYS AS
		(pageviews <= 1 AND interactive = 0) STORED,
	channel         text        NOT NULL,
	source          text        NOT NULL,
	referrer_host   text,
	utm_source      text,
	utm_medium      text,
	utm_campaign    text,
	country         char(2),
	device          text,
	browser         text,
	os              text
) WITH (fillfactor = 70);

-- Neither index holds a column a session's update changes (last_seen_at,
-- exit page, counters), and the fillfactor leaves room on each page: the
-- writer's per-batch updates are HOT (no index writes).
CREATE INDEX sessions_visitor ON sessions (site, visitor);
CREATE INDEX sessions_site_time ON sessions (site, started_at);
