/*
 * ship_conn.c - the shipper's connection: non-blocking socket I/O, plain or
 * through OpenSSL, into bounded buffers; frames are parsed in place from
 * the read buffer and built in place in the write buffer, so a batch is
 * copied once from the log into the frame and once into the kernel.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alog_common.h"
#include "ship_conn.h"

int ship_conn_init(struct ship_conn *c, int fd, SSL *ssl, size_t rcap,
		   size_t wcap)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->rbuf = malloc(rcap);
	c->wbuf = malloc(wcap);
	if (!c->rbuf || !c->wbuf) {
		free(c->rbuf);
		free(c->wbuf);
		c->rbuf = c->wbuf = NULL;
		return -ENOMEM;
	}
	c->fd = fd;
	c->ssl = ssl;
	c->rcap = rcap;
	c->wcap = wcap;
	c->last_rx_ns = c->last_tx_ns = c->polled_ns = alog_mono_ns();
	ship_fd_peer(fd, c->peer, sizeof(c->peer));
	return 0;
}

void ship_conn_close(struct ship_conn *c)
{
	if (!c)
		return;
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->rbuf);
	free(c->wbuf);
	c->rbuf = c->wbuf = NULL;
}

int ship_conn_handshake(struct ship_conn *c, uint64_t deadline_ns, char *why,
			size_t cap)
{
	for (;;) {
		struct pollfd pfd = { .fd = c->fd };
		uint64_t now = alog_mono_ns();
		int rc, e;

		ERR_clear_error();
		rc = SSL_do_handshake(c->ssl);
		if (rc == 1)
			return 0;
		e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_WANT_READ)
			pfd.events = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			pfd.events = POLLOUT;
		else {
			char tls[256];
			long vr = SSL_get_verify_result(c->ssl);

			ship_tls_error(tls, sizeof(tls));
			snprintf(why, cap, "TLS handshake failed: %s%s%s", tls,
				 vr != X509_V_OK ? "; certificate: " : "",
				 vr != X509_V_OK ?
					 X509_verify_cert_error_string(vr) :
					 "");
			return -ECONNREFUSED;
		}
		if (now >= deadline_ns) {
			snprintf(why, cap, "TLS handshake timed out");
			return -ETIMEDOUT;
		}
		rc = poll(&pfd, 1, (int)((deadline_ns - now) / 1000000 + 1));
		if (rc < 0 && errno != EINTR) {
			snprintf(why, cap, "poll: %s", strerror(errno));
			return -errno;
		}
	}
}

int ship_conn_fill(struct ship_conn *c)
{
	/* Move the unparsed tail to the front when room runs out. */
	if (c->rstart > 0 &&
	    (c->rlen == c->rstart || c->rcap - c->rlen < c->rcap / 4)) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rlen - c->rstart);
		c->rlen -= c->rstart;
		c->rstart = 0;
	}
	c->tls_want_write = false;
	while (c->rlen < c->rcap) {
		size_t room = c->rcap - c->rlen;
		ssize_t n;

		if (c->ssl) {
			int rc, e;

			ERR_clear_error();
			rc = SSL_read(c->ssl, c->rbuf + c->rlen,
				      room > INT32_MAX ? INT32_MAX : (int)room);
			if (rc > 0) {
				n = rc;
			} else {
				e = SSL_get_error(c->ssl, rc);
				if (e == SSL_ERROR_WANT_READ)
					return 0;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->tls_want_write = true;
					return 0;
				}
				if (e == SSL_ERROR_ZERO_RETURN)
					return -EPIPE;
				if (e == SSL_ERROR_SYSCALL && errno &&
				    errno != EAGAIN)
					return -ECONNRESET;
				if (e == SSL_ERROR_SYSCALL)
					return -EPIPE;
				return -EPROTO;
			}
		} else {
			n = recv(c->fd, c->rbuf + c->rlen, room, 0);
			if (n == 0)
				return -EPIPE;
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return 0;
				if (errno == EINTR)
					continue;
				return -errno;
			}
		}
		c->rlen += (size_t)n;
		c->bytes_in += (uint64_t)n;
		c->last_rx_ns = alog_mono_ns();
	}
	return 0;
}

int ship_conn_next_frame(struct ship_conn *c, uint32_t body_max,
			 struct ship_frame *f, const char **why)
{
	enum ship_parse st;
	size_t used = 0;

	c->rstart += c->rused;
	c->rused = 0;
	if (c->rstart == c->rlen) {
		c->rstart = c->rlen = 0;
		return 0;
	}
	st = ship_frame_parse(c->rbuf + c->rstart, c->rlen - c->rstart,
			      body_max, f, &used, why);
	if (st == SHIP_PARSE_INVALID)
		return -EPROTO;
	if (st == SHIP_PARSE_INCOMPLETE) {
		/* A frame that fits no buffer is refused by its length check
		 * (body_max + header <= rcap is the caller's promise). */
		if (c->rstart > 0 && c->rlen == c->rcap) {
			memmove(c->rbuf, c->rbuf + c->rstart,
				c->rlen - c->rstart);
			c->rlen -= c->rstart;
			c->rstart = 0;
		}
		return 0;
	}
	c->rused = used;
	return 1;
}

static void wbuf_compact(struct ship_conn *c)
{
	if (c->wpos == 0)
		return;
	memmove(c->wbuf, c->wbuf + c->wpos, c->wlen - c->wpos);
	c->wlen -= c->wpos;
	c->wpos = 0;
}

uint8_t *ship_conn_frame_begin(struct ship_conn *c, size_t body_cap)
{
	size_t need = SHIP_FRAME_HEADER_BYTES + body_cap;

	if (c->wcap - c->wlen < need)
		wbuf_compact(c);
	if (c->wcap - c->wlen < need)
		return NULL;
	return c->wbuf + c->wlen + SHIP_FRAME_HEADER_BYTES;
}

void ship_conn_frame_end(struct ship_conn *c, uint8_t type, uint32_t body_len)
{
	c->wlen += ship_frame_seal(c->wbuf + c->wlen, type, body_len);
}

int ship_conn_send(struct ship_conn *c, uint8_t type, const uint8_t *body,
		   uint32_t body_len)
{
	uint8_t *p = ship_conn_frame_begin(c, body_len);

	if (!p)
		return -ENOBUFS;
	memcpy(p, body, body_len);
	ship_conn_frame_end(c, type, body_len);
	return 0;
}

int ship_conn_flush(struct ship_conn *c)
{
	while (c->wpos < c->wlen) {
		size_t len = c->wlen - c->wpos;
		ssize_t n;

		if (c->ssl) {
			int rc, e;

			ERR_clear_error();
			rc = SSL_write(c->ssl, c->wbuf + c->wpos,
				       len > (1u << 30) ? (1 << 30) : (int)len);
			if (rc > 0) {
				n = rc;
			} else {
				e = SSL_get_error(c->ssl, rc);
				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					return -EAGAIN;
				return e == SSL_ERROR_SYSCALL ? -EPIPE :
								-EPROTO;
			}
		} else {
			n = send(c->fd, c->wbuf + c->wpos, len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return -EAGAIN;
				if (errno == EINTR)
					continue;
				return -errno;
			}
		}
		c->wpos += (size_t)n;
		c->bytes_out += (uint64_t)n;
		c->last_tx_ns = alog_mono_ns();
	}
	c->wpos = c->wlen = 0;
	return 0;
}

size_t ship_conn_pending(const struct ship_conn *c)
{
	return c->wlen - c->wpos;
}

short ship_conn_events(const struct ship_conn *c)
{
	short ev = POLLIN;

	if (c->wpos < c->wlen || c->tls_want_write)
		ev |= POLLOUT;
	return ev;
}

bool ship_conn_has_buffered(const struct ship_conn *c)
{
	return c->ssl && SSL_pending(c->ssl) > 0;
}

bool ship_conn_silent(const struct ship_conn *c, uint64_t timeout_ns)
{
	return c->polled_ns > c->last_rx_ns &&
	       c->polled_ns - c->last_rx_ns > timeout_ns;
}

static bool sockaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;
		const uint8_t *b = in6->sin6_addr.s6_addr;
		static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0,    0,
						      0, 0, 0, 0, 0xff, 0xff };

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return memcmp(b, v4mapped, 12) == 0 && b[12] == 127;
	}
	return false;
}

bool ship_fd_is_loopback(int fd, bool peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) :
			getsockname(fd, (struct sockaddr *)&ss, &len);

	return rc == 0 && sockaddr_is_loopback((struct sockaddr *)&ss);
}

void ship_fd_peer(int fd, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &in6->sin6_addr, host,
				  sizeof(host));
			port = ntohs(in6->sin6_port);
		}
	}
	snprintf(buf, cap, "%s:%u", host, port);
}

static void sock_tune(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int ship_connect(const char *hostport, bool loopback_only, int timeout_ms,
		 char *why, size_t cap)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_family = AF_UNSPEC };
	struct addrinfo *res, *ai;
	char host[256], port[16];
	int rc, fd = -1, err = -EHOSTUNREACH;

	if (ship_split_hostport(hostport, host, sizeof(host), port,
				sizeof(port)) < 0) {
		snprintf(why, cap, "bad address '%s'", hostport);
		return -EINVAL;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(why, cap, "resolving %s: %s", host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	snprintf(why, cap, "%s: no usable address", hostport);
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (loopback_only && !sockaddr_is_loopback(ai->ai_addr)) {
			snprintf(why, cap,
				 "%s resolves to a non-loopback address and "
				 "transport is plain-loopback-only",
				 hostport);
			err = -EPERM;
			continue;
		}
		fd = socket(ai->ai_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		sock_tune(fd);
		rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rc < 0 && errno != EINPROGRESS) {
			err = -errno;
			snprintf(why, cap, "connect %s: %s", hostport,
				 strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rc = poll(&pfd, 1, timeout_ms);
		if (rc <= 0) {
			err = rc == 0 ? -ETIMEDOUT : -errno;
			snprintf(why, cap, "connect %s: %s", hostport,
				 rc == 0 ? "timed out" : strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			err = -soerr;
			snprintf(why, cap, "connect %s: %s", hostport,
				 strerror(soerr));
			close(fd);
			fd = -1;
			continue;
		}
		break;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : err;
}

int ship_listen(const char *hostport, bool loopback_only, char *why, size_t cap)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_family = AF_UNSPEC,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	char host[256], port[16];
	int rc, fd, one = 1;

	if (ship_split_hostport(hostport, host, sizeof(host), port,
				sizeof(port)) < 0) {
		snprintf(why, cap, "bad address '%s'", hostport);
		return -EINVAL;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(why, cap, "resolving %s: %s", host, gai_strerror(rc));
		return -EINVAL;
	}
	if (loopback_only && !sockaddr_is_loopback(res->ai_addr)) {
		snprintf(why, cap,
			 "transport plain-loopback-only may listen on a "
			 "loopback address only, not %s",
			 hostport);
		freeaddrinfo(res);
		return -EPERM;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 128) < 0) {
		rc = -errno;
		close(fd);
		goto out_free;
	}
	freeaddrinfo(res);
	return fd;

out_free:
	snprintf(why, cap, "listen %s: %s", hostport, strerror(-rc));
	freeaddrinfo(res);
	return rc;
}
