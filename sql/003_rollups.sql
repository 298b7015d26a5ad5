-- 003_rollups: what the dashboard reads. Unique visitors as HyperLogLog
-- sketches (postgresql-15-hll) so that visitors over any range are a union.

CREATE EXTENSION IF NOT EXISTS hll;

CREATE TABLE rollup_hourly (
	site      text        NOT NULL,
	bucket    timestamptz NOT NULL,  -- UTC hour
	dim       text        NOT NULL,  -- all, page, source, channel, ...
	value     text        NOT NULL,  -- '' when absent (e.g. direct)
	pageviews bigint      NOT NULL,
	events    bigint      NOT NULL,
	revenue   numeric(26, 6) NOT NULL,
	visitors  hll         NOT NULL,
	PRIMARY KEY (site, bucket, dim, value)
);

CREATE TABLE rollup_daily (
	site      text        NOT NULL,
	bucket    date        NOT NULL,  -- UTC day
	dim       text        NOT NULL,
	value     text        NOT NULL,
	pageviews bigint      NOT NULL,
	events    bigint      NOT NULL,
	revenue   numeric(26, 6) NOT NULL,
	visitors  hll         NOT NULL,
	PRIMARY KEY (site, bucket, dim, value)
);
