/*
 * gh_tls.h: TLS with OpenSSL 3, below HTTP.
 *
 * Two halves:
 *
 *   contexts (gh_tls_ctx.c, gh_tls_cache.c): an SSL_CTX per server{} (or
 *     per proxy location for TLS to upstreams), configured while the
 *     configuration is read -- in the master, so that a bad certificate
 *     fails the load (and a reload) with file:line, and workers inherit
 *     ready contexts.  Session cache in a shm zone, ticket keys, OCSP
 *     stapling from a file, client verification.
 *
 *   connections (gh_tls.c): a gh_tls_conn_t in c->tls, a non-blocking
 *     handshake driven by the caller's event handlers, then c->recv /
 *     c->send / c->send_chain swapped for SSL_read / SSL_write versions
 *     with the same contract as the plain ones (see gh_conn.h), so the
 *     HTTP and proxy code above need not know.  The SSL object is freed
 *     by a cleanup of the connection's arena, which runs before the fd is
 *     closed and so can still send close_notify.
 *
 * Edge-triggered epoll and OpenSSL's buffering: contexts read ahead
 * (one read() takes what the socket holds, several records at once), so
 * bytes may wait inside SSL, decrypted or not, invisible to epoll.  A
 * recv that returns data therefore keeps read.ready set while
 * SSL_has_pending(), and clears it only when its last read() emptied
 * the socket and SSL holds nothing (as a short plain read does);
 * WANT_READ clears it too.  A reader that stops early (buffer full,
 * back-pressure) and later resumes while read.ready is set finds the
 * buffered bytes without any new edge.  An SSL_read that needs to write
 * (WANT_WRITE) or an SSL_write that needs to read (WANT_READ) parks the
 * other direction's handler and resumes the blocked one when that
 * direction becomes ready, as nginx does.
 */
#ifndef GH_TLS_H
#define GH_TLS_H

#include "../event/gh_conn.h"
#include "../core/gh_shm.h"

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* ssl_protocols / proxy_ssl_protocols bits */
#define GH_TLS_SSLv2    0x0002
#define GH_TLS_SSLv3    0x0004
#define GH_TLS_TLSv1    0x0008
#define GH_TLS_TLSv1_1  0x0010
#define GH_TLS_TLSv1_2  0x0020
#define GH_TLS_TLSv1_3  0x0040
#define GH_TLS_DEFAULT_PROTOCOLS (GH_TLS_TLSv1_2 | GH_TLS_TLSv1_3)

/* ssl_verify_client */
#define GH_TLS_VERIFY_OFF          0
#define GH_TLS_VERIFY_ON           1
#define GH_TLS_VERIFY_OPTIONAL     2
#define GH_TLS_VERIFY_OPTIONAL_NO_CA 3

/* ssl_session_cache builtin modes (size >= 0 is builtin:size) */
#define GH_TLS_CACHE_OFF       (-2)   /* "off": reuse refused */
#define GH_TLS_CACHE_NONE      (-3)   /* "none": announced, never stored */
#define GH_TLS_CACHE_NO_BUILTIN (-4)  /* shared only */
#define GH_TLS_CACHE_DFLT_BUILTIN (-5) /* "builtin" without a size */

/* session callbacks refuse sessions larger than this (nginx's limit) */
#define GH_TLS_MAX_SESSION 4096

typedef struct gh_tls_conn_s gh_tls_conn_t;

struct gh_tls_conn_s {
    SSL                 *ssl;
    gh_conn_t           *c;
    SSL_CTX             *session_ctx;   /* the ctx the SSL was made with:
                                           session cache and ticket
                                           callbacks belong to it even
                                           after SNI switched the ctx */
    gh_event_handler_pt  saved_read;    /* parked handlers, see above */
    gh_event_handler_pt  saved_write;
    void                *data;          /* owner's (upstream sessions) */
    unsigned             handshaked:1;
    unsigned             no_shutdown:1; /* failed: no close_notify */
    unsigned             client:1;
    unsigned             read_on_write:1;  /* SSL_read wants writability */
    unsigned             write_on_read:1;  /* SSL_write wants readability */
    unsigned             bio_read:1;    /* this SSL_read called read() */
    unsigned             bio_drained:1; /* and the last one emptied the
                                           socket (short or EAGAIN) */
};

#define gh_tls_conn(c) ((gh_tls_conn_t *) (c)->tls)

/* library set-up and ex_data indexes; idempotent, GH_ERROR if OpenSSL
 * cannot be initialised */
gh_int_t gh_tls_init(void);

/* "(SSL: error:...:reason) (SSL: ...)" from OpenSSL's error queue (which
 * it empties), or "" when the queue is empty; returns buf */
char *gh_tls_errors(char *buf, size_t size);

/* --- contexts (gh_tls_ctx.c) ---------------------------------------- */

/* Every function below returns GH_OK, or GH_ERROR with err filled with a
 * message in nginx's wording (the caller adds " in file:line"). */

/* a new context (server or client) with gatehouse's defaults:
 * partial writes, moving write buffers, released buffers when idle,
 * no renegotiation, unexpected EOF treated as close_notify,
 * compression off.  The context is freed by a cleanup of arena. */
SSL_CTX *gh_tls_ctx_create(gh_arena_t *arena, bool server, char *err,
    size_t errlen);
gh_int_t gh_tls_ctx_protocols(SSL_CTX *ctx, unsigned protocols, char *err,
    size_t errlen);
/* PEM certificate chain and its key; may be called several times (RSA
 * + ECDSA) */
gh_int_t gh_tls_ctx_certificate(SSL_CTX *ctx, const char *cert,
    const char *key, char *err, size_t errlen);
gh_int_t gh_tls_ctx_ciphers(SSL_CTX *ctx, const char *ciphers,
    bool prefer_server, char *err, size_t errlen);
gh_int_t gh_tls_ctx_ecdh_curve(SSL_CTX *ctx, const char *curves, char *err,
    size_t errlen);
gh_int_t gh_tls_ctx_dhparam(SSL_CTX *ctx, const char *file, char *err,
    size_t errlen);
/* server: CAs to verify client certificates with (file may be NULL when
 * only `trusted` is given); the names of `file` are sent to clients.
 * Verification never fails the handshake: the request checks the result
 * (nginx's 400 pages), so the verify callback always accepts. */
gh_int_t gh_tls_ctx_client_verify(SSL_CTX *ctx, unsigned mode,
    const char *file, const char *trusted, gh_int_t depth, char *err,
    size_t errlen);
/* client: CAs to verify upstream certificates with */
gh_int_t gh_tls_ctx_trusted(SSL_CTX *ctx, const char *file, gh_int_t depth,
    char *err, size_t errlen);
/* OCSP stapling: the DER response in file is sent to every client that
 * asks for a status (read once, at configuration time) */
gh_int_t gh_tls_ctx_stapling_file(SSL_CTX *ctx, gh_arena_t *arena,
    const char *file, char *err, size_t errlen);
/* session id context: a digest of what makes a session valid here
 * (certificates, verification set-up), so that a session cannot be
 * resumed by a server{} it was not made for */
gh_int_t gh_tls_ctx_session_id_context(SSL_CTX *ctx, const char *extra,
    char *err, size_t errlen);

/* --- session cache and tickets (gh_tls_cache.c) --------------------- */

/* builtin: one of GH_TLS_CACHE_* or a size (>= 0); zone: the shared
 * cache (NULL for none); timeout in seconds */
gh_int_t gh_tls_ctx_session_cache(SSL_CTX *ctx, gh_arena_t *arena,
    gh_int_t builtin, gh_shm_zone_t *zone, int64_t timeout, char *err,
    size_t errlen);
/* init callback of a shared session cache zone */
gh_int_t gh_tls_cache_zone_init(gh_shm_zone_t *zone, void *old_data);

/* Session tickets.  Off: SSL_OP_NO_TICKET.  On with key files (48 or 80
 * bytes each, the first encrypts, all decrypt), or else with keys
 * derived from a secret the master draws once per process lifetime:
 * every worker (and every later configuration) computes the same key
 * for the same period, so tickets work across workers and reloads.
 * The key changes every `period` seconds (at least an hour, at least
 * the session timeout) and the previous one is still accepted. */
gh_int_t gh_tls_ctx_tickets(SSL_CTX *ctx, gh_arena_t *arena, bool on,
    char **key_files, size_t nfiles, int64_t timeout, char *err,
    size_t errlen);

/* --- connections (gh_tls.c) ----------------------------------------- */

/* attach a new SSL to c (c->tls), using ctx; the SSL and any state are
 * freed with c's arena.  NULL on failure (logged). */
gh_tls_conn_t *gh_tls_conn_create(gh_conn_t *c, SSL_CTX *ctx, bool client);
/* the connection an SSL belongs to (from callbacks) */
gh_conn_t *gh_tls_conn_of(const SSL *ssl);

/* one step of the handshake: GH_OK (done: c->recv etc. are the TLS
 * ones now), GH_AGAIN (wait for c->read or c->write: ready was cleared
 * on the side that is needed), GH_ERROR (err holds "SSL_do_handshake()
 * failed (...)" for the log; the connection must be closed) */
gh_int_t gh_tls_handshake(gh_conn_t *c, char *err, size_t errlen);

ssize_t gh_tls_recv(gh_conn_t *c, uint8_t *buf, size_t size);
ssize_t gh_tls_send(gh_conn_t *c, const uint8_t *buf, size_t size);
gh_chain_t *gh_tls_send_chain(gh_conn_t *c, gh_chain_t *in, off_t limit);

/* close_notify now, one try that never waits, and none at the close:
 * for a lingering close, which then shuts the socket for writing and
 * reads the rest raw */
void gh_tls_close_notify(gh_conn_t *c);

/* the negotiated ALPN protocol, empty if none */
void gh_tls_alpn(gh_conn_t *c, gh_str_t *proto);

#endif
