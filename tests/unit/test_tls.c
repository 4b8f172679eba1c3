/*
 * test_tls.c: TLS connections without an event loop: a client and a
 * server gh_conn_t over a socketpair with small buffers, so that
 * handshakes and writes really block half way.  Covers the handshake,
 * send_chain with memory and file buffers (and retries after
 * WANT_WRITE), recv's read.ready contract with bytes left inside
 * OpenSSL, close_notify from the arena cleanup, the shared session cache
 * in a shm zone, and derived ticket keys shared by two contexts.
 */
#include "tls/gh_tls.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

static EVP_PKEY *key;
static X509     *cert;
static char      err[2048];

static void
make_cert(void)
{
    if (cert) {
        return;
    }
    key = EVP_EC_gen("P-256");
    assert_non_null(key);
    cert = X509_new();
    assert_non_null(cert);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN",
        MBSTRING_ASC, (const unsigned char *) "unit.test", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
}

typedef struct {
    gh_arena_t *arena;       /* contexts */
    SSL_CTX    *sctx;
    SSL_CTX    *cctx;
    gh_conn_t  *s;
    gh_conn_t  *c;
} pair_t;

static gh_conn_t *
conn(int fd)
{
    gh_conn_t *c = gh_conn_get(fd, NULL, NULL);

    assert_non_null(c);
    c->arena = gh_arena_create(1024, 0);
    c->log.level = GH_LOG_ERR;
    c->read.ready = 1;
    c->write.ready = 1;
    return c;
}

static SSL_CTX *
server_ctx(gh_arena_t *a)
{
    SSL_CTX *ctx = gh_tls_ctx_create(a, true, err, sizeof(err));

    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    assert_int_equal(gh_tls_ctx_protocols(ctx, GH_TLS_DEFAULT_PROTOCOLS,
        err, sizeof(err)), GH_OK);
    assert_int_equal(gh_tls_ctx_session_id_context(ctx, "unit", err,
        sizeof(err)), GH_OK);
    return ctx;
}

/* drive both handshakes to the end, as epoll would */
static void
handshake(pair_t *p)
{
    gh_int_t rs = GH_AGAIN, rc = GH_AGAIN;

    for (int i = 0; i < 100 && (rs != GH_OK || rc != GH_OK); i++) {
        if (rc != GH_OK) {
            p->c->read.ready = p->c->write.ready = 1;
            rc = gh_tls_handshake(p->c, err, sizeof(err));
            assert_int_not_equal(rc, GH_ERROR);
        }
        if (rs != GH_OK) {
            p->s->read.ready = p->s->write.ready = 1;
            rs = gh_tls_handshake(p->s, err, sizeof(err));
            assert_int_not_equal(rs, GH_ERROR);
        }
    }
    assert_int_equal(rs, GH_OK);
    assert_int_equal(rc, GH_OK);
    assert_ptr_equal(p->c->recv, gh_tls_recv);
    assert_ptr_equal(p->s->send_chain, gh_tls_send_chain);
}

static void
pair_open(pair_t *p, int bufsize, SSL_SESSION *sess)
{
    int sv[2];

    make_cert();
    memset(p, 0, sizeof(*p));
    p->arena = gh_arena_create(4096, 0);
    p->sctx = server_ctx(p->arena);
    p->cctx = gh_tls_ctx_create(p->arena, false, err, sizeof(err));
    assert_non_null(p->cctx);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
        0);
    if (bufsize) {
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
        setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    }
    p->c = conn(sv[0]);
    p->s = conn(sv[1]);
    assert_non_null(gh_tls_conn_create(p->s, p->sctx, false));
    assert_non_null(gh_tls_conn_create(p->c, p->cctx, true));
    if (sess) {
        SSL_set_session(gh_tls_conn(p->c)->ssl, sess);
    }
    handshake(p);
}

static void
pair_close(pair_t *p)
{
    gh_conn_close(p->c);
    gh_conn_close(p->s);
    gh_conn_release_closed();
    gh_arena_destroy(p->arena);
}

/* read everything available on c into buf (at most size) */
static size_t
drain(gh_conn_t *c, uint8_t *buf, size_t size, size_t chunk)
{
    size_t got = 0;

    c->read.ready = 1;
    while (got < size) {
        ssize_t n = c->recv(c, buf + got, gh_min(chunk, size - got));

        if (n == GH_AGAIN) {
            break;
        }
        assert_true(n > 0);
        got += (size_t) n;
    }
    return got;
}

static void
test_handshake_and_small_writes(void **state)
{
    pair_t  p;
    uint8_t buf[64];

    pair_open(&p, 0, NULL);
    assert_int_equal(p.c->send(p.c, (const uint8_t *) "hello", 5), 5);
    assert_int_equal(drain(p.s, buf, sizeof(buf), sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    /* nothing more: WANT_READ clears ready */
    assert_int_equal(p.s->recv(p.s, buf, sizeof(buf)), GH_AGAIN);
    assert_false(p.s->read.ready);
    pair_close(&p);
}

static void
test_recv_keeps_ready_with_bytes_inside_openssl(void **state)
{
    pair_t  p;
    uint8_t buf[4096];

    pair_open(&p, 0, NULL);
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(p.c->send(p.c, buf, 1000), 1000);
    p.s->read.ready = 1;
    assert_int_equal(p.s->recv(p.s, buf, 10), 10);
    /* the record is decrypted, the socket is empty, epoll would stay
     * silent: ready must still say "try again" */
    assert_true(p.s->read.ready);
    assert_int_equal(SSL_pending(gh_tls_conn(p.s)->ssl), 990);
    assert_int_equal(drain(p.s, buf, sizeof(buf), 100), 990);
    pair_close(&p);
}

static void
test_send_chain_memory_and_file_with_retries(void **state)
{
    pair_t      p;
    char        path[] = "/tmp/gh-test-tls-XXXXXX";
    int         fd = mkstemp(path);
    size_t      flen = 300000, total, got = 0;
    uint8_t    *file = malloc(flen), *want, *out;
    gh_buf_t    b[5];
    gh_chain_t  ch[5], *rest;
    size_t      sizes[5];

    assert_true(fd >= 0);
    unlink(path);
    for (size_t i = 0; i < flen; i++) {
        file[i] = (uint8_t) (i % 251);
    }
    assert_int_equal(write(fd, file, flen), (ssize_t) flen);

    /* 100 bytes of memory, a file range from offset 7, an empty buffer,
     * 50000 bytes of memory, a small tail */
    memset(b, 0, sizeof(b));
    static uint8_t m1[100], m2[50000], m3[3];
    memset(m1, 'a', sizeof(m1));
    memset(m2, 'b', sizeof(m2));
    memcpy(m3, "end", 3);
    b[0].start = b[0].pos = m1; b[0].last = b[0].end = m1 + sizeof(m1);
    b[1].in_file = 1; b[1].fd = fd; b[1].file_pos = 7;
    b[1].file_last = (off_t) flen;
    b[2].start = b[2].pos = b[2].last = b[2].end = NULL;
    b[3].start = b[3].pos = m2; b[3].last = b[3].end = m2 + sizeof(m2);
    b[4].start = b[4].pos = m3; b[4].last = b[4].end = m3 + 3;
    for (int i = 0; i < 5; i++) {
        ch[i].buf = &b[i];
        ch[i].next = i < 4 ? &ch[i + 1] : NULL;
        sizes[i] = (size_t) gh_buf_size(&b[i]);
    }
    total = sizes[0] + sizes[1] + sizes[3] + sizes[4];
    want = malloc(total);
    memcpy(want, m1, sizes[0]);
    memcpy(want + sizes[0], file + 7, sizes[1]);
    memcpy(want + sizes[0] + sizes[1], m2, sizes[3]);
    memcpy(want + total - 3, m3, 3);
    out = malloc(total);

    pair_open(&p, 16384, NULL);
    rest = ch;
    int rounds = 0, blocked = 0;
    while (rest != NULL || got < total) {
        assert_true(++rounds < 10000);
        if (rest) {
            p.c->write.ready = 1;
            rest = p.c->send_chain(p.c, rest, 0);
            assert_ptr_not_equal(rest, GH_CHAIN_ERROR);
            blocked += rest != NULL;
        }
        got += drain(p.s, out + got, total - got, 7000);
    }
    assert_true(blocked > 0);          /* WANT_WRITE really happened */
    assert_int_equal(got, total);
    assert_memory_equal(out, want, total);
    assert_int_equal(p.c->sent, (off_t) total);
    assert_true(b[1].file_pos == b[1].file_last);
    pair_close(&p);
    close(fd);
    free(file);
    free(want);
    free(out);
}

static void
test_close_notify_from_cleanup(void **state)
{
    pair_t  p;
    uint8_t buf[16];

    pair_open(&p, 0, NULL);
    gh_conn_close(p.c);           /* arena cleanup: SSL_shutdown, free */
    p.s->read.ready = 1;
    assert_int_equal(p.s->recv(p.s, buf, sizeof(buf)), 0);
    assert_true(p.s->read.eof);
    gh_conn_close(p.s);
    gh_conn_release_closed();
    gh_arena_destroy(p.arena);
}

static int cache_tag;

static void
test_shared_session_cache(void **state)
{
    gh_arena_t    *a = gh_arena_create(4096, 0);
    gh_shm_zone_t *zones = NULL, *z;
    const char    *e = NULL;
    pair_t         q;
    SSL_SESSION   *sess;

    z = gh_shm_zone_add(&zones, a, "unit_ssl", 256 * 1024, &cache_tag, &e);
    assert_non_null(z);
    z->init = gh_tls_cache_zone_init;
    assert_int_equal(gh_shm_zones_init(zones, NULL, &gh_log_stderr), GH_OK);
    gh_time_update();

    /* TLS 1.2, no tickets: resumption needs the session id cache, and a
     * second server context (another process) finds it in the zone */
    make_cert();
    {
        pair_t first;
        int    sv[2];

        memset(&first, 0, sizeof(first));
        first.arena = gh_arena_create(4096, 0);
        first.sctx = server_ctx(first.arena);
        assert_int_equal(gh_tls_ctx_session_cache(first.sctx, first.arena,
            GH_TLS_CACHE_NO_BUILTIN, z, 300, err, sizeof(err)), GH_OK);
        assert_int_equal(gh_tls_ctx_tickets(first.sctx, first.arena, false,
            NULL, 0, 300, err, sizeof(err)), GH_OK);
        first.cctx = gh_tls_ctx_create(first.arena, false, err, sizeof(err));
        SSL_CTX_set_max_proto_version(first.cctx, TLS1_2_VERSION);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
            sv), 0);
        first.c = conn(sv[0]);
        first.s = conn(sv[1]);
        gh_tls_conn_create(first.s, first.sctx, false);
        gh_tls_conn_create(first.c, first.cctx, true);
        handshake(&first);
        sess = SSL_get1_session(gh_tls_conn(first.c)->ssl);
        assert_non_null(sess);
        assert_false(SSL_session_reused(gh_tls_conn(first.c)->ssl));

        /* a brand-new server context with the same zone */
        memset(&q, 0, sizeof(q));
        q.arena = gh_arena_create(4096, 0);
        q.sctx = server_ctx(q.arena);
        gh_tls_ctx_session_cache(q.sctx, q.arena, GH_TLS_CACHE_NO_BUILTIN, z,
            300, err, sizeof(err));
        gh_tls_ctx_tickets(q.sctx, q.arena, false, NULL, 0, 300, err,
            sizeof(err));
        q.cctx = first.cctx;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
            sv), 0);
        q.c = conn(sv[0]);
        q.s = conn(sv[1]);
        gh_tls_conn_create(q.s, q.sctx, false);
        gh_tls_conn_create(q.c, q.cctx, true);
        SSL_set_session(gh_tls_conn(q.c)->ssl, sess);
        handshake(&q);
        assert_true(SSL_session_reused(gh_tls_conn(q.c)->ssl));
        SSL_SESSION_free(sess);
        gh_conn_close(q.c);
        gh_conn_close(q.s);
        gh_conn_close(first.c);
        gh_conn_close(first.s);
        gh_conn_release_closed();
        gh_arena_destroy(q.arena);
        gh_arena_destroy(first.arena);
    }
    gh_shm_zones_release(zones, NULL);
    gh_arena_destroy(a);
}

static void
test_derived_ticket_keys_shared(void **state)
{
    gh_arena_t *a = gh_arena_create(4096, 0);
    SSL_CTX    *s1, *s2, *cc;
    gh_conn_t  *c, *s;
    SSL_SESSION *sess = NULL;
    int         sv[2];
    pair_t      p;

    make_cert();
    gh_time_update();
    s1 = server_ctx(a);
    s2 = server_ctx(a);
    assert_int_equal(gh_tls_ctx_tickets(s1, a, true, NULL, 0, 300, err,
        sizeof(err)), GH_OK);
    assert_int_equal(gh_tls_ctx_tickets(s2, a, true, NULL, 0, 300, err,
        sizeof(err)), GH_OK);
    gh_tls_ctx_session_cache(s1, a, GH_TLS_CACHE_NONE, NULL, 300, err,
        sizeof(err));
    gh_tls_ctx_session_cache(s2, a, GH_TLS_CACHE_NONE, NULL, 300, err,
        sizeof(err));
    cc = gh_tls_ctx_create(a, false, err, sizeof(err));
    SSL_CTX_set_max_proto_version(cc, TLS1_2_VERSION);

    for (int round = 0; round < 2; round++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
            sv), 0);
        c = conn(sv[0]);
        s = conn(sv[1]);
        gh_tls_conn_create(s, round == 0 ? s1 : s2, false);
        gh_tls_conn_create(c, cc, true);
        if (sess) {
            SSL_set_session(gh_tls_conn(c)->ssl, sess);
        }
        p.c = c;
        p.s = s;
        handshake(&p);
        if (round == 0) {
            sess = SSL_get1_session(gh_tls_conn(c)->ssl);
            assert_true(SSL_SESSION_has_ticket(sess));
        } else {
            /* the other context decrypted the first one's ticket */
            assert_true(SSL_session_reused(gh_tls_conn(c)->ssl));
        }
        gh_conn_close(c);
        gh_conn_close(s);
        gh_conn_release_closed();
    }
    SSL_SESSION_free(sess);
    gh_arena_destroy(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_small_writes),
        cmocka_unit_test(test_recv_keeps_ready_with_bytes_inside_openssl),
        cmocka_unit_test(test_send_chain_memory_and_file_with_retries),
        cmocka_unit_test(test_close_notify_from_cleanup),
        cmocka_unit_test(test_shared_session_cache),
        cmocka_unit_test(test_derived_ticket_keys_shared),
    };

    /* as in a worker: close_notify to a peer that already closed is
     * EPIPE, not a signal */
    signal(SIGPIPE, SIG_IGN);
    gh_time_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
