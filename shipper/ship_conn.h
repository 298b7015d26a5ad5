/*
 * ship_conn.h - one shipper connection: a non-blocking TCP socket, plain
 * (loopback only) or TLS 1.3 with certificates on both sides, with a
 * bounded read buffer that frames are parsed from in place and a bounded
 * write buffer that frames are built in. Used by one thread at a time.
 * Also the socket helpers both roles need (resolve + connect, listen) and
 * the TLS contexts (ship_tls.c). Private to shipper/.
 */
#ifndef SHIP_CONN_H
#define SHIP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ship.h"
#include "ship_proto.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

struct ship_conn {
	int fd;
	SSL *ssl;
	uint8_t *rbuf;
	size_t rstart, rlen, rcap; /* unparsed bytes: rbuf[rstart, rlen) */
	size_t rused;              /* size of the frame last handed out */
	uint8_t *wbuf;
	size_t wpos, wlen, wcap; /* unsent bytes: wbuf[wpos, wlen) */
	bool tls_want_write;     /* SSL_read needs the socket writable */
	uint64_t last_rx_ns, last_tx_ns;
	uint64_t polled_ns; /* when the owner last returned from poll() */
	uint64_t bytes_in, bytes_out;
	char peer[80];
};

/* Take ownership of fd (non-blocking) and ssl (may be NULL). Buffers of
 * rcap and wcap bytes. Returns 0 or -ENOMEM (fd and ssl then still the
 * caller's). */
int ship_conn_init(struct ship_conn *c, int fd, SSL *ssl, size_t rcap,
		   size_t wcap);
/* Close the socket, free everything. Accepts a zeroed or closed conn. */
void ship_conn_close(struct ship_conn *c);

/* Run the TLS handshake (client or server side as ssl was made) until
 * done or deadline_ns (alog_mono_ns). 0, -ETIMEDOUT or -ECONNREFUSED
 * with the reason in why (cap bytes). */
int ship_conn_handshake(struct ship_conn *c, uint64_t deadline_ns, char *why,
			size_t cap);

/* Read what the socket has, up to the buffer's room. 0 (some or no bytes),
 * -EPIPE on orderly close, -ECONNRESET or -EPROTO (TLS) on errors. */
int ship_conn_fill(struct ship_conn *c);

/*
 * The next complete frame in the read buffer, body at most body_max.
 * Returns 1 and *f (borrowed until the next call), 0 when more bytes are
 * needed, -EPROTO with *why on a bad frame.
 */
int ship_conn_next_frame(struct ship_conn *c, uint32_t body_max,
			 struct ship_frame *f, const char **why);

/* Room for a frame with a body of up to body_cap bytes at the end of the
 * write buffer; returns where the body goes, or NULL if it does not fit
 * now (flush first). */
uint8_t *ship_conn_frame_begin(struct ship_conn *c, size_t body_cap);
/* Seal the frame begun above with body_len bytes and queue it. */
void ship_conn_frame_end(struct ship_conn *c, uint8_t type, uint32_t body_len);
/* Queue a small control frame whose body is already encoded. 0 or
 * -ENOBUFS. */
int ship_conn_send(struct ship_conn *c, uint8_t type, const uint8_t *body,
		   uint32_t body_len);

/* Write queued bytes. 0 when all are written, -EAGAIN when some remain,
 * other -errno on a broken connection. */
int ship_conn_flush(struct ship_conn *c);
/* Bytes queued and not yet written. */
size_t ship_conn_pending(const struct ship_conn *c);
/* poll() events to wait for. */
short ship_conn_events(const struct ship_conn *c);
/* Bytes TLS has decrypted but not handed out (poll will not see them). */
bool ship_conn_has_buffered(const struct ship_conn *c);
/*
 * Has the peer sent nothing for timeout_ns? Judged at the owner's last
 * poll() (it sets polled_ns after each, then reads what poll reported), not
 * at the present: an owner that was held up itself (a slow disk, a
 * starved process) has not looked at the socket since, and what the peer
 * sent meanwhile is waiting there.
 */
bool ship_conn_silent(const struct ship_conn *c, uint64_t timeout_ns);

/*
 * Resolve host:port (DNS name or IP literal) and connect to each address in
 * turn, each within timeout_ms. loopback_only refuses non-loopback
 * addresses. Returns a connected non-blocking fd, or -errno with why.
 */
int ship_connect(const char *hostport, bool loopback_only, int timeout_ms,
		 char *why, size_t cap);
/* Listening non-blocking socket on host:port. -errno with why. */
int ship_listen(const char *hostport, bool loopback_only, char *why,
		size_t cap);
/* Is fd's peer (or, for a listening socket, its address) loopback? */
bool ship_fd_is_loopback(int fd, bool peer);
/* "ip:port" of fd's peer into buf. */
void ship_fd_peer(int fd, char *buf, size_t cap);

/* ---- TLS contexts (ship_tls.c) ---- */

/* TLS 1.3 only, our certificate and key, peers verified against the CA
 * file; the server requires a client certificate. NULL and why. */
SSL_CTX *ship_tls_ctx(const struct ship_config *cfg, bool server, char *why,
		      size_t cap);
void ship_tls_ctx_free(SSL_CTX *ctx);
/* A client SSL for fd that checks the server's name. */
SSL *ship_tls_client(SSL_CTX *ctx, int fd, const char *server_name, char *why,
		     size_t cap);
SSL *ship_tls_server(SSL_CTX *ctx, int fd, char *why, size_t cap);
/* The verified peer certificate's subject CN into buf; 0 or -ENOENT. */
int ship_tls_peer_cn(SSL *ssl, char *buf, size_t cap);
/* The last OpenSSL error as text (and clear the queue). */
void ship_tls_error(char *buf, size_t cap);

#endif /* SHIP_CONN_H */
