# bench/bodies.sh - request bodies shared by bench/edge/run.sh and
# bench/json/run.sh (sourced), so both benchmarks send the same bytes.

# What Plausible's tracker sends for a page view: 150 bytes.
bench_single_body() {
	printf '%s' '{"n":"pageview","u":"https://example.com/blog/privacy-first-analytics?utm_source=newsletter","d":"example.com","r":"https://www.google.com/","w":1440}'
}

# bench_batch_body N: an alog /track/batch body of N events of a few kinds,
# as a server-side sender or the tracker's queue would flush them (~160
# bytes each).
bench_batch_body() {
	local n=$1 i kinds=(add_to_cart scroll_depth outbound_click video_play signup_start)

	printf '{"siteId":"example","events":['
	for ((i = 0; i < n; i++)); do
		((i > 0)) && printf ','
		printf '{"eventType":"%s","sessionId":"s-%08x","pageUrl":"https://example.com/shop/item-%d?ref=home","timestamp":%d,"metadata":{"sku":"SKU-%05d","plan":"pro"}}' \
			"${kinds[i % ${#kinds[@]}]}" $((0x5eed0000 + i % 17)) \
			$((i % 50)) $((1763700000000 + i * 250)) $((i * 7))
	done
	printf ']}'
}
