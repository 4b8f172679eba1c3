/*
 * gh_proxy_ssl.c: proxy_ssl_* directives and the TLS handshake towards
 * upstreams.
 *
 * Contexts: a client SSL_CTX is built at configuration time for every
 * level whose proxy_pass may be https (https:// or variables), shared
 * with the level above when this level sets no proxy_ssl_* directive of
 * its own, so that most locations share one context (and its session
 * cache).  Certificate errors are reported with file:line.
 *
 * Handshake (per new upstream connection):
 *   gh_proxy_ssl_handshake: SSL (client), SNI when proxy_ssl_server_name
 *   is on and the name is not an address, a saved session for (peer
 *   address, name) when proxy_ssl_session_reuse is on
 *   -> steps on uc's read/write events, bounded by a timer
 *   -> verification (proxy_ssl_verify): chain result, then the name
 *   -> the proxy's handlers back, done().
 *
 * Session reuse: sessions arrive through the context's new-session
 * callback (TLS 1.3 sends them after the handshake, read along with the
 * response) and are kept per worker, per (address, name), a few dozen
 * per context; every new connection to that peer offers the latest one.
 */
#include "gh_proxy_ssl.h"
#include "../tls/gh_tls.h"

#include <arpa/inet.h>
#include <stdio.h>

#define GH_PROXY_SSL_SESSIONS 32

typedef struct {
    struct sockaddr_storage  sockaddr;
    socklen_t                socklen;
    char                     name[256];
    SSL_SESSION             *session;
    uint64_t                 used;
} gh_proxy_ssl_session_t;

typedef struct {
    gh_proxy_ssl_session_t   e[GH_PROXY_SSL_SESSIONS];
    uint64_t                 tick;
} gh_proxy_ssl_sessions_t;

typedef struct gh_proxy_ssl_conf_s gh_proxy_ssl_conf_t;

struct gh_proxy_ssl_conf_s {
    int                      server_name;
    gh_http_complex_value_t *name;          /* GH_UNSET_PTR: unset */
    int                      verify;
    gh_int_t                 verify_depth;
    gh_str_t                 trusted;       /* data NULL: unset */
    gh_str_t                 certificate;
    gh_str_t                 certificate_key;
    gh_str_t                 ciphers;
    gh_uint_t                protocols;     /* 0: unset */
    int                      session_reuse;

    bool                     local;         /* a directive at this level */
    const char              *file;          /* of the first one */
    unsigned                 line;
    gh_proxy_ssl_conf_t     *parent;        /* set by merge */
    SSL_CTX                 *ctx;
    gh_proxy_ssl_sessions_t *sessions;
};

/* per handshake, in uc's arena (and at t->data, for the session
 * callback) */
typedef struct {
    gh_proxy_ssl_conf_t     *conf;
    gh_http_request_t       *r;
    gh_conn_t               *uc;
    gh_proxy_ssl_done_pt     done;
    void                    *data;
    gh_event_handler_pt      saved_read;
    gh_event_handler_pt      saved_write;
    char                     name[256];     /* SNI / verification name */
    bool                     name_is_ip;
} gh_proxy_ssl_hs_t;

static const char *gh_proxy_ssl_set_str(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_proxy_ssl_set_flag(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_proxy_ssl_set_num(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_proxy_ssl_name(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_proxy_ssl_protocols(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_proxy_ssl_unsupported(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static void *gh_proxy_ssl_create_loc_conf(gh_conf_t *cf);
static const char *gh_proxy_ssl_merge_loc_conf(gh_conf_t *cf, void *prev,
    void *conf);
static gh_int_t gh_proxy_ssl_postconfiguration(gh_conf_t *cf);

#define ANY (GH_HTTP_MAIN_CONF | GH_HTTP_SRV_CONF | GH_HTTP_LOC_CONF)
#define LOFF GH_CONF_LOC_OFFSET
#define PS(f) offsetof(gh_proxy_ssl_conf_t, f)

static const gh_command_t gh_proxy_ssl_commands[] = {
    { "proxy_ssl_server_name", ANY, GH_CONF_FLAG, gh_proxy_ssl_set_flag, LOFF,
      PS(server_name), NULL },
    { "proxy_ssl_name", ANY, GH_CONF_TAKE1, gh_proxy_ssl_name, LOFF, 0,
      NULL },
    { "proxy_ssl_verify", ANY, GH_CONF_FLAG, gh_proxy_ssl_set_flag, LOFF,
      PS(verify), NULL },
    { "proxy_ssl_verify_depth", ANY, GH_CONF_TAKE1, gh_proxy_ssl_set_num,
      LOFF, PS(verify_depth), NULL },
    { "proxy_ssl_trusted_certificate", ANY, GH_CONF_TAKE1,
      gh_proxy_ssl_set_str, LOFF, PS(trusted), NULL },
    { "proxy_ssl_certificate", ANY, GH_CONF_TAKE1, gh_proxy_ssl_set_str,
      LOFF, PS(certificate), NULL },
    { "proxy_ssl_certificate_key", ANY, GH_CONF_TAKE1, gh_proxy_ssl_set_str,
      LOFF, PS(certificate_key), NULL },
    { "proxy_ssl_ciphers", ANY, GH_CONF_TAKE1, gh_proxy_ssl_set_str, LOFF,
      PS(ciphers), NULL },
    { "proxy_ssl_protocols", ANY, GH_CONF_1MORE, gh_proxy_ssl_protocols,
      LOFF, PS(protocols), NULL },
    { "proxy_ssl_session_reuse", ANY, GH_CONF_FLAG, gh_proxy_ssl_set_flag,
      LOFF, PS(session_reuse), NULL },
    { "proxy_ssl_crl", ANY, GH_CONF_TAKE1, gh_proxy_ssl_unsupported, LOFF, 0,
      NULL },
    { "proxy_ssl_password_file", ANY, GH_CONF_TAKE1,
      gh_proxy_ssl_unsupported, LOFF, 0, NULL },
    { "proxy_ssl_conf_command", ANY, GH_CONF_TAKE2, gh_proxy_ssl_unsupported,
      LOFF, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_proxy_ssl_module = {
    .name = "http_proxy_ssl",
    .commands = gh_proxy_ssl_commands,
    .create_loc_conf = gh_proxy_ssl_create_loc_conf,
    .merge_loc_conf = gh_proxy_ssl_merge_loc_conf,
    .postconfiguration = gh_proxy_ssl_postconfiguration,
};


/* --- directives ---------------------------------------------------------- */

static void
gh_proxy_ssl_mark(gh_conf_t *cf, gh_proxy_ssl_conf_t *pscf)
{
    if (!pscf->local) {
        pscf->local = true;
        pscf->file = cf->node->file;
        pscf->line = cf->node->line;
    }
}


static const char *
gh_proxy_ssl_set_str(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_ssl_mark(cf, conf);
    return gh_conf_set_str(cf, cmd, conf);
}


static const char *
gh_proxy_ssl_set_flag(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_ssl_mark(cf, conf);
    return gh_conf_set_flag(cf, cmd, conf);
}


static const char *
gh_proxy_ssl_set_num(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_ssl_mark(cf, conf);
    return gh_conf_set_num(cf, cmd, conf);
}


static const char *
gh_proxy_ssl_name(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_ssl_conf_t *pscf = conf;

    if (pscf->name != GH_UNSET_PTR) {
        return "is duplicate";
    }
    gh_proxy_ssl_mark(cf, pscf);
    pscf->name = gh_calloc(cf->arena, sizeof(gh_http_complex_value_t));
    if (pscf->name == NULL) {
        return "out of memory";
    }
    return gh_http_compile_complex_value(cf, &gh_conf_args(cf)[1],
        pscf->name);
}


static const char *
gh_proxy_ssl_protocols(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    static const gh_conf_enum_t names[] = {
        { "SSLv2", GH_TLS_SSLv2 }, { "SSLv3", GH_TLS_SSLv3 },
        { "TLSv1", GH_TLS_TLSv1 }, { "TLSv1.1", GH_TLS_TLSv1_1 },
        { "TLSv1.2", GH_TLS_TLSv1_2 }, { "TLSv1.3", GH_TLS_TLSv1_3 },
        { NULL, 0 }
    };
    gh_proxy_ssl_conf_t *pscf = conf;
    gh_str_t            *args = gh_conf_args(cf);

    if (pscf->protocols != 0) {
        return "is duplicate";
    }
    gh_proxy_ssl_mark(cf, pscf);
    for (size_t i = 1; i < cf->node->nargs; i++) {
        const gh_conf_enum_t *e = names;

        while (e->name && !gh_str_eq_c(&args[i], e->name)) {
            e++;
        }
        if (e->name == NULL) {
            gh_conf_error(cf, "invalid value \"%.*s\"", (int) args[i].len,
                (const char *) args[i].data);
            return GH_CONF_ERROR;
        }
        pscf->protocols |= e->value;
    }
    return NULL;
}


static const char *
gh_proxy_ssl_unsupported(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_conf_error(cf, "\"%s\" is not supported yet", cmd->name);
    return GH_CONF_ERROR;
}


/* --- levels ---------------------------------------------------------- */

static void *
gh_proxy_ssl_create_loc_conf(gh_conf_t *cf)
{
    gh_proxy_ssl_conf_t *pscf = gh_calloc(cf->arena, sizeof(*pscf));

    if (pscf == NULL) {
        return NULL;
    }
    pscf->server_name = GH_UNSET;
    pscf->name = GH_UNSET_PTR;
    pscf->verify = GH_UNSET;
    pscf->verify_depth = GH_UNSET;
    pscf->session_reuse = GH_UNSET;
    return pscf;
}


static const char *
gh_proxy_ssl_merge_loc_conf(gh_conf_t *cf, void *parent, void *child)
{
    gh_proxy_ssl_conf_t *prev = parent, *conf = child;

    conf->parent = prev;
    if (conf->server_name == GH_UNSET) {
        conf->server_name = prev->server_name == GH_UNSET
            ? 0 : prev->server_name;
    }
    if (conf->name == GH_UNSET_PTR) {
        conf->name = prev->name == GH_UNSET_PTR ? NULL : prev->name;
    }
    if (conf->verify == GH_UNSET) {
        conf->verify = prev->verify == GH_UNSET ? 0 : prev->verify;
    }
    if (conf->verify_depth == GH_UNSET) {
        conf->verify_depth = prev->verify_depth == GH_UNSET
            ? 1 : prev->verify_depth;
    }
    if (conf->session_reuse == GH_UNSET) {
        conf->session_reuse = prev->session_reuse == GH_UNSET
            ? 1 : prev->session_reuse;
    }
    if (conf->trusted.data == NULL) {
        conf->trusted = prev->trusted;
    }
    if (conf->certificate.data == NULL) {
        conf->certificate = prev->certificate;
    }
    if (conf->certificate_key.data == NULL) {
        conf->certificate_key = prev->certificate_key;
    }
    if (conf->ciphers.data == NULL) {
        conf->ciphers = prev->ciphers;
    }
    if (conf->protocols == 0) {
        conf->protocols = prev->protocols;
    }
    return NULL;
}


static int
gh_proxy_ssl_new_session(SSL *ssl, SSL_SESSION *sess)
{
    gh_conn_t               *uc = gh_tls_conn_of(ssl);
    gh_proxy_ssl_hs_t       *hs;
    gh_proxy_ssl_sessions_t *ss;
    gh_proxy_ssl_session_t  *e, *victim = NULL;
    gh_upstream_conn_info_t *info;

    if (uc == NULL || uc->tls == NULL) {
        return 0;
    }
    hs = gh_tls_conn(uc)->data;
    if (hs == NULL || hs->conf->sessions == NULL) {
        return 0;
    }
    ss = hs->conf->sessions;
    info = gh_upstream_conn_info(uc);
    if (info == NULL) {
        return 0;
    }
    for (size_t i = 0; i < GH_PROXY_SSL_SESSIONS; i++) {
        e = &ss->e[i];
        if (e->session && e->socklen == info->socklen
            && memcmp(&e->sockaddr, &info->sockaddr, info->socklen) == 0
            && strcmp(e->name, hs->name) == 0)
        {
            victim = e;
            break;
        }
        if (victim == NULL || e->session == NULL
            || (victim->session && e->used < victim->used))
        {
            victim = e;
        }
    }
    if (victim->session) {
        SSL_SESSION_free(victim->session);
    }
    victim->session = sess;             /* our reference now (return 1) */
    victim->sockaddr = info->sockaddr;
    victim->socklen = info->socklen;
    snprintf(victim->name, sizeof(victim->name), "%s", hs->name);
    victim->used = ++ss->tick;
    return 1;
}


static SSL_SESSION *
gh_proxy_ssl_find_session(gh_proxy_ssl_hs_t *hs)
{
    gh_proxy_ssl_sessions_t *ss = hs->conf->sessions;
    gh_conn_t               *uc = hs->uc;
    gh_upstream_conn_info_t *info = gh_upstream_conn_info(uc);

    if (ss == NULL || info == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < GH_PROXY_SSL_SESSIONS; i++) {
        gh_proxy_ssl_session_t *e = &ss->e[i];

        if (e->session && e->socklen == info->socklen
            && memcmp(&e->sockaddr, &info->sockaddr, info->socklen) == 0
            && strcmp(e->name, hs->name) == 0)
        {
            e->used = ++ss->tick;
            return e->session;
        }
    }
    return NULL;
}


/* the context of a level: its own when it sets proxy_ssl_* directives
 * (or has no parent), else its parent's */
static gh_int_t
gh_proxy_ssl_ensure(gh_conf_t *cf, gh_proxy_ssl_conf_t *conf)
{
    char           err[1536];
    char          *path, *key;
    gh_conf_node_t node;

    if (conf->ctx != NULL) {
        return GH_OK;
    }
    if (!conf->local && conf->parent != NULL) {
        if (gh_proxy_ssl_ensure(cf, conf->parent) != GH_OK) {
            return GH_ERROR;
        }
        conf->ctx = conf->parent->ctx;
        conf->sessions = conf->parent->sessions;
        return GH_OK;
    }
    if (conf->parent == NULL) {
        /* the http{} level is never merged: give it the defaults */
        gh_proxy_ssl_conf_t *defaults = gh_proxy_ssl_create_loc_conf(cf);

        if (defaults == NULL) {
            snprintf(err, sizeof(err), "out of memory");
            goto failed;
        }
        gh_proxy_ssl_merge_loc_conf(cf, defaults, conf);
        conf->parent = NULL;
    }
    conf->ctx = gh_tls_ctx_create(cf->arena, false, err, sizeof(err));
    if (conf->ctx == NULL) {
        goto failed;
    }
    if (gh_tls_ctx_protocols(conf->ctx, conf->protocols ? conf->protocols
            : GH_TLS_DEFAULT_PROTOCOLS, err, sizeof(err)) != GH_OK
        || gh_tls_ctx_ciphers(conf->ctx, conf->ciphers.data
               ? gh_cstr(cf->arena, &conf->ciphers) : "DEFAULT", false, err,
               sizeof(err)) != GH_OK)
    {
        goto failed;
    }
    if (conf->certificate.data) {
        if (conf->certificate_key.data == NULL) {
            snprintf(err, sizeof(err), "no \"proxy_ssl_certificate_key\" is "
                "defined for certificate \"%.*s\"",
                (int) conf->certificate.len,
                (const char *) conf->certificate.data);
            goto failed;
        }
        path = gh_conf_full_name(cf, &conf->certificate, true);
        key = gh_conf_full_name(cf, &conf->certificate_key, true);
        if (path == NULL || key == NULL
            || gh_tls_ctx_certificate(conf->ctx, path, key, err, sizeof(err))
               != GH_OK)
        {
            goto failed;
        }
    }
    if (conf->verify) {
        if (conf->trusted.data == NULL) {
            snprintf(err, sizeof(err), "no proxy_ssl_trusted_certificate for "
                "proxy_ssl_verify");
            goto failed;
        }
        path = gh_conf_full_name(cf, &conf->trusted, true);
        if (path == NULL || gh_tls_ctx_trusted(conf->ctx, path,
                conf->verify_depth, err, sizeof(err)) != GH_OK)
        {
            goto failed;
        }
    }
    if (conf->session_reuse) {
        conf->sessions = gh_calloc(cf->arena, sizeof(gh_proxy_ssl_sessions_t));
        if (conf->sessions == NULL) {
            snprintf(err, sizeof(err), "out of memory");
            goto failed;
        }
        SSL_CTX_set_session_cache_mode(conf->ctx, SSL_SESS_CACHE_CLIENT
            | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(conf->ctx, gh_proxy_ssl_new_session);
    } else {
        SSL_CTX_set_session_cache_mode(conf->ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(conf->ctx, SSL_OP_NO_TICKET);
    }
    return GH_OK;

failed:
    memset(&node, 0, sizeof(node));
    node.file = conf->file;
    node.line = conf->line;
    gh_conf_error_at(cf, GH_LOG_EMERG, conf->file ? &node : NULL, "%s", err);
    return GH_ERROR;
}


/* a level that may proxy to https gets its context */
static gh_int_t
gh_proxy_ssl_level(gh_conf_t *cf, void **loc_conf)
{
    gh_proxy_loc_conf_t     *plcf = loc_conf[gh_http_proxy_module.index];
    gh_http_core_loc_conf_t *clcf = loc_conf[gh_http_core_module.index];
    bool                     https;

    https = plcf->set && (plcf->url_vars
        || (plcf->scheme.len == 8
            && gh_strncasecmp(plcf->scheme.data, (const uint8_t *) "https://",
                   8) == 0));
    if (https && gh_proxy_ssl_ensure(cf,
            loc_conf[gh_http_proxy_ssl_module.index]) != GH_OK)
    {
        return GH_ERROR;
    }
    if (clcf->locations == NULL) {
        return GH_OK;
    }
    for (size_t i = 0; i < clcf->locations->nelts; i++) {
        gh_http_core_loc_conf_t *sub =
            *gh_array_at(clcf->locations, gh_http_core_loc_conf_t *, i);

        if (gh_proxy_ssl_level(cf, sub->loc_conf) != GH_OK) {
            return GH_ERROR;
        }
    }
    return GH_OK;
}


static gh_int_t
gh_proxy_ssl_postconfiguration(gh_conf_t *cf)
{
    gh_http_core_main_conf_t *cmcf =
        gh_http_conf_get_module_main_conf(cf, gh_http_core_module);

    for (size_t i = 0; i < cmcf->servers.nelts; i++) {
        gh_http_core_srv_conf_t *cscf =
            *gh_array_at(&cmcf->servers, gh_http_core_srv_conf_t *, i);

        if (gh_proxy_ssl_level(cf, cscf->ctx->loc_conf) != GH_OK) {
            return GH_ERROR;
        }
    }
    return GH_OK;
}


/* --- the handshake ----------------------------------------------------- */

static void
gh_proxy_ssl_finish(gh_proxy_ssl_hs_t *hs, gh_uint_t ft, const char *what)
{
    gh_conn_t *uc = hs->uc;

    if (uc->read.timer_set) {
        gh_timer_del(uc->loop, &uc->read);
    }
    uc->read.handler = hs->saved_read;
    uc->write.handler = hs->saved_write;
    hs->done(hs->data, ft, what);
}


/* GH_OK when the peer is acceptable, else err filled */
static gh_int_t
gh_proxy_ssl_verify(gh_proxy_ssl_hs_t *hs, char *err, size_t errlen)
{
    SSL  *ssl = gh_tls_conn(hs->uc)->ssl;
    X509 *cert;
    long  rc;
    int   ok;

    if (!hs->conf->verify) {
        return GH_OK;
    }
    rc = SSL_get_verify_result(ssl);
    if (rc != X509_V_OK) {
        snprintf(err, errlen, "upstream SSL certificate verify error: "
            "(%ld:%s) while SSL handshaking to upstream", rc,
            X509_verify_cert_error_string(rc));
        return GH_ERROR;
    }
    cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL) {
        snprintf(err, errlen, "upstream sent no SSL certificate while SSL "
            "handshaking to upstream");
        return GH_ERROR;
    }
    ok = hs->name_is_ip ? X509_check_ip_asc(cert, hs->name, 0)
                        : X509_check_host(cert, hs->name, strlen(hs->name),
                              0, NULL);
    X509_free(cert);
    if (ok != 1) {
        snprintf(err, errlen, "upstream SSL certificate does not match "
            "\"%s\" while SSL handshaking to upstream", hs->name);
        return GH_ERROR;
    }
    return GH_OK;
}


/* one step: GH_OK (done and verified), GH_AGAIN, GH_ERROR (err) */
static gh_int_t
gh_proxy_ssl_step(gh_proxy_ssl_hs_t *hs, char *err, size_t errlen)
{
    char     e[1024];
    gh_int_t rc;

    rc = gh_tls_handshake(hs->uc, e, sizeof(e));
    if (rc == GH_AGAIN) {
        return GH_AGAIN;
    }
    if (rc != GH_OK) {
        snprintf(err, errlen, "%s while SSL handshaking to upstream", e);
        return GH_ERROR;
    }
    return gh_proxy_ssl_verify(hs, err, errlen);
}


static void
gh_proxy_ssl_handler(gh_event_t *ev)
{
    gh_conn_t         *uc = ev->data;
    gh_proxy_ssl_hs_t *hs = gh_tls_conn(uc)->data;
    char               err[1536];
    gh_int_t           rc;

    if (ev->timedout) {
        ev->timedout = 0;
        gh_proxy_ssl_finish(hs, GH_PROXY_FT_TIMEOUT,
            "upstream timed out while SSL handshaking to upstream");
        return;
    }
    rc = gh_proxy_ssl_step(hs, err, sizeof(err));
    if (rc == GH_AGAIN) {
        return;
    }
    if (rc != GH_OK) {
        gh_proxy_ssl_finish(hs, GH_PROXY_FT_ERROR, err);
        return;
    }
    gh_proxy_ssl_finish(hs, 0, NULL);
}


/* the name for SNI and verification: proxy_ssl_name or $proxy_host,
 * without a port and without IPv6 brackets */
static gh_int_t
gh_proxy_ssl_hs_name(gh_proxy_ssl_hs_t *hs, const gh_str_t *proxy_host)
{
    gh_str_t        v = *proxy_host;
    const uint8_t  *p, *end;
    size_t          len;
    struct in6_addr a6;
    struct in_addr  a4;

    if (hs->conf->name && gh_http_complex_value(hs->r, hs->conf->name, &v)
                          != GH_OK)
    {
        return GH_ERROR;
    }
    p = v.data;
    end = v.data + v.len;
    if (p < end && *p == '[') {
        const uint8_t *rb = memchr(p, ']', v.len);

        p++;
        end = rb ? rb : end;
    } else {
        const uint8_t *colon = memchr(p, ':', v.len);

        if (colon) {
            end = colon;
        }
    }
    len = gh_min((size_t) (end - p), sizeof(hs->name) - 1);
    memcpy(hs->name, p, len);
    hs->name[len] = '\0';
    hs->name_is_ip = inet_pton(AF_INET, hs->name, &a4) == 1
        || inet_pton(AF_INET6, hs->name, &a6) == 1;
    return GH_OK;
}


gh_int_t
gh_proxy_ssl_handshake(gh_http_request_t *r, gh_conn_t *uc,
    const gh_str_t *proxy_host, gh_msec_t timeout, gh_proxy_ssl_done_pt done,
    void *data, char *err, size_t errlen)
{
    gh_proxy_ssl_conf_t *conf = gh_http_get_module_loc_conf(r,
        gh_http_proxy_ssl_module);
    gh_proxy_ssl_hs_t   *hs;
    gh_tls_conn_t       *t;
    SSL_SESSION         *sess;
    gh_int_t             rc;

    if (conf->ctx == NULL) {
        snprintf(err, errlen, "no SSL context for this location while SSL "
            "handshaking to upstream");
        return GH_ERROR;
    }
    hs = gh_calloc(uc->arena, sizeof(*hs));
    t = hs ? gh_tls_conn_create(uc, conf->ctx, true) : NULL;
    if (t == NULL) {
        snprintf(err, errlen, "could not create SSL connection while SSL "
            "handshaking to upstream");
        return GH_ERROR;
    }
    hs->conf = conf;
    hs->r = r;
    hs->uc = uc;
    hs->done = done;
    hs->data = data;
    t->data = hs;
    if (gh_proxy_ssl_hs_name(hs, proxy_host) != GH_OK) {
        snprintf(err, errlen, "could not evaluate proxy_ssl_name while SSL "
            "handshaking to upstream");
        return GH_ERROR;
    }
    /* no SNI for an address (RFC 6066), nor when not asked for (nginx's
     * default) */
    if (conf->server_name && !hs->name_is_ip && hs->name[0]
        && SSL_set_tlsext_host_name(t->ssl, hs->name) != 1)
    {
        snprintf(err, errlen, "SSL_set_tlsext_host_name(\"%s\") failed while "
            "SSL handshaking to upstream", hs->name);
        return GH_ERROR;
    }
    if (conf->session_reuse && (sess = gh_proxy_ssl_find_session(hs)) != NULL)
    {
        SSL_set_session(t->ssl, sess);
    }

    rc = gh_proxy_ssl_step(hs, err, errlen);
    if (rc != GH_AGAIN) {
        return rc;
    }
    hs->saved_read = uc->read.handler;
    hs->saved_write = uc->write.handler;
    uc->read.handler = gh_proxy_ssl_handler;
    uc->write.handler = gh_proxy_ssl_handler;
    gh_timer_add(uc->loop, &uc->read, timeout);
    return GH_AGAIN;
}
