-- 001_events: the events table (partitioned by day), offsets, dead letters.
-- Applied by `alog-writer migrate` (docs/writer.md); never edit an applied
-- migration: add a new file.

CREATE TABLE events (
	received_at     timestamptz NOT NULL,  -- edge receive time (partition key)
	event_id        uuid        NOT NULL,  -- UUIDv7 minted at the edge
	site            text        NOT NULL,
	kind            smallint    NOT NULL CHECK (kind BETWEEN 1 AND 6),
	api             smallint    NOT NULL CHECK (api BETWEEN 1 AND 3),
	name            text        NOT NULL,
	flags           smallint    NOT NULL,
	bot             boolean     NOT NULL,  -- edge flag or user agent
	client_at       timestamptz,
	visitor         bigint      NOT NULL,  -- keyed hash, daily salt
	session_id      uuid        NOT NULL,  -- writer's session (30 min)
	client_session  text,
	user_id         text,
	url             text,
	host            text,
	path            text,
	query           text,
	referrer        text,
	referrer_host   text,
	referrer_path   text,
	channel         text        NOT NULL,
	source          text        NOT NULL,
	utm_source      text,
	utm_medium      text,
	utm_campaign    text,
	utm_content     text,
	utm_term        text,
	country         char(2),
	region          text,
	city            text,
	user_agent      text,
	browser         text,
	browser_version text,
	os              text,
	os_version      text,
	device          text,                  -- desktop, mobile, tablet, bot, other
	device_brand    text,
	device_model    text,
	language        text,
	timezone        text,
	screen_width    integer,
	screen_height   integer,
	viewport_width  integer,
	viewport_height integer,
	touch_points    smallint,
	title           text,
	hostname        text,
	content_id      text,
	content_type    text,
	props           jsonb,
	device_extra    jsonb,
	revenue         numeric(26, 6),
	currency        char(3),
	funnel_id       text,
	step_id         text,
	step_order      integer,
	target_id       text,
	target_type     text,
	log_name        text        NOT NULL,
	log_offset      bigint      NOT NULL,
	PRIMARY KEY (event_id, received_at)
) PARTITION BY RANGE (received_at);

CREATE INDEX events_site_time ON events (site, received_at);

-- Where each log resumes: written in the same transaction as the rows.
CREATE TABLE consumer_offsets (
	log_name    text        PRIMARY KEY,
	next_offset bigint      NOT NULL CHECK (next_offset >= 0),
	updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Records the writer could not write, with why; the writer goes on.
CREATE TABLE dead_letters (
	log_name   text        NOT NULL,
	log_offset bigint      NOT NULL,
	reason     text        NOT NULL,
	record     bytea,                      -- NULL: lost to damage in the log
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (log_name, log_offset)
);
