/*
 * gh_tls_ctx.c: building SSL_CTX objects from configuration values.
 *
 * Runs while the configuration is read, in the master (or in `-t`):
 * every file is read here and every error is reported here, with
 * nginx's wording, so that a reload with a bad certificate fails and the
 * running workers keep their contexts.  A context is owned by the
 * configuration's arena (a cleanup frees it with the cycle).
 */
#include "gh_tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/decoder.h>
#include <openssl/ocsp.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

static void gh_tls_ctx_free(void *data);

/* "<fmt> (SSL: ...)" into err */
static gh_int_t
gh_tls_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static gh_int_t
gh_tls_fail(char *err, size_t errlen, const char *fmt, ...)
{
    char    e[768];
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    gh_tls_errors(e, sizeof(e));
    if (n >= 0 && (size_t) n < errlen && e[0]) {
        snprintf(err + n, errlen - (size_t) n, " %s", e);
    }
    return GH_ERROR;
}


static void
gh_tls_ctx_free(void *data)
{
    SSL_CTX_free(data);
}


/* client certificates are checked per request (nginx's 400 pages), and
 * upstream certificates after the handshake: the handshake itself never
 * fails on verification */
static int
gh_tls_verify_accept(int ok, X509_STORE_CTX *store)
{
    return 1;
}


SSL_CTX *
gh_tls_ctx_create(gh_arena_t *arena, bool server, char *err, size_t errlen)
{
    SSL_CTX *ctx;

    if (gh_tls_init() != GH_OK) {
        gh_tls_fail(err, errlen, "OPENSSL_init_ssl() failed");
        return NULL;
    }
    ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        gh_tls_fail(err, errlen, "SSL_CTX_new() failed");
        return NULL;
    }
    if (gh_cleanup_add(arena, gh_tls_ctx_free, ctx) == NULL) {
        SSL_CTX_free(ctx);
        snprintf(err, errlen, "not enough memory for an SSL context");
        return NULL;
    }
    /* partial writes: SSL_write returns per record, so send_chain can
     * advance the chain as records leave; moving buffer: a retry after
     * WANT_WRITE may come from another address with the same bytes;
     * release buffers: an idle keep-alive connection keeps no 34 KB of
     * record buffers */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
        | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION
        | SSL_OP_NO_RENEGOTIATION
        | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_SINGLE_DH_USE
        | SSL_OP_SINGLE_ECDH_USE);
    if (server) {
        /* TLS 1.3 early data stays off (replay): ssl_early_data is
         * accepted and ignored */
        SSL_CTX_set_max_early_data(ctx, 0);
    }
    /* read-ahead: one read() takes whatever the socket holds, up to the
     * record buffer (several records, or a record's header and body),
     * instead of a 5-byte header read and a body read per record.  What
     * is read ahead waits inside SSL, invisible to epoll: gh_tls_recv
     * keeps read.ready set while SSL_has_pending() (see gh_tls.h) */
    SSL_CTX_set_read_ahead(ctx, 1);
    return ctx;
}


gh_int_t
gh_tls_ctx_protocols(SSL_CTX *ctx, unsigned protocols, char *err,
    size_t errlen)
{
    static const struct {
        unsigned bit;
        uint64_t op;
    } map[] = {
        { GH_TLS_SSLv3, SSL_OP_NO_SSLv3 },
        { GH_TLS_TLSv1, SSL_OP_NO_TLSv1 },
        { GH_TLS_TLSv1_1, SSL_OP_NO_TLSv1_1 },
        { GH_TLS_TLSv1_2, SSL_OP_NO_TLSv1_2 },
        { GH_TLS_TLSv1_3, SSL_OP_NO_TLSv1_3 },
    };
    uint64_t off = 0;

    /* version options rather than min/max: they also express gaps
     * ("TLSv1 TLSv1.2"), as nginx has them */
    for (size_t i = 0; i < gh_nelems(map); i++) {
        if (!(protocols & map[i].bit)) {
            off |= map[i].op;
        }
    }
    SSL_CTX_clear_options(ctx, SSL_OP_NO_SSL_MASK);
    SSL_CTX_set_options(ctx, off);
    /* OpenSSL's own floor (TLS 1.0 at the default security level) would
     * otherwise silently win over an explicit "TLSv1" */
    SSL_CTX_set_min_proto_version(ctx, 0);
    SSL_CTX_set_max_proto_version(ctx, 0);
    if ((protocols & (GH_TLS_TLSv1 | GH_TLS_TLSv1_1 | GH_TLS_TLSv1_2
                      | GH_TLS_TLSv1_3)) == 0)
    {
        snprintf(err, errlen, "no usable protocol in \"ssl_protocols\"");
        return GH_ERROR;
    }
    return GH_OK;
}


gh_int_t
gh_tls_ctx_certificate(SSL_CTX *ctx, const char *cert, const char *key,
    char *err, size_t errlen)
{
    BIO      *bio;
    X509     *x, *extra;
    EVP_PKEY *pkey;

    ERR_clear_error();
    bio = BIO_new_file(cert, "r");
    if (bio == NULL) {
        return gh_tls_fail(err, errlen, "cannot load certificate \"%s\": "
            "BIO_new_file() failed", cert);
    }
    x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
    if (x == NULL) {
        BIO_free(bio);
        return gh_tls_fail(err, errlen, "cannot load certificate \"%s\": "
            "PEM_read_bio_X509_AUX() failed", cert);
    }
    if (SSL_CTX_use_certificate(ctx, x) != 1) {
        X509_free(x);
        BIO_free(bio);
        return gh_tls_fail(err, errlen, "SSL_CTX_use_certificate(\"%s\") "
            "failed", cert);
    }
    X509_free(x);
    /* the rest of the file is the chain of this certificate (selected
     * as current by use_certificate, so RSA and ECDSA keep apart) */
    SSL_CTX_clear_chain_certs(ctx);
    while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            BIO_free(bio);
            return gh_tls_fail(err, errlen, "SSL_CTX_add0_chain_cert(\"%s\")"
                " failed", cert);
        }
    }
    BIO_free(bio);
    /* the end of the file ends the loop with "no start line" */
    if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
    } else if (ERR_peek_error() != 0) {
        return gh_tls_fail(err, errlen, "cannot load certificate chain "
            "\"%s\"", cert);
    }

    bio = BIO_new_file(key, "r");
    if (bio == NULL) {
        return gh_tls_fail(err, errlen, "cannot load certificate key \"%s\": "
            "BIO_new_file() failed", key);
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pkey == NULL) {
        return gh_tls_fail(err, errlen, "cannot load certificate key \"%s\": "
            "PEM_read_bio_PrivateKey() failed", key);
    }
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
        EVP_PKEY_free(pkey);
        return gh_tls_fail(err, errlen, "SSL_CTX_use_PrivateKey(\"%s\") "
            "failed", key);
    }
    EVP_PKEY_free(pkey);
    return GH_OK;
}


gh_int_t
gh_tls_ctx_ciphers(SSL_CTX *ctx, const char *ciphers, bool prefer_server,
    char *err, size_t errlen)
{
    /* the list governs TLS 1.2 and older; TLS 1.3 suites keep OpenSSL's
     * defaults, as in nginx */
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        return gh_tls_fail(err, errlen, "SSL_CTX_set_cipher_list(\"%s\") "
            "failed", ciphers);
    }
    if (prefer_server) {
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    } else {
        SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    }
    return GH_OK;
}


gh_int_t
gh_tls_ctx_ecdh_curve(SSL_CTX *ctx, const char *curves, char *err,
    size_t errlen)
{
    if (strcmp(curves, "auto") == 0) {
        return GH_OK;           /* OpenSSL's list */
    }
    if (SSL_CTX_set1_groups_list(ctx, curves) != 1) {
        return gh_tls_fail(err, errlen, "SSL_CTX_set1_curves_list(\"%s\") "
            "failed", curves);
    }
    return GH_OK;
}


gh_int_t
gh_tls_ctx_dhparam(SSL_CTX *ctx, const char *file, char *err, size_t errlen)
{
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY         *pkey = NULL;
    BIO              *bio;

    bio = BIO_new_file(file, "r");
    if (bio == NULL) {
        return gh_tls_fail(err, errlen, "BIO_new_file(\"%s\") failed", file);
    }
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, "DH",
        OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS, NULL, NULL);
    if (dctx == NULL || OSSL_DECODER_from_bio(dctx, bio) != 1
        || pkey == NULL)
    {
        OSSL_DECODER_CTX_free(dctx);
        BIO_free(bio);
        return gh_tls_fail(err, errlen, "PEM_read_bio_DHparams(\"%s\") "
            "failed", file);
    }
    OSSL_DECODER_CTX_free(dctx);
    BIO_free(bio);
    if (SSL_CTX_set0_tmp_dh_pkey(ctx, pkey) != 1) {
        EVP_PKEY_free(pkey);
        return gh_tls_fail(err, errlen, "SSL_CTX_set0_tmp_dh_pkey(\"%s\") "
            "failed", file);
    }
    return GH_OK;
}


gh_int_t
gh_tls_ctx_client_verify(SSL_CTX *ctx, unsigned mode, const char *file,
    const char *trusted, gh_int_t depth, char *err, size_t errlen)
{
    STACK_OF(X509_NAME) *names;

    if (mode == GH_TLS_VERIFY_OFF) {
        return GH_OK;
    }
    /* optional_no_ca asks for a certificate without naming CAs and
     * accepts any: the application checks it */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, gh_tls_verify_accept);
    SSL_CTX_set_verify_depth(ctx, (int) depth);
    if (file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
            return gh_tls_fail(err, errlen, "SSL_CTX_load_verify_locations"
                "(\"%s\") failed", file);
        }
        ERR_clear_error();
        names = SSL_load_client_CA_file(file);
        if (names == NULL) {
            return gh_tls_fail(err, errlen, "SSL_load_client_CA_file(\"%s\")"
                " failed", file);
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (trusted != NULL
        && SSL_CTX_load_verify_locations(ctx, trusted, NULL) != 1)
    {
        return gh_tls_fail(err, errlen, "SSL_CTX_load_verify_locations"
            "(\"%s\") failed", trusted);
    }
    return GH_OK;
}


gh_int_t
gh_tls_ctx_trusted(SSL_CTX *ctx, const char *file, gh_int_t depth,
    char *err, size_t errlen)
{
    /* the handshake goes on whatever the result: the proxy checks it
     * afterwards and logs nginx's line */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, gh_tls_verify_accept);
    SSL_CTX_set_verify_depth(ctx, (int) depth);
    if (file == NULL) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            return gh_tls_fail(err, errlen,
                "SSL_CTX_set_default_verify_paths() failed");
        }
        return GH_OK;
    }
    if (SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
        return gh_tls_fail(err, errlen, "SSL_CTX_load_verify_locations"
            "(\"%s\") failed", file);
    }
    return GH_OK;
}


/* --- OCSP stapling from a file ----------------------------------------- */

typedef struct {
    uint8_t *der;
    size_t   len;
} gh_tls_staple_t;


static int
gh_tls_status_cb(SSL *ssl, void *arg)
{
    gh_tls_staple_t *st = arg;
    uint8_t         *copy;

    if (st == NULL || st->len == 0) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    /* OpenSSL takes ownership of the response it sends */
    copy = OPENSSL_malloc(st->len);
    if (copy == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    memcpy(copy, st->der, st->len);
    if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long) st->len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}


gh_int_t
gh_tls_ctx_stapling_file(SSL_CTX *ctx, gh_arena_t *arena, const char *file,
    char *err, size_t errlen)
{
    gh_tls_staple_t *st;
    struct stat      sb;
    FILE            *f;

    f = fopen(file, "rb");
    if (f == NULL || fstat(fileno(f), &sb) != 0) {
        snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", file, errno,
            strerror(errno));
        if (f) {
            fclose(f);
        }
        return GH_ERROR;
    }
    st = gh_calloc(arena, sizeof(*st));
    if (st == NULL || sb.st_size <= 0 || sb.st_size > 1024 * 1024) {
        fclose(f);
        snprintf(err, errlen, "\"%s\" is not a usable OCSP response file",
            file);
        return GH_ERROR;
    }
    st->der = gh_alloc_unaligned(arena, (size_t) sb.st_size);
    if (st->der == NULL
        || fread(st->der, 1, (size_t) sb.st_size, f) != (size_t) sb.st_size)
    {
        fclose(f);
        snprintf(err, errlen, "cannot read \"%s\"", file);
        return GH_ERROR;
    }
    fclose(f);
    st->len = (size_t) sb.st_size;
    /* check that it is DER OCSP at all, at configuration time */
    {
        const unsigned char *p = st->der;
        OCSP_RESPONSE       *resp = d2i_OCSP_RESPONSE(NULL, &p,
            (long) st->len);

        if (resp == NULL) {
            return gh_tls_fail(err, errlen, "d2i_OCSP_RESPONSE(\"%s\") "
                "failed", file);
        }
        OCSP_RESPONSE_free(resp);
    }
    SSL_CTX_set_tlsext_status_cb(ctx, gh_tls_status_cb);
    SSL_CTX_set_tlsext_status_arg(ctx, st);
    return GH_OK;
}


gh_int_t
gh_tls_ctx_session_id_context(SSL_CTX *ctx, const char *extra, char *err,
    size_t errlen)
{
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned int   mdlen = 0;
    EVP_MD_CTX    *mctx;
    X509          *x;
    unsigned char *der;
    int            rc, len;

    mctx = EVP_MD_CTX_new();
    if (mctx == NULL || EVP_DigestInit_ex(mctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(mctx);
        return gh_tls_fail(err, errlen, "EVP_DigestInit_ex() failed");
    }
    /* every certificate of the context, then the caller's extra (the
     * client CA file and verify mode) */
    for (rc = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); rc == 1;
         rc = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT))
    {
        x = SSL_CTX_get0_certificate(ctx);
        der = NULL;
        len = x ? i2d_X509(x, &der) : 0;
        if (len > 0) {
            EVP_DigestUpdate(mctx, der, (size_t) len);
        }
        OPENSSL_free(der);
    }
    ERR_clear_error();
    if (extra) {
        EVP_DigestUpdate(mctx, extra, strlen(extra));
    }
    EVP_DigestFinal_ex(mctx, md, &mdlen);
    EVP_MD_CTX_free(mctx);
    if (SSL_CTX_set_session_id_context(ctx, md,
            gh_min(mdlen, (unsigned) SSL_MAX_SID_CTX_LENGTH)) != 1)
    {
        return gh_tls_fail(err, errlen,
            "SSL_CTX_set_session_id_context() failed");
    }
    return GH_OK;
}
