/*
 * ship_tls.c - OpenSSL contexts for the shipper: TLS 1.3 only, a
 * certificate on both sides, both verified against the configured CA; the
 * sender also checks the receiver's name, the receiver maps the client
 * certificate's subject CN to an allowed edge (ship_recv.c).
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "ship_conn.h"

void ship_tls_error(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, cap);
	else
		snprintf(buf, cap, "connection closed by peer");
	ERR_clear_error();
}

SSL_CTX *ship_tls_ctx(const struct ship_config *cfg, bool server, char *why,
		      size_t cap)
{
	SSL_CTX *ctx =
		SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	char tls[256];

	if (!ctx) {
		ship_tls_error(tls, sizeof(tls));
		snprintf(why, cap, "SSL_CTX_new: %s", tls);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		snprintf(why, cap, "TLS 1.3 is not available");
		goto out_free;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		ship_tls_error(tls, sizeof(tls));
		snprintf(why, cap, "tls_cert %s: %s", cfg->tls_cert, tls);
		goto out_free;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) !=
		    1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ship_tls_error(tls, sizeof(tls));
		snprintf(why, cap, "tls_key %s: %s", cfg->tls_key, tls);
		goto out_free;
	}
	if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1) {
		ship_tls_error(tls, sizeof(tls));
		snprintf(why, cap, "tls_ca %s: %s", cfg->tls_ca, tls);
		goto out_free;
	}
	SSL_CTX_set_verify(ctx,
			   SSL_VERIFY_PEER |
				   (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT :
					     0),
			   NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* No session tickets: every connection authenticates afresh. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (server)
		SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;

out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

void ship_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

SSL *ship_tls_client(SSL_CTX *ctx, int fd, const char *server_name, char *why,
		     size_t cap)
{
	SSL *ssl = SSL_new(ctx);

	if (!ssl || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_set_tlsext_host_name(ssl, server_name) != 1 ||
	    SSL_set1_host(ssl, server_name) != 1) {
		snprintf(why, cap, "SSL_new/set_fd/set1_host failed");
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

SSL *ship_tls_server(SSL_CTX *ctx, int fd, char *why, size_t cap)
{
	SSL *ssl = SSL_new(ctx);

	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		snprintf(why, cap, "SSL_new/set_fd failed");
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

int ship_tls_peer_cn(SSL *ssl, char *buf, size_t cap)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	X509_NAME *name;
	int n;

	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
		return -ENOENT;
	name = X509_get_subject_name(cert);
	n = name ? X509_NAME_get_text_by_NID(name, NID_commonName, buf,
					     (int)cap) :
		   -1;
	if (n <= 0 || (size_t)n >= cap || strlen(buf) != (size_t)n)
		return -ENOENT; /* absent, too long, or an embedded NUL */
	return 0;
}
