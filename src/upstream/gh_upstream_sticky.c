/*
 * gh_upstream_sticky.c: `sticky cookie NAME [expires=T|max] [domain=D]
 * [path=P] [httponly] [secure] [samesite=strict|lax|none]` in an
 * upstream{} block (nginx's commercial syntax).
 *
 *   request with NAME=<id of a primary peer>  -> that peer on the first
 *       try, if it is usable (not down, failed, unhealthy or at
 *       max_conns); otherwise the method chooses as for a new client
 *   response from a primary peer the client is not bound to (no cookie,
 *       an unknown one, or another peer's) -> Set-Cookie: NAME=<id>
 *
 * A peer's id is the hexadecimal MD5 of its address text ("IP:port" or
 * "unix:/path"), as nginx describes it: stable across restarts and
 * reloads and the same in every worker, without shared state.  Backup
 * servers are never bound to: a client they served is balanced afresh
 * once the primaries are back.
 */
#include "gh_upstream_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <time.h>

#define GH_STICKY_EXPIRES_MAX  ((gh_msec_t) -2)   /* "expires=max" */

typedef struct {
    gh_str_t                 name;
    gh_msec_t                expires;       /* GH_UNSET_MSEC: session */
    gh_str_t                 domain;
    gh_str_t                 path;
    gh_str_t                 samesite;
    bool                     httponly;
    bool                     secure;
} gh_upstream_sticky_t;


void
gh_upstream_sticky_id(gh_upstream_peer_t *peer)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char     md[EVP_MAX_MD_SIZE];
    unsigned int      n = 0;

    if (EVP_Digest(peer->name, strlen(peer->name), md, &n, EVP_md5(), NULL)
        != 1 || n != 16)
    {
        /* no MD5 (a FIPS build): the name itself still tells peers
         * apart, only less opaquely */
        snprintf(peer->sticky_id, sizeof(peer->sticky_id), "%.32s",
            peer->name);
        return;
    }
    for (unsigned i = 0; i < 16; i++) {
        peer->sticky_id[2 * i] = hex[md[i] >> 4];
        peer->sticky_id[2 * i + 1] = hex[md[i] & 0xf];
    }
    peer->sticky_id[32] = '\0';
}


static bool
gh_sticky_param(const gh_str_t *s, const char *name, gh_str_t *value)
{
    size_t n = strlen(name);

    if (s->len < n || memcmp(s->data, name, n) != 0) {
        return false;
    }
    value->data = s->data + n;
    value->len = s->len - n;
    return true;
}


const char *
gh_upstream_sticky(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_upstream_srv_conf_t *us = cf->handler_data;
    gh_str_t               *args = gh_conf_args(cf), v;
    gh_upstream_sticky_t   *sc;
    size_t                  i;

    if (us->sticky != NULL) {
        return "is duplicate";
    }
    if (!gh_str_eq_c(&args[1], "cookie")) {
        /* route and learn need the application's help; not offered */
        gh_conf_error(cf, "sticky \"%.*s\" is not supported, only "
            "\"cookie\"", (int) args[1].len, (const char *) args[1].data);
        return GH_CONF_ERROR;
    }
    sc = gh_calloc(cf->arena, sizeof(*sc));
    if (sc == NULL) {
        return "out of memory";
    }
    sc->name = args[2];
    sc->expires = GH_UNSET_MSEC;
    if (sc->name.len == 0 || memchr(sc->name.data, '=', sc->name.len)
        || memchr(sc->name.data, ';', sc->name.len))
    {
        goto invalid2;
    }
    for (i = 3; i < cf->node->nargs; i++) {
        if (gh_sticky_param(&args[i], "expires=", &v)) {
            if (gh_str_eq_c(&v, "max")) {
                sc->expires = GH_STICKY_EXPIRES_MAX;
                continue;
            }
            sc->expires = gh_parse_time(&v);
            if (sc->expires < 0) {
                goto invalid;
            }
        } else if (gh_sticky_param(&args[i], "domain=", &sc->domain)) {
            if (sc->domain.len == 0) {
                goto invalid;
            }
        } else if (gh_sticky_param(&args[i], "path=", &sc->path)) {
            if (sc->path.len == 0) {
                goto invalid;
            }
        } else if (gh_sticky_param(&args[i], "samesite=", &sc->samesite)) {
            if (!gh_str_caseeq_c(&sc->samesite, "strict")
                && !gh_str_caseeq_c(&sc->samesite, "lax")
                && !gh_str_caseeq_c(&sc->samesite, "none"))
            {
                goto invalid;
            }
        } else if (gh_str_eq_c(&args[i], "httponly")) {
            sc->httponly = true;
        } else if (gh_str_eq_c(&args[i], "secure")) {
            sc->secure = true;
        } else {
            goto invalid;
        }
    }
    us->sticky = sc;
    return NULL;

invalid2:
    i = 2;
invalid:
    gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) args[i].len,
        (const char *) args[i].data);
    return GH_CONF_ERROR;
}


/* NAME's value in one Cookie header ("a=1; b=2"), or false */
static bool
gh_sticky_find(const gh_str_t *header, const gh_str_t *name, gh_str_t *value)
{
    const uint8_t *p = header->data, *end = p + header->len, *e, *semi;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ';')) {
            p++;
        }
        semi = memchr(p, ';', (size_t) (end - p));
        e = semi ? semi : end;
        if ((size_t) (e - p) > name->len && p[name->len] == '='
            && memcmp(p, name->data, name->len) == 0)
        {
            value->data = (uint8_t *) p + name->len + 1;
            value->len = (size_t) (e - value->data);
            while (value->len && (value->data[value->len - 1] == ' '
                                  || value->data[value->len - 1] == '\t'))
            {
                value->len--;
            }
            return true;
        }
        p = e;
    }
    return false;
}


void
gh_upstream_sticky_request(gh_upstream_peer_state_t *ps,
    gh_http_request_t *r)
{
    gh_upstream_sticky_t *sc = ps->us->sticky;
    gh_http_table_elt_t  *e;
    gh_upstream_peer_t   *peer;
    gh_str_t              v;
    bool                  found = false;

    for (size_t i = 0; i < r->headers_in.headers.nelts && !found; i++) {
        e = gh_array_at(&r->headers_in.headers, gh_http_table_elt_t, i);
        if (!e->hash_skip && gh_str_caseeq_c(&e->name, "Cookie")) {
            found = gh_sticky_find(&e->value, &sc->name, &v);
        }
    }
    if (!found || v.len != 32) {
        return;
    }
    for (peer = ps->us->peers; peer; peer = peer->next) {
        if (memcmp(peer->sticky_id, v.data, 32) == 0) {
            ps->sticky = peer;
            return;
        }
    }
}


/* "Thu, 31 Dec 2037 23:55:55 GMT" without the locale */
static size_t
gh_sticky_date(char *buf, size_t size, int64_t sec)
{
    static const char *const wday[] = {
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
    };
    static const char *const mon[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };
    time_t    t = (time_t) sec;
    struct tm tm;
    int       n;

    gmtime_r(&t, &tm);
    n = snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d GMT",
        wday[tm.tm_wday], tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900,
        tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n > 0 ? gh_min((size_t) n, size - 1) : 0;
}


void
gh_upstream_peer_headers_out(gh_upstream_peer_state_t *ps,
    gh_http_request_t *r)
{
    gh_upstream_sticky_t *sc = ps->us->sticky;
    gh_str_t              v;
    char                  date[40];
    size_t                len;
    char                 *p;
    int64_t               age;
    int                   n;

    if (sc == NULL || ps->peer == NULL || ps->peer->backup
        || ps->peer == ps->sticky || ps->peer->sticky_id[0] == '\0')
    {
        return;
    }
    len = sc->name.len + 1 + 32 + sc->domain.len + sc->path.len
        + sc->samesite.len + 160;
    p = gh_alloc_unaligned(r->arena, len);
    if (p == NULL) {
        return;
    }
    n = snprintf(p, len, "%.*s=%s", (int) sc->name.len,
        (const char *) sc->name.data, ps->peer->sticky_id);
    if (sc->expires != GH_UNSET_MSEC) {
        /* "max" is nginx's far future; both forms for old and new
         * clients */
        age = sc->expires == GH_STICKY_EXPIRES_MAX ? 2145916555
            - gh_current_sec : sc->expires / 1000;
        gh_sticky_date(date, sizeof(date), gh_current_sec + age);
        n += snprintf(p + n, len - (size_t) n, "; expires=%s; max-age=%lld",
            date, (long long) age);
    }
    if (sc->domain.len) {
        n += snprintf(p + n, len - (size_t) n, "; domain=%.*s",
            (int) sc->domain.len, (const char *) sc->domain.data);
    }
    if (sc->path.len) {
        n += snprintf(p + n, len - (size_t) n, "; path=%.*s",
            (int) sc->path.len, (const char *) sc->path.data);
    }
    if (sc->samesite.len) {
        n += snprintf(p + n, len - (size_t) n, "; samesite=%.*s",
            (int) sc->samesite.len, (const char *) sc->samesite.data);
    }
    if (sc->secure) {
        n += snprintf(p + n, len - (size_t) n, "; secure");
    }
    if (sc->httponly) {
        n += snprintf(p + n, len - (size_t) n, "; httponly");
    }
    v.data = (uint8_t *) p;
    v.len = gh_min((size_t) n, len - 1);
    gh_http_add_header_out(r, "Set-Cookie", &v);
}
