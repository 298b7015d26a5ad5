-- post.lua - wrk script for bench/edge/run.sh: POST one fixed body, count
-- what was sent, and print the run's numbers as one JSON line.
--
-- usage: wrk ... -s post.lua URL -- BODY_FILE CONTENT_TYPE USER_AGENT
--
-- Every request is the same bytes: built once with wrk.format() and handed
-- back by request(). request() exists only to count the requests actually
-- written (wrk calls it right before each write): when the duration is over
-- wrk drops the requests still in flight without counting them, so its
-- "requests" is what was answered, and sent - answered is what was in
-- flight. run.sh checks the log against sent (each request the server got
-- must be in the log) and answered (each 2xx wrk saw).
--
-- done() prints one line starting with "WRK_JSON " (latency in us).

local body_file, content_type, user_agent = nil, nil, nil
local req = nil
sent = 0

local threads = {}

function setup(thread)
	table.insert(threads, thread)
	thread:set("id", #threads)
end

function init(args)
	body_file, content_type, user_agent = args[1], args[2], args[3]
	local f = assert(io.open(body_file, "rb"))
	local body = f:read("*a")
	f:close()
	local headers = {
		["Host"] = "example.com",
		["User-Agent"] = user_agent,
		["Accept"] = "*/*",
		["Accept-Language"] = "en-GB,en;q=0.9",
		["Content-Type"] = content_type,
		["Origin"] = "https://example.com",
		["Referer"] = "https://example.com/blog/privacy-first-analytics",
	}
	req = wrk.format("POST", nil, headers, body)
	-- wrk calls the first thread's request() once more, before the run,
	-- to check what it returns (script_verify_request): not a request.
	if id == 1 then
		sent = -1
	end
end

function request()
	sent = sent + 1
	return req
end

function done(summary, latency, requests)
	local total_sent = 0
	for _, t in ipairs(threads) do
		total_sent = total_sent + t:get("sent")
	end
	local e = summary.errors
	io.write(string.format(
		"WRK_JSON {\"duration_us\": %d, \"requests\": %d, \"sent\": %d, " ..
		"\"bytes\": %d, \"errors\": {\"connect\": %d, \"read\": %d, " ..
		"\"write\": %d, \"status\": %d, \"timeout\": %d}, " ..
		"\"latency_us\": {\"mean\": %.1f, \"stdev\": %.1f, \"p50\": %d, " ..
		"\"p90\": %d, \"p99\": %d, \"p999\": %d, \"max\": %d}}\n",
		summary.duration, summary.requests, total_sent, summary.bytes,
		e.connect, e.read, e.write, e.status, e.timeout,
		latency.mean, latency.stdev, latency:percentile(50),
		latency:percentile(90), latency:percentile(99),
		latency:percentile(99.9), latency.max))
end
