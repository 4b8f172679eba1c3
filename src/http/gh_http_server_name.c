/*
 * gh_http_server_name.c: picking the server{} of an address by Host, and
 * the host-name table (exact names and nginx wildcards) that server_name
 * and `map { hostnames; }` share.
 *
 * Order, as nginx: exact name, longest "*.x"/".x" wildcard, longest "x.*"
 * wildcard, then regexes in order of appearance, else the address's
 * default server.  Everything is built at configuration time; a lookup
 * reads hash tables and allocates nothing (a regex match with captures
 * stores them in the request, see gh_http_regex_exec()).
 */
#include "gh_http.h"
#include "gh_http_names.h"

/* --- host-name table ------------------------------------------------- */

typedef struct {
    gh_str_t  key;      /* lowercased; data NULL: free slot */
    uint32_t  hash;
    void     *value;    /* exact / tail: the value; head: names below key */
    void     *self;     /* head: key itself (from ".x") */
} gh_http_names_slot_t;

/* open addressing, linear probing, at most half full */
typedef struct {
    gh_http_names_slot_t *slots;
    size_t                mask;
    size_t                n;
} gh_http_names_hash_t;

struct gh_http_names_s {
    gh_arena_t           *arena;
    gh_http_names_hash_t  exact;
    gh_http_names_hash_t  head;    /* keyed by "example.com" of "*.ex..." */
    gh_http_names_hash_t  tail;    /* keyed by "www.example" of "...*" */
    size_t                count;
};

#define GH_HTTP_NAMES_H0 2166136261u

static inline uint32_t
gh_http_names_mix(uint32_t h, uint8_t c)
{
    return (h ^ gh_tolower(c)) * 16777619u;
}


/* head keys hash backwards so that a lookup can hash every suffix of a
 * host in one right-to-left pass */
static uint32_t
gh_http_names_hash(const uint8_t *p, size_t len, bool backwards)
{
    uint32_t h = GH_HTTP_NAMES_H0;

    for (size_t i = 0; i < len; i++) {
        h = gh_http_names_mix(h, p[backwards ? len - 1 - i : i]);
    }
    return h;
}


static gh_http_names_slot_t *
gh_http_names_lookup(const gh_http_names_hash_t *t, uint32_t hash,
    const uint8_t *key, size_t len)
{
    if (t->n == 0) {
        return NULL;
    }
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        gh_http_names_slot_t *s = &t->slots[i];

        if (s->key.data == NULL) {
            return NULL;
        }
        if (s->hash == hash && s->key.len == len
            && (len == 0 || gh_strncasecmp(s->key.data, key, len) == 0))
        {
            return s;
        }
    }
}


static gh_int_t
gh_http_names_grow(gh_arena_t *a, gh_http_names_hash_t *t)
{
    size_t                cap = t->slots ? (t->mask + 1) * 2 : 16;
    gh_http_names_slot_t *slots;

    slots = gh_calloc(a, cap * sizeof(*slots));
    if (slots == NULL) {
        return GH_ERROR;
    }
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        gh_http_names_slot_t *s = &t->slots[i];
        size_t                j;

        if (s->key.data == NULL) {
            continue;
        }
        for (j = s->hash & (cap - 1); slots[j].key.data;
             j = (j + 1) & (cap - 1))
        {
            /* probe */
        }
        slots[j] = *s;
    }
    /* the old array stays in the conf arena: configuration memory is
     * released all at once */
    t->slots = slots;
    t->mask = cap - 1;
    return GH_OK;
}


/* find or create the slot of key; *created tells which */
static gh_http_names_slot_t *
gh_http_names_insert(gh_arena_t *a, gh_http_names_hash_t *t,
    const uint8_t *key, size_t len, bool backwards, bool *created)
{
    uint32_t              hash = gh_http_names_hash(key, len, backwards);
    gh_http_names_slot_t *s;
    uint8_t              *low;
    size_t                i;

    s = gh_http_names_lookup(t, hash, key, len);
    if (s != NULL) {
        *created = false;
        return s;
    }
    if ((t->n + 1) * 2 > (t->slots ? t->mask + 1 : 0)
        && gh_http_names_grow(a, t) != GH_OK)
    {
        return NULL;
    }
    low = gh_alloc_unaligned(a, len + 1);
    if (low == NULL) {
        return NULL;
    }
    gh_strlow(low, key, len);
    low[len] = '\0';

    for (i = hash & t->mask; t->slots[i].key.data; i = (i + 1) & t->mask) {
        /* probe */
    }
    s = &t->slots[i];
    s->key.data = low;
    s->key.len = len;
    s->hash = hash;
    t->n++;
    *created = true;
    return s;
}


gh_http_names_t *
gh_http_names_create(gh_arena_t *a)
{
    gh_http_names_t *t = gh_calloc(a, sizeof(*t));

    if (t != NULL) {
        t->arena = a;
    }
    return t;
}


size_t
gh_http_names_count(const gh_http_names_t *t)
{
    return t->count;
}


gh_int_t
gh_http_names_add(gh_http_names_t *t, const gh_str_t *name, void *value,
    bool wildcards)
{
    const uint8_t        *k = name->data;
    size_t                len = name->len, stars = 0;
    gh_http_names_slot_t *s;
    bool                  created;

    if (!wildcards) {
        s = gh_http_names_insert(t->arena, &t->exact, k, len, false,
            &created);
        if (s == NULL) {
            return GH_ERROR;
        }
        if (!created) {
            return GH_BUSY;
        }
        s->value = value;
        t->count++;
        return GH_OK;
    }

    /* the checks of nginx's ngx_hash_add_key() and server_name */
    for (size_t i = 0; i < len; i++) {
        if (k[i] == '*') {
            stars++;
        }
        if (k[i] == '\0' || (k[i] == '.' && i + 1 < len && k[i + 1] == '.')) {
            return GH_DECLINED;
        }
    }
    if (stars > 1 || (len == 1 && k[0] == '.')) {
        return GH_DECLINED;
    }

    if (len > 1 && k[0] == '.') {
        if (stars) {
            return GH_DECLINED;
        }
        s = gh_http_names_insert(t->arena, &t->head, k + 1, len - 1, true,
            &created);
        if (s == NULL) {
            return GH_ERROR;
        }
        if (s->value || s->self) {
            return GH_BUSY;
        }
        s->value = value;
        s->self = value;

    } else if (len > 2 && k[0] == '*' && k[1] == '.') {
        s = gh_http_names_insert(t->arena, &t->head, k + 2, len - 2, true,
            &created);
        if (s == NULL) {
            return GH_ERROR;
        }
        if (s->value) {
            return GH_BUSY;
        }
        s->value = value;

    } else if (len > 2 && k[len - 2] == '.' && k[len - 1] == '*') {
        s = gh_http_names_insert(t->arena, &t->tail, k, len - 2, false,
            &created);
        if (s == NULL) {
            return GH_ERROR;
        }
        if (!created) {
            return GH_BUSY;
        }
        s->value = value;

    } else if (stars) {
        return GH_DECLINED;

    } else {
        s = gh_http_names_insert(t->arena, &t->exact, k, len, false,
            &created);
        if (s == NULL) {
            return GH_ERROR;
        }
        if (!created) {
            return GH_BUSY;
        }
        s->value = value;
    }
    t->count++;
    return GH_OK;
}


void *
gh_http_names_find(const gh_http_names_t *t, const uint8_t *name, size_t len)
{
    gh_http_names_slot_t *s;
    void                 *best = NULL;
    uint32_t              h;

    if (t == NULL) {
        return NULL;
    }
    if (t->exact.n) {
        s = gh_http_names_lookup(&t->exact,
            gh_http_names_hash(name, len, false), name, len);
        if (s != NULL) {
            return s->value;
        }
    }
    if (len == 0) {
        return NULL;
    }

    /* "*.S": every suffix S that follows a dot with a label before it;
     * walking right to left, each later hit is a longer S */
    if (t->head.n) {
        h = GH_HTTP_NAMES_H0;
        for (size_t i = len; i-- > 0;) {
            if (name[i] == '.' && i > 0 && i + 1 < len) {
                s = gh_http_names_lookup(&t->head, h, name + i + 1,
                    len - i - 1);
                if (s != NULL && s->value != NULL) {
                    best = s->value;
                }
            }
            h = gh_http_names_mix(h, name[i]);
        }
        /* ".S" also matches S itself, the longest possible */
        s = gh_http_names_lookup(&t->head, h, name, len);
        if (s != NULL && s->self != NULL) {
            return s->self;
        }
        if (best != NULL) {
            return best;
        }
    }

    /* "P.*": every prefix P before a dot with a label after it; walking
     * left to right, each later hit is a longer P */
    if (t->tail.n) {
        h = GH_HTTP_NAMES_H0;
        for (size_t i = 0; i < len; i++) {
            if (name[i] == '.' && i > 0 && i + 1 < len) {
                s = gh_http_names_lookup(&t->tail, h, name, i);
                if (s != NULL) {
                    best = s->value;
                }
            }
            h = gh_http_names_mix(h, name[i]);
        }
    }
    return best;
}


/* --- server selection ------------------------------------------------ */

typedef struct {
    gh_http_regex_t          *regex;
    gh_http_core_srv_conf_t  *server;
} gh_http_sn_regex_t;

typedef struct {
    gh_http_names_t     *names;
    gh_http_sn_regex_t  *regex;
    size_t               nregex;
} gh_http_virtual_names_t;


static gh_int_t
gh_http_server_name_add(gh_conf_t *cf, gh_http_addr_conf_t *addr,
    gh_http_virtual_names_t *vn, gh_http_core_srv_conf_t *cscf,
    const gh_str_t *name)
{
    gh_conf_node_t at;
    gh_int_t       rc;

    rc = gh_http_names_add(vn->names, name, cscf, true);
    if (rc == GH_OK) {
        return GH_OK;
    }
    if (rc == GH_ERROR) {
        return GH_ERROR;
    }

    memset(&at, 0, sizeof(at));
    at.file = cscf->file;
    at.line = cscf->line;
    if (rc == GH_BUSY) {
        gh_conf_error_at(cf, GH_LOG_WARN, &at,
            "conflicting server name \"%.*s\" on %s, ignored",
            (int) name->len, (const char *) name->data, addr->addr_text);
        return GH_OK;
    }
    gh_conf_error_at(cf, GH_LOG_EMERG, &at,
        "invalid server name or wildcard \"%.*s\" on %s", (int) name->len,
        (const char *) name->data, addr->addr_text);
    return GH_ERROR;
}


gh_int_t
gh_http_server_names_init(gh_conf_t *cf, gh_http_addr_conf_t *addr)
{
    gh_http_virtual_names_t *vn;
    size_t                   nregex = 0;

    addr->names = NULL;
    vn = gh_calloc(cf->arena, sizeof(*vn));
    if (vn == NULL) {
        return GH_ERROR;
    }
    vn->names = gh_http_names_create(cf->arena);
    if (vn->names == NULL) {
        return GH_ERROR;
    }

    for (size_t i = 0; i < addr->servers.nelts; i++) {
        gh_http_core_srv_conf_t *cscf =
            *gh_array_at(&addr->servers, gh_http_core_srv_conf_t *, i);

        for (size_t j = 0; j < cscf->server_names.nelts; j++) {
            nregex += gh_array_at(&cscf->server_names,
                gh_http_server_name_t, j)->regex != NULL;
        }
    }
    if (nregex) {
        vn->regex = gh_alloc(cf->arena, nregex * sizeof(*vn->regex));
        if (vn->regex == NULL) {
            return GH_ERROR;
        }
    }

    for (size_t i = 0; i < addr->servers.nelts; i++) {
        gh_http_core_srv_conf_t *cscf =
            *gh_array_at(&addr->servers, gh_http_core_srv_conf_t *, i);

        /* nginx gives a server without server_name the name "": it then
         * gets the requests that carry no Host at all */
        if (cscf->server_names.nelts == 0) {
            gh_str_t empty = gh_string("");

            if (gh_http_server_name_add(cf, addr, vn, cscf, &empty)
                != GH_OK)
            {
                return GH_ERROR;
            }
            continue;
        }

        for (size_t j = 0; j < cscf->server_names.nelts; j++) {
            gh_http_server_name_t *sn = gh_array_at(&cscf->server_names,
                gh_http_server_name_t, j);
            gh_http_core_srv_conf_t *srv = sn->server ? sn->server : cscf;

            if (sn->regex != NULL) {
                vn->regex[vn->nregex].regex = sn->regex;
                vn->regex[vn->nregex].server = srv;
                vn->nregex++;
                continue;
            }
            if (gh_http_server_name_add(cf, addr, vn, srv, &sn->name)
                != GH_OK)
            {
                return GH_ERROR;
            }
        }
    }

    /* one server and no regex: the default server answers everything,
     * no lookup needed */
    if (vn->nregex == 0 && addr->servers.nelts <= 1) {
        return GH_OK;
    }
    addr->names = vn;
    return GH_OK;
}


gh_http_core_srv_conf_t *
gh_http_find_server(gh_http_request_t *r, gh_http_addr_conf_t *addr,
    const gh_str_t *host)
{
    const gh_http_virtual_names_t *vn = addr->names;
    gh_http_core_srv_conf_t       *cscf;

    if (vn == NULL) {
        return addr->default_server;
    }
    cscf = gh_http_names_find(vn->names, host->data, host->len);
    if (cscf != NULL) {
        return cscf;
    }
    if (host->len == 0) {
        return addr->default_server;
    }
    for (size_t i = 0; i < vn->nregex; i++) {
        gh_int_t rc = gh_http_regex_exec(r, vn->regex[i].regex, host);

        if (rc == GH_OK) {
            return vn->regex[i].server;
        }
        if (rc != GH_DECLINED) {
            break;
        }
    }
    return addr->default_server;
}


/* --- Host validation ------------------------------------------------- */

static bool
gh_http_host_port_ok(const uint8_t *p, const uint8_t *end)
{
    if (p == end) {
        return true;
    }
    if (*p++ != ':') {
        return false;
    }
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    return true;
}


gh_int_t
gh_http_validate_host(gh_str_t *host, gh_arena_t *a)
{
    const uint8_t *h = host->data;
    size_t         len = host->len, hlen;
    bool           upper = false;

    if (len == 0) {
        return GH_ERROR;
    }

    if (h[0] == '[') {
        /* IP-literal: hex digits, ':' and '.' (embedded IPv4) only */
        for (hlen = 1; hlen < len && h[hlen] != ']'; hlen++) {
            uint8_t c = h[hlen];

            if (c >= 'A' && c <= 'F') {
                upper = true;
            } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                         || c == ':' || c == '.'))
            {
                return GH_ERROR;
            }
        }
        if (hlen == len || hlen == 1) {
            return GH_ERROR;
        }
        hlen++;   /* keep the brackets, as nginx does */
        if (!gh_http_host_port_ok(h + hlen, h + len)) {
            return GH_ERROR;
        }

    } else {
        const uint8_t *colon = memchr(h, ':', len);

        hlen = colon ? (size_t) (colon - h) : len;
        for (size_t i = 0; i < hlen; i++) {
            uint8_t c = h[i];

            if (c == '.') {
                /* "..", or a leading dot, could be read as a path by
                 * whatever puts the host into a file name */
                if (i == 0 || h[i - 1] == '.') {
                    return GH_ERROR;
                }
            } else if (c <= 0x20 || c == 0x7f
                       || strchr("/\\@#?[]\"<>^`{|}", c) != NULL)
            {
                /* not in a reg-name (RFC 3986 3.2.2): '/' and '\\' could
                 * be read as a path, '@' '#' '?' make "good.example@evil"
                 * style hosts for whoever builds a URL from $host */
                return GH_ERROR;
            } else if (c >= 'A' && c <= 'Z') {
                upper = true;
            }
        }
        if (!gh_http_host_port_ok(h + hlen, h + len)) {
            return GH_ERROR;
        }
        if (hlen && h[hlen - 1] == '.') {
            hlen--;
        }
        if (hlen == 0) {
            return GH_ERROR;
        }
    }

    /* lowercase into a copy: the original bytes may still be forwarded */
    if (upper) {
        uint8_t *low = gh_alloc_unaligned(a, hlen + 1);

        if (low == NULL) {
            return GH_ERROR;
        }
        gh_strlow(low, h, hlen);
        low[hlen] = '\0';
        host->data = low;
    }
    host->len = hlen;
    return GH_OK;
}
