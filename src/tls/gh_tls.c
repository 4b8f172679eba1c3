/*
 * gh_tls.c: TLS connections: handshake and record I/O over a gh_conn_t.
 *
 *   accept/connect -> gh_tls_conn_create (SSL in c->tls, freed with the
 *   arena) -> gh_tls_handshake until GH_OK (the caller's handlers drive
 *   it; ready is cleared on the side OpenSSL waits for)
 *   -> c->recv/send/send_chain = gh_tls_* -> ... -> gh_conn_close
 *   -> arena cleanup: one non-blocking SSL_shutdown (close_notify) unless
 *   the connection failed, SSL_free -> close(fd)
 *
 * WANT_WRITE inside SSL_read (or WANT_READ inside SSL_write) means the
 * record layer must move bytes the other way first.  The blocked side
 * cannot wait on its own event: edge-triggered epoll reports the other
 * direction.  So the other direction's handler is parked and replaced
 * by one that restores it and calls the blocked side's handler (which
 * retries its SSL call), then the parked handler itself, which may have
 * had work of its own.
 */
#include "gh_tls.h"

#include <stdio.h>
#include <unistd.h>

/* the staging buffer of send_chain: one TLS record's worth, the unit
 * SSL_write sends per call in partial-write mode */
#define GH_TLS_STAGE 16384

static int gh_tls_conn_index = -1;

/* send_chain copies small buffers and file ranges here.  One per
 * process is enough: after WANT_WRITE, OpenSSL finishes the pending
 * record from its own buffer and only checks that the retry is not
 * shorter, so the staging memory need not survive between calls
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER) */
static uint8_t gh_tls_stage[GH_TLS_STAGE];


gh_int_t
gh_tls_init(void)
{
    if (gh_tls_conn_index >= 0) {
        return GH_OK;
    }
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) == 0) {
        return GH_ERROR;
    }
    gh_tls_conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    return gh_tls_conn_index >= 0 ? GH_OK : GH_ERROR;
}


char *
gh_tls_errors(char *buf, size_t size)
{
    unsigned long e;
    size_t        off = 0;
    char          one[256];
    int           n;

    buf[0] = '\0';
    /* the innermost error first, as nginx prints them */
    while ((e = ERR_get_error()) != 0) {
        if (off + 16 >= size) {
            continue;            /* drain the rest */
        }
        ERR_error_string_n(e, one, sizeof(one));
        n = snprintf(buf + off, size - off, "%s(SSL: %s)", off ? " " : "",
            one);
        if (n > 0) {
            off += gh_min((size_t) n, size - off - 1);
        }
    }
    return buf;
}


/* --- connections ------------------------------------------------------ */

static void
gh_tls_conn_cleanup(void *data)
{
    gh_tls_conn_t *t = data;
    gh_conn_t     *c = t->c;

    if (t->ssl == NULL) {
        return;
    }
    if (t->handshaked && !t->no_shutdown && !c->read.error
        && !c->write.error && c->fd >= 0)
    {
        /* one try, never waiting: close_notify if the socket takes it.
         * Not reading the peer's: the fd is closed right after. */
        SSL_set_quiet_shutdown(t->ssl, 0);
        ERR_set_mark();
        (void) SSL_shutdown(t->ssl);
        ERR_pop_to_mark();
    }
    SSL_free(t->ssl);
    t->ssl = NULL;
    c->tls = NULL;
}


void
gh_tls_close_notify(gh_conn_t *c)
{
    gh_tls_conn_t *t = gh_tls_conn(c);

    if (t == NULL || t->ssl == NULL || t->no_shutdown) {
        return;
    }
    if (t->handshaked && !c->read.error && !c->write.error && c->fd >= 0) {
        SSL_set_quiet_shutdown(t->ssl, 0);
        ERR_set_mark();
        (void) SSL_shutdown(t->ssl);
        ERR_pop_to_mark();
    }
    /* the cleanup must not try again: the socket is shut for writing */
    t->no_shutdown = 1;
}


/* a callback on the socket BIO: whether the last read() of an SSL call
 * left the socket empty for now -- a short read or EAGAIN, as
 * gh_unix_recv judges it; an EOF or an error is not "empty" (the next
 * call must see it) */
static long
gh_tls_bio_watch(BIO *b, int oper, const char *argp, size_t len, int argi,
    long argl, int ret, size_t *processed)
{
    gh_tls_conn_t *t;

    (void) argp;
    (void) argi;
    (void) argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        t = (gh_tls_conn_t *) BIO_get_callback_arg(b);
        t->bio_read = 1;
        t->bio_drained = ret > 0 ? processed && *processed < len
                                 : BIO_should_retry(b) != 0;
    }
    return ret;
}


gh_tls_conn_t *
gh_tls_conn_create(gh_conn_t *c, SSL_CTX *ctx, bool client)
{
    gh_tls_conn_t *t;
    gh_cleanup_t  *cln;
    char           e[512];

    t = gh_calloc(c->arena, sizeof(*t));
    cln = t ? gh_cleanup_add(c->arena, NULL, t) : NULL;
    if (cln == NULL) {
        gh_log(GH_LOG_ALERT, &c->log, 0, "could not allocate TLS state");
        return NULL;
    }
    t->c = c;
    t->client = client;
    t->session_ctx = ctx;
    t->ssl = SSL_new(ctx);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, c->fd) != 1
        || SSL_set_ex_data(t->ssl, gh_tls_conn_index, c) != 1)
    {
        gh_log(GH_LOG_ALERT, &c->log, 0, "SSL_new() failed %s",
            gh_tls_errors(e, sizeof(e)));
        if (t->ssl) {
            SSL_free(t->ssl);
            t->ssl = NULL;
        }
        return NULL;
    }
    /* SSL_set_fd made one socket BIO for both directions */
    BIO_set_callback_arg(SSL_get_rbio(t->ssl), (char *) t);
    BIO_set_callback_ex(SSL_get_rbio(t->ssl), gh_tls_bio_watch);
    if (client) {
        SSL_set_connect_state(t->ssl);
    } else {
        SSL_set_accept_state(t->ssl);
    }
    cln->handler = gh_tls_conn_cleanup;
    c->tls = t;
    return t;
}


gh_conn_t *
gh_tls_conn_of(const SSL *ssl)
{
    return SSL_get_ex_data(ssl, gh_tls_conn_index);
}


gh_int_t
gh_tls_handshake(gh_conn_t *c, char *err, size_t errlen)
{
    gh_tls_conn_t *t = gh_tls_conn(c);
    char           e[512];
    int            rc, sslerr, sys;

    err[0] = '\0';
    ERR_clear_error();
    rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->handshaked = 1;
        c->recv = gh_tls_recv;
        c->send = gh_tls_send;
        c->send_chain = gh_tls_send_chain;
        return GH_OK;
    }
    sys = errno;
    sslerr = SSL_get_error(t->ssl, rc);
    if (sslerr == SSL_ERROR_WANT_READ) {
        c->read.ready = 0;
        return GH_AGAIN;
    }
    if (sslerr == SSL_ERROR_WANT_WRITE) {
        c->write.ready = 0;
        return GH_AGAIN;
    }
    t->no_shutdown = 1;
    if (sslerr == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        if (rc == 0 || sys == 0) {
            snprintf(err, errlen, "peer closed connection in SSL handshake");
        } else {
            snprintf(err, errlen, "SSL_do_handshake() failed (%d: %s)", sys,
                strerror(sys));
        }
        c->read.error = 1;
        return GH_ERROR;
    }
    snprintf(err, errlen, "SSL_do_handshake() failed %s",
        gh_tls_errors(e, sizeof(e)));
    return GH_ERROR;
}


void
gh_tls_alpn(gh_conn_t *c, gh_str_t *proto)
{
    const unsigned char *p = NULL;
    unsigned int         len = 0;

    if (c->tls) {
        SSL_get0_alpn_selected(gh_tls_conn(c)->ssl, &p, &len);
    }
    proto->data = (uint8_t *) p;
    proto->len = p ? len : 0;
}


/* --- parking the other direction -------------------------------------- */

static void
gh_tls_read_on_write(gh_event_t *wev)
{
    gh_conn_t     *c = wev->data;
    gh_tls_conn_t *t = gh_tls_conn(c);

    /* writable again: the SSL_read that wanted it can go on */
    t->read_on_write = 0;
    c->write.handler = t->saved_write;
    t->saved_write = NULL;
    c->read.ready = 1;
    if (c->read.handler) {
        c->read.handler(&c->read);
    }
    if (!c->destroyed && c->write.handler && c->write.ready) {
        c->write.handler(&c->write);
    }
}


static void
gh_tls_write_on_read(gh_event_t *rev)
{
    gh_conn_t     *c = rev->data;
    gh_tls_conn_t *t = gh_tls_conn(c);

    t->write_on_read = 0;
    c->read.handler = t->saved_read;
    t->saved_read = NULL;
    c->write.ready = 1;
    if (c->write.handler) {
        c->write.handler(&c->write);
    }
    if (!c->destroyed && c->read.handler && c->read.ready) {
        c->read.handler(&c->read);
    }
}


/* after a successful SSL_read/SSL_write: a parked handler is no longer
 * needed (the operation that wanted it has completed) */
static void
gh_tls_unpark(gh_conn_t *c, gh_tls_conn_t *t, bool reading)
{
    /* the owner may have installed a handler of its own meanwhile (a new
     * request on the connection): that one stays */
    if (reading && t->read_on_write) {
        t->read_on_write = 0;
        if (c->write.handler == gh_tls_read_on_write) {
            c->write.handler = t->saved_write;
        }
        t->saved_write = NULL;
    } else if (!reading && t->write_on_read) {
        t->write_on_read = 0;
        if (c->read.handler == gh_tls_write_on_read) {
            c->read.handler = t->saved_read;
        }
        t->saved_read = NULL;
    }
}


/* an I/O error: log at info (a client going away is not our error) and
 * never send close_notify on this connection */
static void
gh_tls_io_error(gh_conn_t *c, gh_tls_conn_t *t, int sslerr, int sys,
    const char *op)
{
    char e[512];

    t->no_shutdown = 1;
    if (sslerr == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        errno = sys ? sys : ECONNRESET;
        gh_log(GH_LOG_INFO, &c->log, errno, "%s() failed", op);
        return;
    }
    gh_tls_errors(e, sizeof(e));
    gh_log(GH_LOG_INFO, &c->log, 0, "%s() failed %s", op, e);
    errno = EPROTO;
}


/* --- I/O ------------------------------------------------------------- */

ssize_t
gh_tls_recv(gh_conn_t *c, uint8_t *buf, size_t size)
{
    gh_tls_conn_t *t = gh_tls_conn(c);
    size_t         n = 0;
    int            rc, sslerr, sys;

    if (t == NULL || t->ssl == NULL) {
        c->read.error = 1;
        return GH_ERROR;
    }
    ERR_clear_error();
    t->bio_read = 0;
    rc = SSL_read_ex(t->ssl, buf, size, &n);
    if (rc == 1) {
        gh_tls_unpark(c, t, true);
        /* read.ready stays set while SSL holds bytes, decrypted or read
         * ahead (SSL_has_pending): no edge would announce them.  Only
         * when this call's last read() emptied the socket and SSL holds
         * nothing is it cleared, as gh_unix_recv does after a short
         * read: new data brings a new edge, and the read() that would
         * only say EAGAIN is saved.  Not with the peer's FIN announced
         * (eof), which no further edge would report, nor for a socket
         * not registered with epoll. */
        if (t->bio_read && t->bio_drained && !SSL_has_pending(t->ssl)
            && c->read.active && !c->read.eof)
        {
            c->read.ready = 0;
        }
        return (ssize_t) n;
    }
    sys = errno;
    sslerr = SSL_get_error(t->ssl, rc);
    switch (sslerr) {
    case SSL_ERROR_WANT_READ:
        c->read.ready = 0;
        return GH_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        /* e.g. answering a KeyUpdate into a full socket */
        c->read.ready = 0;
        if (!t->read_on_write) {
            t->read_on_write = 1;
            t->saved_write = c->write.handler;
            c->write.handler = gh_tls_read_on_write;
        }
        return GH_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        /* close_notify, or a plain EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
        c->read.ready = 0;
        c->read.eof = 1;
        return 0;
    default:
        c->read.ready = 0;
        c->read.error = 1;
        gh_tls_io_error(c, t, sslerr, sys, "SSL_read");
        return GH_ERROR;
    }
}


ssize_t
gh_tls_send(gh_conn_t *c, const uint8_t *buf, size_t size)
{
    gh_tls_conn_t *t = gh_tls_conn(c);
    size_t         n = 0, total = 0;
    int            rc, sslerr, sys;

    if (t == NULL || t->ssl == NULL) {
        c->write.error = 1;
        return GH_ERROR;
    }
    if (size == 0) {
        return 0;
    }
    /* partial-write mode hands back one record per call: go on until
     * everything is out or the socket is full */
    while (total < size) {
        ERR_clear_error();
        rc = SSL_write_ex(t->ssl, buf + total, size - total, &n);
        if (rc == 1) {
            gh_tls_unpark(c, t, false);
            total += n;
            c->sent += (off_t) n;
            continue;
        }
        sys = errno;
        sslerr = SSL_get_error(t->ssl, rc);
        if (sslerr == SSL_ERROR_WANT_WRITE) {
            c->write.ready = 0;
            break;
        }
        if (sslerr == SSL_ERROR_WANT_READ) {
            c->write.ready = 0;
            if (!t->write_on_read) {
                t->write_on_read = 1;
                t->saved_read = c->read.handler;
                c->read.handler = gh_tls_write_on_read;
            }
            break;
        }
        c->write.ready = 0;
        c->write.error = 1;
        gh_conn_send_failed = "SSL_write";
        gh_tls_io_error(c, t, sslerr, sys, "SSL_write");
        return total ? (ssize_t) total : GH_ERROR;
    }
    if (total == 0) {
        return GH_AGAIN;
    }
    return (ssize_t) total;
}


/* bytes to hand SSL_write from the head of the chain: a large memory
 * buffer as it is, else small buffers and file ranges copied into the
 * staging buffer up to one record.  Returns the length (0: nothing to
 * send) or -1 on a read error of a file buffer. */
static ssize_t
gh_tls_gather(gh_conn_t *c, gh_chain_t *in, off_t max, const uint8_t **out)
{
    size_t  len = 0, want;
    ssize_t n;

    if (in->buf->in_file == 0
        && (in->buf->last - in->buf->pos >= GH_TLS_STAGE || in->next == NULL))
    {
        *out = in->buf->pos;
        return (ssize_t) gh_min((off_t) (in->buf->last - in->buf->pos), max);
    }
    for (; in && len < GH_TLS_STAGE && (off_t) len < max; in = in->next) {
        gh_buf_t *b = in->buf;

        want = (size_t) gh_min((off_t) (GH_TLS_STAGE - len),
            max - (off_t) len);
        if (gh_buf_size(b) == 0) {
            continue;
        }
        if (!b->in_file) {
            want = gh_min(want, (size_t) (b->last - b->pos));
            memcpy(gh_tls_stage + len, b->pos, want);
            len += want;
            continue;
        }
        want = (size_t) gh_min((off_t) want, b->file_last - b->file_pos);
        do {
            n = pread(b->fd, gh_tls_stage + len, want, b->file_pos);
        } while (n < 0 && errno == EINTR);
        if (n <= 0) {
            gh_conn_send_failed = "pread";
            gh_log(GH_LOG_ALERT, &c->log, n < 0 ? errno : 0,
                n < 0 ? "pread() failed" : "file was truncated at %lld",
                (long long) b->file_pos);
            return -1;
        }
        len += (size_t) n;
        /* the next buffer's bytes may follow only once this one is in
         * whole */
        if ((off_t) n < b->file_last - b->file_pos) {
            break;
        }
    }
    *out = gh_tls_stage;
    return (ssize_t) len;
}


/* consume n sent bytes from the chain; returns the first unsent link */
static gh_chain_t *
gh_tls_advance(gh_chain_t *in, size_t n)
{
    for (; in; in = in->next) {
        gh_buf_t *b = in->buf;
        size_t    size = (size_t) gh_buf_size(b);

        if (n < size) {
            if (b->in_file) {
                b->file_pos += (off_t) n;
            } else {
                b->pos += n;
            }
            return in;
        }
        n -= size;
        if (b->in_file) {
            b->file_pos = b->file_last;
        } else {
            b->pos = b->last;
        }
    }
    return NULL;
}


gh_chain_t *
gh_tls_send_chain(gh_conn_t *c, gh_chain_t *in, off_t limit)
{
    off_t          max = limit > 0 ? limit : INT64_MAX, sent = 0;
    const uint8_t *p;
    ssize_t        len, n;

    for (;;) {
        while (in && gh_buf_size(in->buf) == 0) {
            in = in->next;
        }
        if (in == NULL || sent >= max) {
            return in;
        }
        len = gh_tls_gather(c, in, max - sent, &p);
        if (len < 0) {
            c->write.error = 1;
            return GH_CHAIN_ERROR;
        }
        n = gh_tls_send(c, p, (size_t) len);
        if (n == GH_ERROR) {
            return GH_CHAIN_ERROR;
        }
        if (n == GH_AGAIN) {
            return in;
        }
        sent += n;
        in = gh_tls_advance(in, (size_t) n);
        if (n < len) {
            /* the socket is full (write.ready was cleared) */
            return in;
        }
    }
}
