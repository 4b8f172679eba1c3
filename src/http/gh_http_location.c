/*
 * gh_http_location.c: choosing the location{} of a request, by nginx's
 * rules.
 *
 * Per level (a server, or a location with nested ones):
 *   1. an exact ("=") location equal to the URI wins at once;
 *   2. else the longest prefix location (plain or "^~"); if it has nested
 *      locations they are searched the same way, and a final answer
 *      there (exact or regex) is kept;
 *   3. unless that prefix was "^~", this level's regexes ("~", "~*") are
 *      tried in order of appearance; the first match wins and its own
 *      nested locations are searched in turn;
 *   4. else the longest prefix stands.
 * Named ("@x") locations are only reached by gh_http_find_named_location.
 *
 * Note on "^~": as in nginx, it stops the regexes of the level holding
 * the "^~" location only.  A "^~" nested inside a plain prefix still lets
 * the regexes of the outer level be tried.
 *
 * Each level's tree is built once: exact and prefix names in sorted
 * arrays, regexes in order.  The longest prefix is found with a few binary
 * searches (see gh_http_loc_longest), so the lookup allocates nothing.
 */
#include "gh_http.h"

struct gh_http_location_tree_s {
    gh_http_core_loc_conf_t **exact;    /* sorted by name */
    size_t                    nexact;
    gh_http_core_loc_conf_t **prefix;   /* plain and ^~, sorted by name */
    size_t                    nprefix;
    gh_http_core_loc_conf_t **regex;    /* in order of appearance */
    size_t                    nregex;
    gh_http_core_loc_conf_t **named;    /* sorted by name without '@' */
    size_t                    nnamed;
};

/* lexicographic order of bytes; a proper prefix sorts first.  `tail` is
 * an optional byte appended to b (for the uri + "/" lookup). */
static int
gh_http_loc_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    int tail)
{
    size_t n = gh_min(alen, blen);
    int    rc = n ? memcmp(a, b, n) : 0;

    if (rc != 0) {
        return rc;
    }
    if (tail >= 0) {
        if (alen <= blen) {
            return -1;
        }
        if (a[blen] != (uint8_t) tail) {
            return a[blen] < (uint8_t) tail ? -1 : 1;
        }
        return alen == blen + 1 ? 0 : 1;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}


static gh_str_t
gh_http_loc_named_key(const gh_str_t *name)
{
    gh_str_t k = *name;

    if (k.len && k.data[0] == '@') {
        k.data++;
        k.len--;
    }
    return k;
}


static gh_http_core_loc_conf_t *
gh_http_loc_bsearch(gh_http_core_loc_conf_t **locs, size_t n,
    const uint8_t *key, size_t len, int tail, bool named)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t   mid = lo + (hi - lo) / 2;
        gh_str_t name = named ? gh_http_loc_named_key(&locs[mid]->name)
                              : locs[mid]->name;
        int      rc = gh_http_loc_cmp(name.data, name.len, key, len, tail);

        if (rc == 0) {
            return locs[mid];
        }
        if (rc < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}


/*
 * Longest name in the sorted array that is a prefix of key.  The largest
 * name p <= key is looked up; if p is not a prefix of key, every prefix
 * of key that sorts before p is also a prefix of lcp(p, key), so the
 * search goes on with the key cut to that common part, which is strictly
 * shorter.  A handful of binary searches in practice.
 */
static gh_http_core_loc_conf_t *
gh_http_loc_longest(gh_http_core_loc_conf_t **locs, size_t n,
    const uint8_t *key, size_t len)
{
    while (n) {
        size_t                   lo = 0, hi = n, l;
        gh_http_core_loc_conf_t *p;

        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (gh_http_loc_cmp(locs[mid]->name.data, locs[mid]->name.len,
                    key, len, -1) <= 0)
            {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo == 0) {
            return NULL;
        }
        p = locs[lo - 1];
        if (p->name.len <= len && memcmp(p->name.data, key, p->name.len) == 0) {
            return p;
        }
        for (l = 0; l < p->name.len && l < len && p->name.data[l] == key[l];
             l++)
        {
            /* common prefix */
        }
        len = l;
        n = lo - 1;   /* p and everything after it are longer than key */
    }
    return NULL;
}


/* --- lookup ---------------------------------------------------------- */

static gh_int_t gh_http_find_in(gh_http_request_t *r,
    const gh_http_location_tree_t *tree);


/* a location named uri + "/" whose content handler asked for a redirect
 * (proxy_pass in "location /x/"): "/x" gets 301 to "/x/" */
static gh_http_core_loc_conf_t *
gh_http_loc_auto_redirect(gh_http_request_t *r,
    const gh_http_location_tree_t *tree)
{
    gh_http_core_loc_conf_t *e, *p;

    e = gh_http_loc_bsearch(tree->exact, tree->nexact, r->uri.data,
        r->uri.len, '/', false);
    p = gh_http_loc_bsearch(tree->prefix, tree->nprefix, r->uri.data,
        r->uri.len, '/', false);
    if ((e && e->auto_redirect) || (p && p->auto_redirect)) {
        return e ? e : p;
    }
    return NULL;
}


/* GH_OK: final answer (exact, regex or found below); GH_DONE: auto
 * redirect; GH_AGAIN: a prefix matched here or below (r->loc_conf set);
 * GH_DECLINED: nothing here; GH_ERROR */
static gh_int_t
gh_http_find_in(gh_http_request_t *r, const gh_http_location_tree_t *tree)
{
    gh_http_core_loc_conf_t *clcf;
    gh_int_t                 rc = GH_DECLINED;
    bool                     noregex = false;

    if (tree == NULL) {
        return GH_DECLINED;
    }

    clcf = gh_http_loc_bsearch(tree->exact, tree->nexact, r->uri.data,
        r->uri.len, -1, false);
    if (clcf != NULL) {
        r->loc_conf = clcf->loc_conf;
        return GH_OK;
    }

    clcf = gh_http_loc_longest(tree->prefix, tree->nprefix, r->uri.data,
        r->uri.len);
    if (clcf == NULL || clcf->name.len < r->uri.len) {
        gh_http_core_loc_conf_t *redir = gh_http_loc_auto_redirect(r, tree);

        if (redir != NULL) {
            r->loc_conf = redir->loc_conf;
            return GH_DONE;
        }
    }

    if (clcf != NULL) {
        r->loc_conf = clcf->loc_conf;
        noregex = clcf->type == GH_HTTP_LOC_NOREGEX;
        rc = gh_http_find_in(r, clcf->tree);
        if (rc == GH_OK || rc == GH_DONE || rc == GH_ERROR) {
            return rc;
        }
        rc = GH_AGAIN;
    }

    if (noregex) {
        return rc;
    }

    for (size_t i = 0; i < tree->nregex; i++) {
        gh_http_core_loc_conf_t *re = tree->regex[i];
        gh_int_t                 n;

        n = gh_http_regex_exec(r, re->regex, &r->uri);
        if (n == GH_DECLINED) {
            continue;
        }
        if (n != GH_OK) {
            return GH_ERROR;
        }
        r->loc_conf = re->loc_conf;
        n = gh_http_find_in(r, re->tree);
        return n == GH_ERROR ? GH_ERROR : n == GH_DONE ? GH_DONE : GH_OK;
    }
    return rc;
}


gh_int_t
gh_http_find_location(gh_http_request_t *r)
{
    gh_http_core_srv_conf_t *cscf = r->srv_conf[gh_http_core_module.index];
    gh_http_core_loc_conf_t *srv = cscf->ctx->loc_conf[
        gh_http_core_module.index];
    gh_int_t                 rc;

    r->loc_conf = cscf->ctx->loc_conf;
    rc = gh_http_find_in(r, srv->tree);
    if (rc == GH_ERROR || rc == GH_DONE) {
        return rc;
    }
    return r->loc_conf != cscf->ctx->loc_conf ? GH_OK : GH_DECLINED;
}


gh_http_core_loc_conf_t *
gh_http_find_named_location(gh_http_core_srv_conf_t *cscf,
    const gh_str_t *name)
{
    gh_http_core_loc_conf_t *srv = cscf->ctx->loc_conf[
        gh_http_core_module.index];
    gh_str_t                 key = gh_http_loc_named_key(name);

    if (srv->tree != NULL) {
        return gh_http_loc_bsearch(srv->tree->named, srv->tree->nnamed,
            key.data, key.len, -1, true);
    }

    /* before init_locations ran (config time) */
    for (size_t i = 0; srv->locations && i < srv->locations->nelts; i++) {
        gh_http_core_loc_conf_t *clcf =
            *gh_array_at(srv->locations, gh_http_core_loc_conf_t *, i);
        gh_str_t k = gh_http_loc_named_key(&clcf->name);

        if (clcf->type == GH_HTTP_LOC_NAMED && gh_str_eq(&k, &key)) {
            return clcf;
        }
    }
    return NULL;
}


/* --- building the trees ---------------------------------------------- */

typedef struct {
    gh_http_core_loc_conf_t *clcf;
    size_t                   order;   /* position in the config */
    bool                     named;
} gh_http_loc_sort_t;


static int
gh_http_loc_sort_cmp(const void *one, const void *two)
{
    const gh_http_loc_sort_t *a = one, *b = two;
    gh_str_t                  an = a->clcf->name, bn = b->clcf->name;
    int                       rc;

    if (a->named) {
        an = gh_http_loc_named_key(&an);
        bn = gh_http_loc_named_key(&bn);
    }
    rc = gh_http_loc_cmp(an.data, an.len, bn.data, bn.len, -1);
    if (rc != 0) {
        return rc;
    }
    /* equal names keep config order, so the later one is reported */
    return a->order < b->order ? -1 : a->order > b->order;
}


/* sort one kind of location; GH_CONF_ERROR after logging a duplicate */
static const char *
gh_http_loc_sort(gh_conf_t *cf, gh_http_core_loc_conf_t ***out,
    size_t *nout, gh_array_t *locations, bool (*pick)(unsigned type),
    bool named)
{
    gh_http_loc_sort_t *tmp;
    size_t              n = 0, total = locations->nelts;

    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < total; i++) {
        n += pick((*gh_array_at(locations, gh_http_core_loc_conf_t *, i))
            ->type);
    }
    if (n == 0) {
        return NULL;
    }

    tmp = gh_alloc(cf->arena, n * sizeof(*tmp));
    *out = gh_alloc(cf->arena, n * sizeof(**out));
    if (tmp == NULL || *out == NULL) {
        return "out of memory";
    }
    n = 0;
    for (size_t i = 0; i < total; i++) {
        gh_http_core_loc_conf_t *clcf =
            *gh_array_at(locations, gh_http_core_loc_conf_t *, i);

        if (pick(clcf->type)) {
            tmp[n].clcf = clcf;
            tmp[n].order = i;
            tmp[n].named = named;
            n++;
        }
    }
    qsort(tmp, n, sizeof(*tmp), gh_http_loc_sort_cmp);

    for (size_t i = 0; i < n; i++) {
        (*out)[i] = tmp[i].clcf;
        if (i == 0) {
            continue;
        }
        gh_str_t a = tmp[i - 1].clcf->name, b = tmp[i].clcf->name;

        if (named) {
            a = gh_http_loc_named_key(&a);
            b = gh_http_loc_named_key(&b);
        }
        if (gh_str_eq(&a, &b)) {
            gh_conf_node_t at;

            memset(&at, 0, sizeof(at));
            at.file = tmp[i].clcf->file;
            at.line = tmp[i].clcf->line;
            gh_conf_error_at(cf, GH_LOG_EMERG, &at,
                "duplicate location \"%.*s\"", (int) tmp[i].clcf->name.len,
                (const char *) tmp[i].clcf->name.data);
            return GH_CONF_ERROR;
        }
    }
    *nout = n;
    return NULL;
}


static bool
gh_http_loc_is_exact(unsigned type)
{
    return type == GH_HTTP_LOC_EXACT;
}


static bool
gh_http_loc_is_prefix(unsigned type)
{
    return type == GH_HTTP_LOC_PREFIX || type == GH_HTTP_LOC_NOREGEX;
}


static bool
gh_http_loc_is_named(unsigned type)
{
    return type == GH_HTTP_LOC_NAMED;
}


static const char *
gh_http_init_level(gh_conf_t *cf, gh_http_core_loc_conf_t *pclcf)
{
    gh_http_location_tree_t *tree;
    gh_array_t              *locs = pclcf->locations;
    const char              *rv;

    pclcf->tree = NULL;
    if (locs == NULL || locs->nelts == 0) {
        return NULL;
    }

    tree = gh_calloc(cf->arena, sizeof(*tree));
    if (tree == NULL) {
        return "out of memory";
    }
    rv = gh_http_loc_sort(cf, &tree->exact, &tree->nexact, locs,
        gh_http_loc_is_exact, false);
    if (rv == NULL) {
        rv = gh_http_loc_sort(cf, &tree->prefix, &tree->nprefix, locs,
            gh_http_loc_is_prefix, false);
    }
    if (rv == NULL) {
        rv = gh_http_loc_sort(cf, &tree->named, &tree->nnamed, locs,
            gh_http_loc_is_named, true);
    }
    if (rv != NULL) {
        return rv;
    }

    /* regexes stay in config order; two identical ones are allowed, as in
     * nginx (the first one simply always wins) */
    tree->regex = gh_alloc(cf->arena, locs->nelts * sizeof(void *));
    if (tree->regex == NULL) {
        return "out of memory";
    }
    for (size_t i = 0; i < locs->nelts; i++) {
        gh_http_core_loc_conf_t *clcf =
            *gh_array_at(locs, gh_http_core_loc_conf_t *, i);

        if (clcf->regex != NULL && (clcf->type == GH_HTTP_LOC_REGEX
                || clcf->type == GH_HTTP_LOC_REGEX_CASELESS))
        {
            tree->regex[tree->nregex++] = clcf;
        }
        rv = gh_http_init_level(cf, clcf);
        if (rv != NULL) {
            return rv;
        }
    }

    pclcf->tree = tree;
    return NULL;
}


const char *
gh_http_init_locations(gh_conf_t *cf, gh_http_core_srv_conf_t *cscf,
    gh_http_core_loc_conf_t *pclcf)
{
    if (pclcf == NULL) {
        pclcf = cscf->ctx->loc_conf[gh_http_core_module.index];
    }
    return gh_http_init_level(cf, pclcf);
}
