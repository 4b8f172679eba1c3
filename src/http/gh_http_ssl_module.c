/*
 * gh_http_ssl_module.c: HTTPS: the ssl_* directives, the handshake of a
 * client connection on a `listen ... ssl` address, SNI and ALPN, the
 * per-request checks and the $ssl_* variables.
 *
 * Configuration: each server{} with ssl_certificate gets its own SSL_CTX,
 * built when the levels are merged (in the master: errors carry the
 * directive's file:line and fail a reload).  An address's default server
 * must have one; other servers on the address without certificates keep
 * the default's.
 *
 * A connection on an ssl address:
 *
 *   accept -> gh_http_init_connection -> ssl_peek (MSG_PEEK one byte)
 *     0x16 / SSLv2 bit -> SSL on the default server's ctx
 *        -> handshake (client_header_timeout) -- SNI callback: server by
 *           name, SSL_set_SSL_CTX; ALPN callback: "http/1.1" (or "h2"
 *           once an HTTP/2 module says so)
 *        -> wait_request (HTTP/1.1 over c->recv/c->send = TLS)
 *     else plain HTTP -> wait_request; the request gets 497 in POST_READ,
 *        i.e. nginx's 400 "The plain HTTP request was sent to HTTPS port"
 *
 * POST_READ on a TLS connection, with the server Host selected:
 *   ssl_verify_client on|optional: 495 (certificate error) / 496 (none
 *   sent), nginx's 400 pages; a Host other than the SNI name while client
 *   verification is on: 421 (nginx's rule).
 */
#include "gh_http.h"
#include "gh_http_modules.h"
#include "gh_http_request.h"
#include "../tls/gh_tls.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <sys/socket.h>

/* a path or value with where it was written, for errors found later */
typedef struct {
    gh_str_t     value;
    const char  *file;
    unsigned     line;
} gh_http_ssl_val_t;

typedef struct {
    gh_array_t         *certificates;      /* gh_http_ssl_val_t */
    gh_array_t         *certificate_keys;  /* gh_http_ssl_val_t */
    gh_array_t         *ticket_keys;       /* gh_http_ssl_val_t */
    gh_http_ssl_val_t  *dhparam;
    gh_http_ssl_val_t  *ecdh_curve;
    gh_http_ssl_val_t  *ciphers;
    gh_http_ssl_val_t  *client_certificate;
    gh_http_ssl_val_t  *trusted_certificate;
    gh_http_ssl_val_t  *crl;
    gh_http_ssl_val_t  *stapling_file;
    gh_uint_t           protocols;         /* GH_TLS_*, 0 unset */
    int                 prefer_server_ciphers;
    int                 session_tickets;
    int                 stapling;
    int                 stapling_verify;
    int                 early_data;
    int                 reject_handshake;
    gh_int_t            builtin_cache;     /* GH_TLS_CACHE_* or size */
    gh_shm_zone_t      *shm_zone;          /* GH_UNSET_PTR: unset */
    gh_int_t            session_timeout;   /* seconds */
    gh_uint_t           verify;            /* GH_TLS_VERIFY_* */
    gh_int_t            verify_depth;
    size_t              buffer_size;       /* accepted, no effect */

    SSL_CTX            *ctx;
    /* certificates named with $ssl_server_name: path templates, loaded
     * for each handshake (as nginx does) */
    char              **dyn_certs;
    char              **dyn_keys;
    size_t              ndyn;
} gh_http_ssl_srv_conf_t;

/* per TLS connection, in t->data */
typedef struct {
    gh_str_t            servername;        /* SNI, validated, lowercase */
} gh_http_ssl_conn_t;

void (*gh_http_v2_init_connection)(gh_conn_t *c);

static const char *gh_http_ssl_set_val(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_ssl_set_val_array(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_ssl_protocols(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_ssl_session_cache(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_ssl_obsolete(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_ssl_early_data(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_ssl_unsupported(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_ssl_ignored(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static void *gh_http_ssl_create_srv_conf(gh_conf_t *cf);
static const char *gh_http_ssl_merge_srv_conf(gh_conf_t *cf, void *prev,
    void *conf);
static gh_int_t gh_http_ssl_postconfiguration(gh_conf_t *cf);

static const gh_conf_enum_t gh_http_ssl_verify_enum[] = {
    { "off", GH_TLS_VERIFY_OFF },
    { "on", GH_TLS_VERIFY_ON },
    { "optional", GH_TLS_VERIFY_OPTIONAL },
    { "optional_no_ca", GH_TLS_VERIFY_OPTIONAL_NO_CA },
    { NULL, 0 }
};

#define SSRV (GH_HTTP_MAIN_CONF | GH_HTTP_SRV_CONF)
#define SOFF GH_CONF_SRV_OFFSET
#define SF(f) offsetof(gh_http_ssl_srv_conf_t, f)

static const gh_command_t gh_http_ssl_commands[] = {
    { "ssl", SSRV, GH_CONF_FLAG, gh_http_ssl_obsolete, SOFF, 0, NULL },
    { "ssl_certificate", SSRV, GH_CONF_TAKE1, gh_http_ssl_set_val_array,
      SOFF, SF(certificates), NULL },
    { "ssl_certificate_key", SSRV, GH_CONF_TAKE1, gh_http_ssl_set_val_array,
      SOFF, SF(certificate_keys), NULL },
    { "ssl_password_file", SSRV, GH_CONF_TAKE1, gh_http_ssl_unsupported,
      SOFF, 0, NULL },
    { "ssl_dhparam", SSRV, GH_CONF_TAKE1, gh_http_ssl_set_val, SOFF,
      SF(dhparam), NULL },
    { "ssl_ecdh_curve", SSRV, GH_CONF_TAKE1, gh_http_ssl_set_val, SOFF,
      SF(ecdh_curve), NULL },
    { "ssl_protocols", SSRV, GH_CONF_1MORE, gh_http_ssl_protocols, SOFF,
      SF(protocols), NULL },
    { "ssl_ciphers", SSRV, GH_CONF_TAKE1, gh_http_ssl_set_val, SOFF,
      SF(ciphers), NULL },
    { "ssl_prefer_server_ciphers", SSRV, GH_CONF_FLAG, gh_conf_set_flag,
      SOFF, SF(prefer_server_ciphers), NULL },
    { "ssl_session_cache", SSRV, GH_CONF_TAKE12, gh_http_ssl_session_cache,
      SOFF, 0, NULL },
    { "ssl_session_tickets", SSRV, GH_CONF_FLAG, gh_conf_set_flag, SOFF,
      SF(session_tickets), NULL },
    { "ssl_session_ticket_key", SSRV, GH_CONF_TAKE1,
      gh_http_ssl_set_val_array, SOFF, SF(ticket_keys), NULL },
    { "ssl_session_timeout", SSRV, GH_CONF_TAKE1, gh_conf_set_sec, SOFF,
      SF(session_timeout), NULL },
    { "ssl_verify_client", SSRV, GH_CONF_TAKE1, gh_conf_set_enum, SOFF,
      SF(verify), gh_http_ssl_verify_enum },
    { "ssl_verify_depth", SSRV, GH_CONF_TAKE1, gh_conf_set_num, SOFF,
      SF(verify_depth), NULL },
    { "ssl_client_certificate", SSRV, GH_CONF_TAKE1, gh_http_ssl_set_val,
      SOFF, SF(client_certificate), NULL },
    { "ssl_trusted_certificate", SSRV, GH_CONF_TAKE1, gh_http_ssl_set_val,
      SOFF, SF(trusted_certificate), NULL },
    { "ssl_crl", SSRV, GH_CONF_TAKE1, gh_http_ssl_set_val, SOFF, SF(crl),
      NULL },
    { "ssl_stapling", SSRV, GH_CONF_FLAG, gh_conf_set_flag, SOFF,
      SF(stapling), NULL },
    { "ssl_stapling_file", SSRV, GH_CONF_TAKE1, gh_http_ssl_set_val, SOFF,
      SF(stapling_file), NULL },
    { "ssl_stapling_verify", SSRV, GH_CONF_FLAG, gh_conf_set_flag, SOFF,
      SF(stapling_verify), NULL },
    { "ssl_stapling_responder", SSRV, GH_CONF_TAKE1, gh_http_ssl_ignored,
      SOFF, 0, NULL },
    { "ssl_early_data", SSRV, GH_CONF_FLAG, gh_http_ssl_early_data, SOFF,
      SF(early_data), NULL },
    { "ssl_reject_handshake", SSRV, GH_CONF_FLAG, gh_conf_set_flag, SOFF,
      SF(reject_handshake), NULL },
    { "ssl_buffer_size", SSRV, GH_CONF_TAKE1, gh_conf_set_size, SOFF,
      SF(buffer_size), NULL },
    { "ssl_conf_command", SSRV, GH_CONF_TAKE2, gh_http_ssl_unsupported, SOFF,
      0, NULL },
    { "ssl_ocsp", SSRV, GH_CONF_TAKE1, gh_http_ssl_unsupported, SOFF, 0,
      NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_ssl_module = {
    .name = "http_ssl",
    .commands = gh_http_ssl_commands,
    .create_srv_conf = gh_http_ssl_create_srv_conf,
    .merge_srv_conf = gh_http_ssl_merge_srv_conf,
    .postconfiguration = gh_http_ssl_postconfiguration,
};

#define gh_http_ssl_sscf(cscf) \
    ((gh_http_ssl_srv_conf_t *) (cscf)->ctx->srv_conf[gh_http_ssl_module.index])


/* --- directives ---------------------------------------------------------- */

static gh_http_ssl_val_t *
gh_http_ssl_val(gh_conf_t *cf, gh_http_ssl_val_t *v)
{
    if (v == NULL) {
        v = gh_calloc(cf->arena, sizeof(*v));
        if (v == NULL) {
            return NULL;
        }
    }
    v->value = gh_conf_args(cf)[1];
    v->file = cf->node->file;
    v->line = cf->node->line;
    return v;
}


static const char *
gh_http_ssl_set_val(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_ssl_val_t **vp = (gh_http_ssl_val_t **) (void *)
        ((uint8_t *) conf + cmd->offset);

    if (*vp != GH_UNSET_PTR) {
        return "is duplicate";
    }
    *vp = gh_http_ssl_val(cf, NULL);
    return *vp ? NULL : "out of memory";
}


static const char *
gh_http_ssl_set_val_array(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_array_t **ap = (gh_array_t **) (void *) ((uint8_t *) conf
        + cmd->offset);
    gh_http_ssl_val_t *v;

    if (*ap == GH_UNSET_PTR) {
        *ap = gh_array_create(cf->arena, 2, sizeof(gh_http_ssl_val_t));
        if (*ap == NULL) {
            return "out of memory";
        }
    }
    v = gh_array_push(*ap);
    if (v == NULL) {
        return "out of memory";
    }
    memset(v, 0, sizeof(*v));
    gh_http_ssl_val(cf, v);
    return NULL;
}


static const char *
gh_http_ssl_protocols(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    static const gh_conf_enum_t names[] = {
        { "SSLv2", GH_TLS_SSLv2 }, { "SSLv3", GH_TLS_SSLv3 },
        { "TLSv1", GH_TLS_TLSv1 }, { "TLSv1.1", GH_TLS_TLSv1_1 },
        { "TLSv1.2", GH_TLS_TLSv1_2 }, { "TLSv1.3", GH_TLS_TLSv1_3 },
        { NULL, 0 }
    };
    gh_uint_t *mask = (gh_uint_t *) (void *) ((uint8_t *) conf + cmd->offset);
    gh_str_t  *args = gh_conf_args(cf);

    if (*mask != 0) {
        return "is duplicate";
    }
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
        *mask |= e->value;
    }
    return NULL;
}


static const char *
gh_http_ssl_session_cache(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_ssl_srv_conf_t *sscf = conf;
    gh_str_t               *args = gh_conf_args(cf);
    char                    name[64];
    const char             *err = NULL;

    if (sscf->builtin_cache != GH_UNSET || sscf->shm_zone != GH_UNSET_PTR) {
        return "is duplicate";
    }
    for (size_t i = 1; i < cf->node->nargs; i++) {
        gh_str_t *a = &args[i];

        if (gh_str_eq_c(a, "off")) {
            sscf->builtin_cache = GH_TLS_CACHE_OFF;
        } else if (gh_str_eq_c(a, "none")) {
            sscf->builtin_cache = GH_TLS_CACHE_NONE;
        } else if (gh_str_eq_c(a, "builtin")) {
            sscf->builtin_cache = GH_TLS_CACHE_DFLT_BUILTIN;
        } else if (a->len > 8 && memcmp(a->data, "builtin:", 8) == 0) {
            gh_int_t n = gh_atoi(a->data + 8, a->len - 8);

            if (n == GH_ERROR) {
                goto invalid;
            }
            sscf->builtin_cache = n;
        } else if (a->len > 7 && memcmp(a->data, "shared:", 7) == 0) {
            const uint8_t *p = a->data + 7, *end = a->data + a->len;
            const uint8_t *colon = memchr(p, ':', (size_t) (end - p));
            gh_str_t       size;
            ssize_t        n;

            if (colon == NULL || colon == p
                || (size_t) (colon - p) >= sizeof(name))
            {
                goto invalid;
            }
            memcpy(name, p, (size_t) (colon - p));
            name[colon - p] = '\0';
            size.data = (uint8_t *) colon + 1;
            size.len = (size_t) (end - colon - 1);
            n = gh_parse_size(&size);
            if (n == GH_ERROR || n <= 0) {
                goto invalid;
            }
            if (n < 8 * 4096) {
                gh_conf_error(cf, "session cache \"%.*s\" is too small",
                    (int) a->len, (const char *) a->data);
                return GH_CONF_ERROR;
            }
            sscf->shm_zone = gh_shm_zone_add(&cf->cycle->shm_zones,
                cf->arena, name, (size_t) n, &gh_http_ssl_module, &err);
            if (sscf->shm_zone == NULL) {
                gh_conf_error(cf, "zone \"%s\" %s", name, err);
                return GH_CONF_ERROR;
            }
            sscf->shm_zone->init = gh_tls_cache_zone_init;
        } else {
            goto invalid;
        }
    }
    if (sscf->shm_zone != GH_UNSET_PTR && sscf->builtin_cache == GH_UNSET) {
        sscf->builtin_cache = GH_TLS_CACHE_NO_BUILTIN;
    }
    if (sscf->shm_zone == GH_UNSET_PTR) {
        sscf->shm_zone = NULL;
    }
    return NULL;

invalid:
    gh_conf_error(cf, "invalid session cache \"%.*s\"",
        (int) args[1].len, (const char *) args[1].data);
    return GH_CONF_ERROR;
}


static const char *
gh_http_ssl_obsolete(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    /* nginx dropped `ssl on;` (1.25.1); its hint says what to write */
    if (gh_str_eq_c(&gh_conf_args(cf)[1], "off")) {
        gh_conf_error_at(cf, GH_LOG_WARN, cf->node, "the \"ssl\" directive "
            "is deprecated, use the \"listen ... ssl\" directive instead");
        return NULL;
    }
    gh_conf_error(cf, "the \"ssl\" directive is no longer supported, use "
        "the \"listen ... ssl\" directive instead");
    return GH_CONF_ERROR;
}


static const char *
gh_http_ssl_early_data(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    const char *rv = gh_conf_set_flag(cf, cmd, conf);

    if (rv == NULL && ((gh_http_ssl_srv_conf_t *) conf)->early_data == 1) {
        /* 0-RTT data can be replayed; not worth the risk yet */
        gh_conf_error_at(cf, GH_LOG_WARN, cf->node, "\"ssl_early_data\" is "
            "not supported, TLS 1.3 early data stays off");
    }
    return rv;
}


static const char *
gh_http_ssl_unsupported(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_conf_error(cf, "\"%s\" is not supported yet", cmd->name);
    return GH_CONF_ERROR;
}


static const char *
gh_http_ssl_ignored(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    return NULL;
}


/* --- levels ---------------------------------------------------------- */

static void *
gh_http_ssl_create_srv_conf(gh_conf_t *cf)
{
    gh_http_ssl_srv_conf_t *sscf = gh_calloc(cf->arena, sizeof(*sscf));

    if (sscf == NULL) {
        return NULL;
    }
    sscf->certificates = GH_UNSET_PTR;
    sscf->certificate_keys = GH_UNSET_PTR;
    sscf->ticket_keys = GH_UNSET_PTR;
    sscf->dhparam = GH_UNSET_PTR;
    sscf->ecdh_curve = GH_UNSET_PTR;
    sscf->ciphers = GH_UNSET_PTR;
    sscf->client_certificate = GH_UNSET_PTR;
    sscf->trusted_certificate = GH_UNSET_PTR;
    sscf->crl = GH_UNSET_PTR;
    sscf->stapling_file = GH_UNSET_PTR;
    sscf->prefer_server_ciphers = GH_UNSET;
    sscf->session_tickets = GH_UNSET;
    sscf->stapling = GH_UNSET;
    sscf->stapling_verify = GH_UNSET;
    sscf->early_data = GH_UNSET;
    sscf->reject_handshake = GH_UNSET;
    sscf->builtin_cache = GH_UNSET;
    sscf->shm_zone = GH_UNSET_PTR;
    sscf->session_timeout = GH_UNSET;
    sscf->verify = (gh_uint_t) GH_UNSET;
    sscf->verify_depth = GH_UNSET;
    sscf->buffer_size = GH_UNSET_SIZE;
    return sscf;
}


#define MERGE_PTR(f) do { if (conf->f == GH_UNSET_PTR) conf->f = \
    (prev->f == GH_UNSET_PTR ? NULL : prev->f); } while (0)
#define MERGE_INT(f, def) do { if (conf->f == GH_UNSET) conf->f = \
    (prev->f == GH_UNSET ? (def) : prev->f); } while (0)

/* an error found while building the context, at the directive that
 * named the value */
static const char *
gh_http_ssl_error(gh_conf_t *cf, const gh_http_ssl_val_t *at,
    const char *msg)
{
    gh_conf_node_t node;

    memset(&node, 0, sizeof(node));
    node.file = at ? at->file : (cf->node ? cf->node->file : NULL);
    node.line = at ? at->line : (cf->node ? cf->node->line : 0);
    gh_conf_error_at(cf, GH_LOG_EMERG, &node, "%s", msg);
    return GH_CONF_ERROR;
}


static char *
gh_http_ssl_path(gh_conf_t *cf, const gh_http_ssl_val_t *v)
{
    return gh_conf_full_name(cf, &v->value, true);
}


/* "$ssl_server_name" and "${ssl_server_name}" are the only variables a
 * certificate path may have: the SNI name is all there is at handshake
 * time */
static const char *gh_http_ssl_vars[] = {
    "$ssl_server_name", "${ssl_server_name}"
};

static bool
gh_http_ssl_template_ok(const char *p)
{
    while ((p = strchr(p, '$')) != NULL) {
        size_t i;

        for (i = 0; i < gh_nelems(gh_http_ssl_vars); i++) {
            size_t n = strlen(gh_http_ssl_vars[i]);

            if (strncmp(p, gh_http_ssl_vars[i], n) == 0
                && (i == 1 || !(p[n] == '_' || (p[n] >= 'a' && p[n] <= 'z')
                                || (p[n] >= 'A' && p[n] <= 'Z')
                                || (p[n] >= '0' && p[n] <= '9'))))
            {
                p += n;
                break;
            }
        }
        if (i == gh_nelems(gh_http_ssl_vars)) {
            return false;
        }
    }
    return true;
}


/* the template with the SNI name in; false if it does not fit */
static bool
gh_http_ssl_expand(const char *tpl, const gh_str_t *name, char *out,
    size_t size)
{
    size_t len = 0;

    while (*tpl) {
        size_t n = 0;

        if (*tpl == '$') {
            n = strncmp(tpl, "${", 2) == 0 ? strlen(gh_http_ssl_vars[1])
                                           : strlen(gh_http_ssl_vars[0]);
            if (len + name->len >= size) {
                return false;
            }
            memcpy(out + len, name->data, name->len);
            len += name->len;
            tpl += n;
            continue;
        }
        if (len + 1 >= size) {
            return false;
        }
        out[len++] = *tpl++;
    }
    out[len] = '\0';
    return true;
}


static int
gh_http_ssl_cert_cb(SSL *ssl, void *arg)
{
    gh_http_ssl_srv_conf_t *sscf = arg;
    gh_conn_t              *c = gh_tls_conn_of(ssl);
    gh_http_ssl_conn_t     *sc = (c && c->tls) ? gh_tls_conn(c)->data : NULL;
    gh_str_t                name = gh_null_string;
    char                    cert[4096], key[4096], e[768];

    if (sc) {
        name = sc->servername;      /* validated: no '/' and no ".." */
    }
    for (size_t i = 0; i < sscf->ndyn; i++) {
        if (!gh_http_ssl_expand(sscf->dyn_certs[i], &name, cert, sizeof(cert))
            || !gh_http_ssl_expand(sscf->dyn_keys[i], &name, key, sizeof(key)))
        {
            return 0;
        }
        ERR_clear_error();
        if (SSL_use_certificate_chain_file(ssl, cert) != 1) {
            if (c) {
                gh_log(GH_LOG_ERR, &c->log, 0, "cannot load certificate "
                    "\"%s\": %s", cert, gh_tls_errors(e, sizeof(e)));
            }
            return 0;
        }
        if (SSL_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1) {
            if (c) {
                gh_log(GH_LOG_ERR, &c->log, 0, "cannot load certificate key "
                    "\"%s\": %s", key, gh_tls_errors(e, sizeof(e)));
            }
            return 0;
        }
    }
    return 1;
}


static gh_int_t
gh_http_ssl_certificates(gh_conf_t *cf, gh_http_ssl_srv_conf_t *conf,
    char *err, size_t errlen, const gh_http_ssl_val_t **at)
{
    gh_http_ssl_val_t *certs = conf->certificates->elts;
    gh_http_ssl_val_t *keys = conf->certificate_keys
        ? conf->certificate_keys->elts : NULL;
    size_t             nkeys = keys ? conf->certificate_keys->nelts : 0;

    conf->dyn_certs = gh_calloc(cf->arena,
        conf->certificates->nelts * sizeof(char *));
    conf->dyn_keys = gh_calloc(cf->arena,
        conf->certificates->nelts * sizeof(char *));
    if (conf->dyn_certs == NULL || conf->dyn_keys == NULL) {
        snprintf(err, errlen, "out of memory");
        return GH_ERROR;
    }
    for (size_t i = 0; i < conf->certificates->nelts; i++) {
        char *cert, *key;

        *at = &certs[i];
        if (i >= nkeys) {
            snprintf(err, errlen, "no \"ssl_certificate_key\" is defined "
                "for certificate \"%.*s\"", (int) certs[i].value.len,
                (const char *) certs[i].value.data);
            return GH_ERROR;
        }
        cert = gh_http_ssl_path(cf, &certs[i]);
        key = gh_http_ssl_path(cf, &keys[i]);
        if (cert == NULL || key == NULL) {
            snprintf(err, errlen, "out of memory");
            return GH_ERROR;
        }
        if (strchr(cert, '$') || strchr(key, '$')) {
            if (!gh_http_ssl_template_ok(cert)
                || !gh_http_ssl_template_ok(key))
            {
                if (!gh_http_ssl_template_ok(key)) {
                    *at = &keys[i];
                }
                snprintf(err, errlen, "only $ssl_server_name is supported "
                    "in \"ssl_certificate\" and \"ssl_certificate_key\"");
                return GH_ERROR;
            }
            conf->dyn_certs[conf->ndyn] = cert;
            conf->dyn_keys[conf->ndyn++] = key;
            continue;
        }
        if (gh_tls_ctx_certificate(conf->ctx, cert, key, err, errlen)
            != GH_OK)
        {
            if (strstr(err, "key") != NULL) {
                *at = &keys[i];
            }
            return GH_ERROR;
        }
    }
    if (conf->ndyn > 0) {
        SSL_CTX_set_cert_cb(conf->ctx, gh_http_ssl_cert_cb, conf);
    }
    return GH_OK;
}


static gh_int_t
gh_http_ssl_crl(gh_conf_t *cf, SSL_CTX *ctx, const char *file, char *err,
    size_t errlen)
{
    X509_STORE  *store = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());

    if (lookup == NULL
        || X509_load_crl_file(lookup, file, X509_FILETYPE_PEM) <= 0)
    {
        snprintf(err, errlen, "X509_LOOKUP_load_file(\"%s\") failed", file);
        ERR_clear_error();
        return GH_ERROR;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK
        | X509_V_FLAG_CRL_CHECK_ALL);
    return GH_OK;
}


static int gh_http_ssl_servername(SSL *ssl, int *ad, void *arg);
static int gh_http_ssl_client_hello(SSL *ssl, int *al, void *arg);
static int gh_http_ssl_alpn_select(SSL *ssl, const unsigned char **out,
    unsigned char *outlen, const unsigned char *in, unsigned int inlen,
    void *arg);

/* build conf->ctx from the merged values; on error returns the value to
 * blame and fills err */
static gh_int_t
gh_http_ssl_build(gh_conf_t *cf, gh_http_ssl_srv_conf_t *conf, char *err,
    size_t errlen, const gh_http_ssl_val_t **at)
{
    char   *path, *ca = NULL, *trusted = NULL, extra[1200];
    char  **files = NULL;
    size_t  nfiles = 0;

    *at = NULL;
    conf->ctx = gh_tls_ctx_create(cf->arena, true, err, errlen);
    if (conf->ctx == NULL
        || gh_tls_ctx_protocols(conf->ctx, conf->protocols, err, errlen)
           != GH_OK)
    {
        return GH_ERROR;
    }
    SSL_CTX_set_tlsext_servername_callback(conf->ctx, gh_http_ssl_servername);
    SSL_CTX_set_client_hello_cb(conf->ctx, gh_http_ssl_client_hello, NULL);
    SSL_CTX_set_alpn_select_cb(conf->ctx, gh_http_ssl_alpn_select, NULL);

    if (conf->certificates
        && gh_http_ssl_certificates(cf, conf, err, errlen, at) != GH_OK)
    {
        return GH_ERROR;
    }
    *at = conf->ciphers;
    if (gh_tls_ctx_ciphers(conf->ctx, conf->ciphers
            ? gh_cstr(cf->arena, &conf->ciphers->value) : "HIGH:!aNULL:!MD5",
            conf->prefer_server_ciphers == 1, err, errlen) != GH_OK)
    {
        return GH_ERROR;
    }
    *at = conf->ecdh_curve;
    if (conf->ecdh_curve && gh_tls_ctx_ecdh_curve(conf->ctx,
            gh_cstr(cf->arena, &conf->ecdh_curve->value), err, errlen)
        != GH_OK)
    {
        return GH_ERROR;
    }
    *at = conf->dhparam;
    if (conf->dhparam && ((path = gh_http_ssl_path(cf, conf->dhparam)) == NULL
            || gh_tls_ctx_dhparam(conf->ctx, path, err, errlen) != GH_OK))
    {
        return GH_ERROR;
    }

    if (conf->client_certificate) {
        ca = gh_http_ssl_path(cf, conf->client_certificate);
    }
    if (conf->trusted_certificate) {
        trusted = gh_http_ssl_path(cf, conf->trusted_certificate);
    }
    if (conf->verify != GH_TLS_VERIFY_OFF
        && conf->verify != GH_TLS_VERIFY_OPTIONAL_NO_CA
        && ca == NULL && trusted == NULL)
    {
        snprintf(err, errlen, "no ssl_client_certificate or "
            "ssl_trusted_certificate for ssl_verify_client");
        return GH_ERROR;
    }
    *at = conf->client_certificate ? conf->client_certificate
                                   : conf->trusted_certificate;
    if (gh_tls_ctx_client_verify(conf->ctx, (unsigned) conf->verify, ca,
            trusted, conf->verify_depth, err, errlen) != GH_OK)
    {
        return GH_ERROR;
    }
    *at = conf->crl;
    if (conf->crl && ((path = gh_http_ssl_path(cf, conf->crl)) == NULL
            || gh_http_ssl_crl(cf, conf->ctx, path, err, errlen) != GH_OK))
    {
        return GH_ERROR;
    }

    *at = conf->stapling_file;
    if (conf->stapling == 1 && conf->stapling_file) {
        path = gh_http_ssl_path(cf, conf->stapling_file);
        if (path == NULL || gh_tls_ctx_stapling_file(conf->ctx, cf->arena,
                path, err, errlen) != GH_OK)
        {
            return GH_ERROR;
        }
    }

    *at = NULL;
    snprintf(extra, sizeof(extra), "verify=%u ca=%s trusted=%s",
        (unsigned) conf->verify, ca ? ca : "", trusted ? trusted : "");
    if (gh_tls_ctx_session_id_context(conf->ctx, extra, err, errlen) != GH_OK
        || gh_tls_ctx_session_cache(conf->ctx, cf->arena, conf->builtin_cache,
               conf->shm_zone, conf->session_timeout, err, errlen) != GH_OK)
    {
        return GH_ERROR;
    }
    if (conf->ticket_keys) {
        nfiles = conf->ticket_keys->nelts;
        files = gh_calloc(cf->arena, nfiles * sizeof(char *));
        if (files == NULL) {
            snprintf(err, errlen, "out of memory");
            return GH_ERROR;
        }
        for (size_t i = 0; i < nfiles; i++) {
            files[i] = gh_http_ssl_path(cf, gh_array_at(conf->ticket_keys,
                gh_http_ssl_val_t, i));
        }
        *at = gh_array_at(conf->ticket_keys, gh_http_ssl_val_t, 0);
    }
    return gh_tls_ctx_tickets(conf->ctx, cf->arena,
        conf->session_tickets == 1, files, nfiles, conf->session_timeout,
        err, errlen);
}


static const char *
gh_http_ssl_merge_srv_conf(gh_conf_t *cf, void *parent, void *child)
{
    gh_http_ssl_srv_conf_t  *prev = parent, *conf = child;
    const gh_http_ssl_val_t *at = NULL;
    char                     err[1536];

    MERGE_PTR(certificates);
    MERGE_PTR(certificate_keys);
    MERGE_PTR(ticket_keys);
    MERGE_PTR(dhparam);
    MERGE_PTR(ecdh_curve);
    MERGE_PTR(ciphers);
    MERGE_PTR(client_certificate);
    MERGE_PTR(trusted_certificate);
    MERGE_PTR(crl);
    MERGE_PTR(stapling_file);
    if (conf->protocols == 0) {
        conf->protocols = prev->protocols ? prev->protocols
                                          : GH_TLS_DEFAULT_PROTOCOLS;
    }
    MERGE_INT(prefer_server_ciphers, 0);
    MERGE_INT(session_tickets, 1);
    MERGE_INT(stapling, 0);
    MERGE_INT(stapling_verify, 0);
    MERGE_INT(early_data, 0);
    MERGE_INT(reject_handshake, 0);
    MERGE_INT(session_timeout, 300);
    MERGE_INT(verify_depth, 1);
    if (conf->verify == (gh_uint_t) GH_UNSET) {
        conf->verify = prev->verify == (gh_uint_t) GH_UNSET
            ? GH_TLS_VERIFY_OFF : prev->verify;
    }
    if (conf->builtin_cache == GH_UNSET && conf->shm_zone == GH_UNSET_PTR) {
        conf->builtin_cache = prev->builtin_cache;
        conf->shm_zone = prev->shm_zone;
    }
    if (conf->builtin_cache == GH_UNSET) {
        conf->builtin_cache = GH_TLS_CACHE_NONE;
    }
    if (conf->shm_zone == GH_UNSET_PTR) {
        conf->shm_zone = NULL;
    }
    if (conf->buffer_size == GH_UNSET_SIZE) {
        conf->buffer_size = prev->buffer_size == GH_UNSET_SIZE
            ? 16384 : prev->buffer_size;
    }

    if (conf->stapling == 1 && conf->stapling_file == NULL) {
        /* no network here: only a response from a file can be stapled */
        gh_log(GH_LOG_WARN, cf->log, 0, "\"ssl_stapling\" ignored, no OCSP "
            "responder is queried: set \"ssl_stapling_file\"");
    }
    if (conf->certificates == NULL && !conf->reject_handshake) {
        return NULL;            /* no context: plain HTTP, or the default's */
    }
    if (gh_http_ssl_build(cf, conf, err, sizeof(err), &at) != GH_OK) {
        return gh_http_ssl_error(cf, at, err);
    }
    return NULL;
}


/* every `listen ... ssl` address needs a certificate in its default
 * server (others fall back on it) */
static gh_int_t
gh_http_ssl_check_listens(gh_conf_t *cf)
{
    gh_http_core_main_conf_t *cmcf =
        gh_http_conf_get_module_main_conf(cf, gh_http_core_module);
    gh_http_listen_t         *ls = cmcf->listens.elts;

    for (size_t i = 0; i < cmcf->listens.nelts; i++) {
        gh_http_core_srv_conf_t *def = NULL;
        bool                     ssl = false;
        gh_http_ssl_srv_conf_t  *sscf;
        gh_conf_node_t           node;

        for (size_t j = 0; j < cmcf->listens.nelts; j++) {
            if (ls[j].socklen != ls[i].socklen
                || memcmp(&ls[j].sockaddr, &ls[i].sockaddr, ls[i].socklen))
            {
                continue;
            }
            if (j < i) {
                goto next;          /* this address was checked already */
            }
            ssl |= ls[j].ssl;
            if (def == NULL || ls[j].default_server) {
                def = ls[j].server;
            }
        }
        if (!ssl || def == NULL) {
            continue;
        }
        sscf = gh_http_ssl_sscf(def);
        if (sscf->ctx != NULL) {
            continue;
        }
        memset(&node, 0, sizeof(node));
        node.file = def->file;
        node.line = def->line;
        gh_conf_error_at(cf, GH_LOG_EMERG, &node, "no \"ssl_certificate\" is "
            "defined for the \"listen ... ssl\" directive");
        return GH_ERROR;
    next:;
    }
    return GH_OK;
}


/* --- handshake ------------------------------------------------------- */

/* the server{} for an SNI name: its context (certificate, protocols,
 * verification, session id context) replaces the default's.  Returns an
 * SSL_TLSEXT_ERR_* value. */
static int
gh_http_ssl_select(SSL *ssl, gh_conn_t *c, const uint8_t *name, size_t len,
    int *ad)
{
    gh_http_connection_t    *hc = c->data;
    gh_http_ssl_conn_t      *sc;
    gh_http_core_srv_conf_t *cscf;
    gh_http_ssl_srv_conf_t  *sscf;
    gh_str_t                 host;

    host.data = (uint8_t *) name;
    host.len = len;
    if (len == 0 || memchr(name, '\0', len)
        || gh_http_validate_host(&host, gh_http_conn_arena(c)) != GH_OK)
    {
        *ad = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    sc = gh_calloc(gh_http_conn_arena(c), sizeof(*sc));
    if (sc == NULL) {
        *ad = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    sc->servername = gh_str_dup(gh_http_conn_arena(c), &host);
    gh_tls_conn(c)->data = sc;

    cscf = gh_http_find_server(NULL, hc->addr_conf, &host);
    if (cscf == NULL) {
        return SSL_TLSEXT_ERR_OK;
    }
    sscf = gh_http_ssl_sscf(cscf);
    if (sscf->reject_handshake) {
        gh_log(GH_LOG_INFO, &c->log, 0, "reject handshake for server name "
            "\"%.*s\"", (int) host.len, (const char *) host.data);
        *ad = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (sscf->ctx == NULL || sscf->ctx == SSL_get_SSL_CTX(ssl)) {
        return SSL_TLSEXT_ERR_OK;
    }
    /* this server's certificate, protocols, verification and session id
     * context.  The session cache and ticket keys stay the default
     * server's (OpenSSL keeps the first context for them, as in nginx),
     * but a session made here carries this server's id context and so
     * cannot be resumed on another server */
    SSL_set_SSL_CTX(ssl, sscf->ctx);
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(sscf->ctx),
        SSL_CTX_get_verify_callback(sscf->ctx));
    SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(sscf->ctx));
    SSL_clear_options(ssl, SSL_get_options(ssl)
        & ~SSL_CTX_get_options(sscf->ctx));
    SSL_set_options(ssl, SSL_CTX_get_options(sscf->ctx));
    SSL_set_min_proto_version(ssl, SSL_CTX_get_min_proto_version(sscf->ctx));
    SSL_set_max_proto_version(ssl, SSL_CTX_get_max_proto_version(sscf->ctx));
    return SSL_TLSEXT_ERR_OK;
}


/* The ClientHello callback runs before OpenSSL looks up a session or
 * picks a protocol version, which the SNI callback comes too late for:
 * the server is chosen here, from the raw server_name extension. */
static int
gh_http_ssl_client_hello(SSL *ssl, int *al, void *arg)
{
    gh_conn_t           *c = gh_tls_conn_of(ssl);
    const unsigned char *p;
    size_t               len, list, n;
    int                  rc;

    if (c == NULL || c->tls == NULL || gh_tls_conn(c)->data != NULL) {
        return SSL_CLIENT_HELLO_SUCCESS;   /* none, or a second hello */
    }
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len)) {
        return SSL_CLIENT_HELLO_SUCCESS;   /* no SNI: the default server */
    }
    /* ServerNameList: length, then (type, length, name)...; the first
     * host_name is the one (RFC 6066 allows one of each type) */
    if (len < 2 || (list = ((size_t) p[0] << 8 | p[1])) != len - 2) {
        *al = SSL_AD_DECODE_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    p += 2;
    while (list >= 3) {
        n = (size_t) p[1] << 8 | p[2];
        if (n + 3 > list) {
            break;
        }
        if (p[0] == TLSEXT_NAMETYPE_host_name) {
            rc = gh_http_ssl_select(ssl, c, p + 3, n, al);
            return rc == SSL_TLSEXT_ERR_OK ? SSL_CLIENT_HELLO_SUCCESS
                                           : SSL_CLIENT_HELLO_ERROR;
        }
        p += n + 3;
        list -= n + 3;
    }
    *al = SSL_AD_DECODE_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
}


static int
gh_http_ssl_servername(SSL *ssl, int *ad, void *arg)
{
    gh_conn_t  *c = gh_tls_conn_of(ssl);
    const char *name;

    /* normally done by the ClientHello callback already */
    if (c == NULL || c->tls == NULL || gh_tls_conn(c)->data != NULL) {
        return SSL_TLSEXT_ERR_OK;
    }
    name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    return gh_http_ssl_select(ssl, c, (const uint8_t *) name, strlen(name),
        ad);
}


static int
gh_http_ssl_alpn_select(SSL *ssl, const unsigned char **out,
    unsigned char *outlen, const unsigned char *in, unsigned int inlen,
    void *arg)
{
    static const unsigned char h2[] = "\x02h2\x08http/1.1";
    static const unsigned char h1[] = "\x08http/1.1";
    gh_conn_t                 *c = gh_tls_conn_of(ssl);
    gh_http_connection_t      *hc = c ? c->data : NULL;
    const unsigned char       *srv = h1;
    unsigned int               srvlen = sizeof(h1) - 1;

    /* "h2" only where `listen ... http2` asked for it and an HTTP/2
     * implementation has registered itself */
    if (hc && hc->addr_conf->http2 && gh_http_v2_init_connection) {
        srv = h2;
        srvlen = sizeof(h2) - 1;
    }
    if (SSL_select_next_proto((unsigned char **) out, outlen, srv, srvlen,
            in, inlen) != OPENSSL_NPN_NEGOTIATED)
    {
        /* nginx (1.21.4+) refuses a client whose list has nothing it
         * speaks */
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}


static void
gh_http_ssl_noop(gh_event_t *ev)
{
}


static void
gh_http_ssl_fail(gh_conn_t *c, const char *what)
{
    gh_http_connection_t *hc = c->data;

    gh_log(GH_LOG_INFO, &c->log, 0, "%s while SSL handshaking, client: %.*s, "
        "server: %s", what, (int) c->addr_text.len,
        (const char *) c->addr_text.data, hc->addr_conf->addr_text);
    gh_conn_close(c);
}


static void
gh_http_ssl_handshake_handler(gh_event_t *ev)
{
    gh_conn_t            *c = ev->data;
    gh_http_connection_t *hc = c->data;
    gh_str_t              alpn;
    char                  err[1024];
    gh_int_t              rc;

    if (c->read.timedout) {
        errno = ETIMEDOUT;
        gh_log(GH_LOG_INFO, &c->log, ETIMEDOUT, "client timed out while SSL "
            "handshaking, client: %.*s", (int) c->addr_text.len,
            (const char *) c->addr_text.data);
        gh_conn_close(c);
        return;
    }
    if (c->close) {
        gh_conn_close(c);
        return;
    }
    rc = gh_tls_handshake(c, err, sizeof(err));
    if (rc == GH_AGAIN) {
        return;
    }
    if (rc != GH_OK) {
        gh_http_ssl_fail(c, err);
        return;
    }
    gh_tls_alpn(c, &alpn);
    if (gh_str_eq_c(&alpn, "h2") && gh_http_v2_init_connection) {
        gh_http_v2_init_connection(c);
        return;
    }
    c->read.handler = gh_http_wait_request_handler;
    c->write.handler = gh_http_ssl_noop;
    /* the request may have come with the last handshake flight and sit
     * in the socket already: try at once, with a fresh header timeout */
    c->read.ready = 1;
    gh_timer_add(c->loop, &c->read, hc->addr_conf->default_server->client_header_timeout);
    gh_http_wait_request_handler(&c->read);
}


static void
gh_http_ssl_peek_handler(gh_event_t *ev)
{
    gh_conn_t            *c = ev->data;
    gh_http_connection_t *hc = c->data;
    gh_http_ssl_srv_conf_t *sscf;
    uint8_t               b;
    ssize_t               n;

    if (ev->timedout || c->close) {
        gh_conn_close(c);
        return;
    }
    if (!c->read.ready) {
        return;
    }
    do {
        n = recv(c->fd, &b, 1, MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->read.ready = 0;
        return;
    }
    if (n <= 0) {
        gh_conn_close(c);
        return;
    }
    /* a TLS record of type handshake (22), or an SSLv2-style hello: the
     * first byte tells, as nginx decides */
    if (b != 0x16 && !(b & 0x80)) {
        c->read.handler = gh_http_wait_request_handler;
        gh_http_wait_request_handler(&c->read);
        return;
    }
    sscf = gh_http_ssl_sscf(hc->addr_conf->default_server);
    gh_http_conn_arena(c);
    if (sscf->ctx == NULL || gh_tls_conn_create(c, sscf->ctx, false) == NULL) {
        gh_conn_close(c);
        return;
    }
    c->read.handler = gh_http_ssl_handshake_handler;
    c->write.handler = gh_http_ssl_handshake_handler;
    gh_http_ssl_handshake_handler(&c->read);
}


void
gh_http_ssl_init_connection(gh_conn_t *c)
{
    c->read.handler = gh_http_ssl_peek_handler;
    c->write.handler = gh_http_ssl_noop;
    gh_http_ssl_peek_handler(&c->read);
}


/* --- per request --------------------------------------------------------- */

static gh_int_t
gh_http_ssl_verify_error_optional(long rc)
{
    /* optional_no_ca: a chain we cannot anchor is still acceptable */
    return rc == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        || rc == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        || rc == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        || rc == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        || rc == X509_V_ERR_CERT_UNTRUSTED
        || rc == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}


static gh_int_t
gh_http_ssl_post_read(gh_http_request_t *r)
{
    gh_conn_t              *c = r->conn;
    gh_tls_conn_t          *t = gh_tls_conn(c);
    gh_http_ssl_srv_conf_t *sscf;
    gh_http_ssl_conn_t     *sc;
    X509                   *cert;
    long                    rc;

    if (r->internal) {
        return GH_DECLINED;
    }
    if (t == NULL) {
        if (r->addr_conf && r->addr_conf->ssl) {
            gh_log(GH_LOG_INFO, &c->log, 0, "client sent plain HTTP request "
                "to HTTPS port");
            return 497;
        }
        return GH_DECLINED;
    }
    sscf = gh_http_get_module_srv_conf(r, gh_http_ssl_module);
    if (sscf->verify == GH_TLS_VERIFY_OFF) {
        return GH_DECLINED;
    }
    /* with client certificates the certificate is bound to the name the
     * handshake was for: another Host must not reach another server */
    sc = t->data;
    if (sc && r->headers_in.server.len
        && !gh_str_eq(&sc->servername, &r->headers_in.server))
    {
        gh_log(GH_LOG_INFO, &c->log, 0, "client attempted to request the "
            "server name different from the one that was negotiated");
        return 421;
    }
    rc = SSL_get_verify_result(t->ssl);
    if (rc != X509_V_OK
        && (sscf->verify != GH_TLS_VERIFY_OPTIONAL_NO_CA
            || !gh_http_ssl_verify_error_optional(rc)))
    {
        gh_log(GH_LOG_INFO, &c->log, 0, "client SSL certificate verify "
            "error: (%ld:%s)", rc, X509_verify_cert_error_string(rc));
        return 495;
    }
    if (sscf->verify == GH_TLS_VERIFY_ON) {
        cert = SSL_get1_peer_certificate(t->ssl);
        if (cert == NULL) {
            gh_log(GH_LOG_INFO, &c->log, 0, "client sent no required SSL "
                "certificate");
            return 496;
        }
        X509_free(cert);
    }
    return GH_DECLINED;
}


/* --- variables ----------------------------------------------------------- */

enum {
    GH_SSLV_PROTOCOL = 0,
    GH_SSLV_CIPHER,
    GH_SSLV_SERVER_NAME,
    GH_SSLV_CLIENT_S_DN,
    GH_SSLV_CLIENT_I_DN,
    GH_SSLV_CLIENT_VERIFY,
    GH_SSLV_SESSION_REUSED,
    GH_SSLV_SESSION_ID,
    GH_SSLV_CLIENT_SERIAL,
    GH_SSLV_CLIENT_FINGERPRINT,
    GH_SSLV_CLIENT_RAW_CERT,
    GH_SSLV_CLIENT_CERT,
    GH_SSLV_ALPN,
    GH_SSLV_CURVE,
    GH_SSLV_EARLY_DATA
};

static const char *gh_http_ssl_var_names[] = {
    "ssl_protocol", "ssl_cipher", "ssl_server_name", "ssl_client_s_dn",
    "ssl_client_i_dn", "ssl_client_verify", "ssl_session_reused",
    "ssl_session_id", "ssl_client_serial", "ssl_client_fingerprint",
    "ssl_client_raw_cert", "ssl_client_cert", "ssl_alpn_protocol",
    "ssl_curve", "ssl_early_data",
};


static gh_int_t
gh_http_ssl_var_copy(gh_http_request_t *r, gh_str_t *v, const char *s,
    size_t len)
{
    v->data = gh_strdup_arena(r->arena, (const uint8_t *) s, len);
    if (v->data == NULL) {
        return GH_ERROR;
    }
    v->len = len;
    return GH_OK;
}


static gh_int_t
gh_http_ssl_var_bio(gh_http_request_t *r, gh_str_t *v, BIO *bio)
{
    char    *p;
    long     len;
    gh_int_t rc;

    len = BIO_get_mem_data(bio, &p);
    rc = len >= 0 ? gh_http_ssl_var_copy(r, v, p, (size_t) len) : GH_ERROR;
    BIO_free(bio);
    return rc;
}


static gh_int_t
gh_http_ssl_var_name(gh_http_request_t *r, gh_str_t *v, X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio == NULL) {
        return GH_ERROR;
    }
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    return gh_http_ssl_var_bio(r, v, bio);
}


static gh_int_t
gh_http_ssl_var_hex(gh_http_request_t *r, gh_str_t *v, const uint8_t *p,
    size_t n, bool upper)
{
    static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
    const char       *digits = upper ? up : lo;

    v->data = gh_alloc_unaligned(r->arena, 2 * n + 1);
    if (v->data == NULL) {
        return GH_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        v->data[2 * i] = (uint8_t) digits[p[i] >> 4];
        v->data[2 * i + 1] = (uint8_t) digits[p[i] & 0x0f];
    }
    v->len = 2 * n;
    return GH_OK;
}


/* the PEM certificate; "client_cert" indents continuation lines with a
 * tab, the form nginx gives for a header value */
static gh_int_t
gh_http_ssl_var_pem(gh_http_request_t *r, gh_str_t *v, X509 *cert,
    bool tabbed)
{
    BIO     *bio = BIO_new(BIO_s_mem());
    gh_str_t raw;
    size_t   nl = 0, j = 0;

    if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1
        || gh_http_ssl_var_bio(r, &raw, bio) != GH_OK)
    {
        return GH_ERROR;
    }
    while (raw.len && (raw.data[raw.len - 1] == '\n'
                       || raw.data[raw.len - 1] == '\r'))
    {
        raw.len--;
    }
    if (!tabbed) {
        *v = raw;
        return GH_OK;
    }
    for (size_t i = 0; i < raw.len; i++) {
        nl += raw.data[i] == '\n';
    }
    v->data = gh_alloc_unaligned(r->arena, raw.len + nl + 1);
    if (v->data == NULL) {
        return GH_ERROR;
    }
    for (size_t i = 0; i < raw.len; i++) {
        v->data[j++] = raw.data[i];
        if (raw.data[i] == '\n') {
            v->data[j++] = '\t';
        }
    }
    v->len = j;
    return GH_OK;
}


static gh_int_t
gh_http_ssl_var_cert(gh_http_request_t *r, gh_str_t *v, SSL *ssl,
    uintptr_t which)
{
    X509          *cert = SSL_get1_peer_certificate(ssl);
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned int   mdlen = 0;
    gh_int_t       rc = GH_ERROR;
    BIGNUM        *bn;
    char          *hex;

    if (cert == NULL) {
        return GH_DECLINED;
    }
    switch (which) {
    case GH_SSLV_CLIENT_S_DN:
        rc = gh_http_ssl_var_name(r, v, X509_get_subject_name(cert));
        break;
    case GH_SSLV_CLIENT_I_DN:
        rc = gh_http_ssl_var_name(r, v, X509_get_issuer_name(cert));
        break;
    case GH_SSLV_CLIENT_SERIAL:
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        hex = bn ? BN_bn2hex(bn) : NULL;
        rc = hex ? gh_http_ssl_var_copy(r, v, hex, strlen(hex)) : GH_ERROR;
        OPENSSL_free(hex);
        BN_free(bn);
        break;
    case GH_SSLV_CLIENT_FINGERPRINT:
        if (X509_digest(cert, EVP_sha1(), md, &mdlen) == 1) {
            rc = gh_http_ssl_var_hex(r, v, md, mdlen, false);
        }
        break;
    case GH_SSLV_CLIENT_RAW_CERT:
    case GH_SSLV_CLIENT_CERT:
        rc = gh_http_ssl_var_pem(r, v, cert, which == GH_SSLV_CLIENT_CERT);
        break;
    }
    X509_free(cert);
    return rc;
}


static gh_int_t
gh_http_ssl_var(gh_http_request_t *r, gh_str_t *v, uintptr_t which)
{
    gh_tls_conn_t       *t = gh_tls_conn(r->conn);
    gh_http_ssl_conn_t  *sc;
    SSL_SESSION         *sess;
    const unsigned char *p;
    const char          *s;
    unsigned int         len;
    long                 rc;
    char                 buf[160];
    int                  nid;

    if (t == NULL || t->ssl == NULL) {
        return GH_DECLINED;
    }
    switch (which) {
    case GH_SSLV_PROTOCOL:
        s = SSL_get_version(t->ssl);
        return gh_http_ssl_var_copy(r, v, s, strlen(s));
    case GH_SSLV_CIPHER:
        s = SSL_get_cipher_name(t->ssl);
        return s ? gh_http_ssl_var_copy(r, v, s, strlen(s)) : GH_DECLINED;
    case GH_SSLV_SERVER_NAME:
        sc = t->data;
        if (sc == NULL) {
            return GH_DECLINED;
        }
        *v = sc->servername;
        return GH_OK;
    case GH_SSLV_CLIENT_VERIFY:
        if (SSL_get0_peer_certificate(t->ssl) == NULL) {
            gh_str_set(v, "NONE");
            return GH_OK;
        }
        rc = SSL_get_verify_result(t->ssl);
        if (rc == X509_V_OK) {
            gh_str_set(v, "SUCCESS");
            return GH_OK;
        }
        snprintf(buf, sizeof(buf), "FAILED:%s",
            X509_verify_cert_error_string(rc));
        return gh_http_ssl_var_copy(r, v, buf, strlen(buf));
    case GH_SSLV_SESSION_REUSED:
        if (SSL_session_reused(t->ssl)) {
            gh_str_set(v, "r");
        } else {
            gh_str_set(v, ".");
        }
        return GH_OK;
    case GH_SSLV_SESSION_ID:
        sess = SSL_get_session(t->ssl);
        p = sess ? SSL_SESSION_get_id(sess, &len) : NULL;
        if (p == NULL || len == 0) {
            return GH_DECLINED;
        }
        return gh_http_ssl_var_hex(r, v, p, len, true);
    case GH_SSLV_ALPN:
        SSL_get0_alpn_selected(t->ssl, &p, &len);
        if (p == NULL || len == 0) {
            return GH_DECLINED;
        }
        return gh_http_ssl_var_copy(r, v, (const char *) p, len);
    case GH_SSLV_CURVE:
        nid = SSL_get_negotiated_group(t->ssl);
        s = nid > 0 ? OBJ_nid2sn(nid) : NULL;
        return s ? gh_http_ssl_var_copy(r, v, s, strlen(s)) : GH_DECLINED;
    case GH_SSLV_EARLY_DATA:
        return GH_DECLINED;     /* never accepted */
    default:
        return gh_http_ssl_var_cert(r, v, t->ssl, which);
    }
}


static gh_int_t
gh_http_ssl_postconfiguration(gh_conf_t *cf)
{
    for (size_t i = 0; i < gh_nelems(gh_http_ssl_var_names); i++) {
        gh_str_t n = { strlen(gh_http_ssl_var_names[i]),
                       (uint8_t *) gh_http_ssl_var_names[i] };
        gh_http_variable_t *v = gh_http_add_variable(cf, &n, 0);

        if (v == NULL) {
            gh_conf_error(cf, "the duplicate \"%s\" variable",
                gh_http_ssl_var_names[i]);
            return GH_ERROR;
        }
        v->get = gh_http_ssl_var;
        v->data = i;
    }
    if (gh_http_phase_add(cf, GH_HTTP_POST_READ_PHASE, gh_http_ssl_post_read)
        != GH_OK)
    {
        return GH_ERROR;
    }
    return gh_http_ssl_check_listens(cf);
}
