/*
 * gh_http_variables.c: the variable registry, the core variables and
 * complex values ("$scheme://$host$request_uri").
 *
 * Three lists live in the core main conf, as in nginx:
 *   variables         declared names (gh_http_variable_t): core ones, map
 *                     destinations, `set` targets, named regex groups
 *   prefix_variables  declared prefixes: http_, arg_, cookie_, ...
 *   pending_vars      indexed variables: every name some directive refers
 *                     to gets an index at once, because a variable may be
 *                     declared after its first use (a map below the
 *                     location that reads it).  init_vars() binds each to
 *                     a declared variable or a prefix at the end of http{}.
 *
 * At run time a request reads variables by index; r->variables caches the
 * values (except NOCACHEABLE ones, which change during the request:
 * $uri, $status, $request_time...).  Values are slices: into the request,
 * its buffers or r->arena, never copied unless a getter must build them.
 */
#include "gh_http.h"
#include <stdio.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/random.h>
#include <arpa/inet.h>
#include <sys/un.h>

/* an indexed variable (element of cmcf->pending_vars) */
typedef struct {
    gh_http_variable_t  v;          /* name lowercased; get/data bound by
                                       init_vars */
    gh_str_t           *fullname;   /* stable copy for prefix getters */
    const char         *file;       /* first use, for "unknown variable" */
    unsigned            line;
    bool                resolved;
} gh_http_var_ref_t;

#define GH_HTTP_VAR_NOINDEX ((gh_uint_t) -1)

static gh_int_t gh_http_var_not_found(gh_http_request_t *r, gh_str_t *v,
    uintptr_t data);
static gh_int_t gh_http_var_capture(gh_http_request_t *r, gh_str_t *v,
    uintptr_t data);


static gh_http_core_main_conf_t *
gh_http_vars_cmcf(gh_conf_t *cf)
{
    gh_http_core_main_conf_t *cmcf;

    cmcf = gh_http_conf_get_module_main_conf(cf, gh_http_core_module);
    if (cmcf == NULL) {
        return NULL;
    }
    /* the core's create_main_conf makes the declared lists; the indexed
     * list has a private element type, so it is made here */
    if ((cmcf->variables.elts == NULL
         && gh_array_init(&cmcf->variables, cf->arena, 64,
                sizeof(gh_http_variable_t)) != GH_OK)
        || (cmcf->prefix_variables.elts == NULL
            && gh_array_init(&cmcf->prefix_variables, cf->arena, 8,
                   sizeof(gh_http_variable_t)) != GH_OK)
        || (cmcf->pending_vars.elts == NULL
            && gh_array_init(&cmcf->pending_vars, cf->arena, 64,
                   sizeof(gh_http_var_ref_t)) != GH_OK))
    {
        return NULL;
    }
    return cmcf;
}


static bool
gh_http_var_name_eq(const gh_str_t *lower, const uint8_t *name, size_t len)
{
    if (lower->len != len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (lower->data[i] != gh_tolower(name[i])) {
            return false;
        }
    }
    return true;
}


static bool
gh_http_var_is_digits(const gh_str_t *name)
{
    if (name->len == 0 || name->len > 2) {
        return false;
    }
    for (size_t i = 0; i < name->len; i++) {
        if (name->data[i] < '0' || name->data[i] > '9') {
            return false;
        }
    }
    return true;
}


/* --- registry (config time) ----------------------------------------- */

gh_http_variable_t *
gh_http_add_variable(gh_conf_t *cf, const gh_str_t *name, unsigned flags)
{
    gh_http_core_main_conf_t *cmcf;
    gh_array_t               *list;
    gh_http_variable_t       *v;
    uint8_t                  *low;

    cmcf = gh_http_vars_cmcf(cf);
    if (cmcf == NULL || name->len == 0) {
        return NULL;
    }
    list = (flags & GH_HTTP_VAR_PREFIX) ? &cmcf->prefix_variables
                                        : &cmcf->variables;

    for (size_t i = 0; i < list->nelts; i++) {
        v = gh_array_at(list, gh_http_variable_t, i);
        if (!gh_http_var_name_eq(&v->name, name->data, name->len)) {
            continue;
        }
        /* nginx: a second declaration is fine only if the first one said
         * it may change (set, map, named captures) */
        if (!(v->flags & GH_HTTP_VAR_CHANGEABLE)) {
            return NULL;
        }
        v->flags |= flags & GH_HTTP_VAR_NOCACHEABLE;
        return v;
    }

    low = gh_alloc_unaligned(cf->arena, name->len + 1);
    v = gh_array_push(list);
    if (low == NULL || v == NULL) {
        return NULL;
    }
    gh_strlow(low, name->data, name->len);
    low[name->len] = '\0';
    memset(v, 0, sizeof(*v));
    v->name.data = low;
    v->name.len = name->len;
    v->flags = flags;
    v->index = GH_HTTP_VAR_NOINDEX;
    return v;
}


gh_int_t
gh_http_get_variable_index(gh_conf_t *cf, const gh_str_t *name)
{
    gh_http_core_main_conf_t *cmcf;
    gh_http_var_ref_t        *ref;
    gh_str_t                 *full;
    uint8_t                  *low;

    cmcf = gh_http_vars_cmcf(cf);
    if (cmcf == NULL || name->len == 0) {
        return GH_ERROR;
    }

    for (size_t i = 0; i < cmcf->pending_vars.nelts; i++) {
        ref = gh_array_at(&cmcf->pending_vars, gh_http_var_ref_t, i);
        if (gh_http_var_name_eq(&ref->v.name, name->data, name->len)) {
            return (gh_int_t) i;
        }
    }

    low = gh_alloc_unaligned(cf->arena, name->len + 1);
    full = gh_alloc(cf->arena, sizeof(gh_str_t));
    ref = gh_array_push(&cmcf->pending_vars);
    if (low == NULL || full == NULL || ref == NULL) {
        return GH_ERROR;
    }
    gh_strlow(low, name->data, name->len);
    low[name->len] = '\0';
    memset(ref, 0, sizeof(*ref));
    ref->v.name.data = low;
    ref->v.name.len = name->len;
    ref->v.index = cmcf->pending_vars.nelts - 1;
    *full = ref->v.name;
    ref->fullname = full;
    if (cf->node != NULL) {
        ref->file = cf->node->file;
        ref->line = cf->node->line;
    }
    return (gh_int_t) ref->v.index;
}


static bool
gh_http_var_bind(gh_http_core_main_conf_t *cmcf, gh_http_var_ref_t *ref,
    gh_uint_t index)
{
    gh_http_variable_t *v;

    for (size_t i = 0; i < cmcf->variables.nelts; i++) {
        v = gh_array_at(&cmcf->variables, gh_http_variable_t, i);
        if (!gh_str_eq(&v->name, &ref->v.name)) {
            continue;
        }
        /* named captures have no getter: only a match sets them */
        ref->v.get = v->get ? v->get : gh_http_var_not_found;
        ref->v.data = v->data;
        ref->v.flags = v->flags;
        v->index = index;
        return true;
    }

    if (gh_http_var_is_digits(&ref->v.name)) {
        ref->v.get = gh_http_var_capture;
        ref->v.data = (uintptr_t) gh_atoi(ref->v.name.data, ref->v.name.len);
        ref->v.flags = GH_HTTP_VAR_NOCACHEABLE;
        return true;
    }

    /* first declared prefix wins, as nginx walks its list in order */
    for (size_t i = 0; i < cmcf->prefix_variables.nelts; i++) {
        v = gh_array_at(&cmcf->prefix_variables, gh_http_variable_t, i);
        if (ref->v.name.len >= v->name.len
            && memcmp(ref->v.name.data, v->name.data, v->name.len) == 0)
        {
            ref->v.get = v->get ? v->get : gh_http_var_not_found;
            ref->v.data = (uintptr_t) ref->fullname;
            ref->v.flags = v->flags & ~(unsigned) GH_HTTP_VAR_PREFIX;
            return true;
        }
    }
    return false;
}


gh_int_t
gh_http_variables_init_vars(gh_conf_t *cf)
{
    gh_http_core_main_conf_t *cmcf;
    gh_http_var_ref_t        *ref;
    gh_conf_node_t            at;
    gh_int_t                  rc = GH_OK;

    cmcf = gh_http_vars_cmcf(cf);
    if (cmcf == NULL) {
        return GH_ERROR;
    }

    /* every unknown name is reported, not only the first: someone moving
     * a config over wants the whole list at once */
    for (size_t i = 0; i < cmcf->pending_vars.nelts; i++) {
        ref = gh_array_at(&cmcf->pending_vars, gh_http_var_ref_t, i);
        if (ref->resolved) {
            continue;
        }
        if (gh_http_var_bind(cmcf, ref, i)) {
            ref->resolved = true;
            continue;
        }
        memset(&at, 0, sizeof(at));
        at.file = ref->file;
        at.line = ref->line;
        gh_conf_error_at(cf, GH_LOG_EMERG, &at, "unknown \"%.*s\" variable",
            (int) ref->v.name.len, (const char *) ref->v.name.data);
        rc = GH_ERROR;
    }
    return rc;
}


/* --- run time ------------------------------------------------------- */

static gh_http_core_main_conf_t *
gh_http_vars_rcmcf(gh_http_request_t *r)
{
    return r->main_conf ? r->main_conf[gh_http_core_module.index] : NULL;
}


gh_int_t
gh_http_variables_request_init(gh_http_request_t *r)
{
    gh_http_core_main_conf_t *cmcf = gh_http_vars_rcmcf(r);
    size_t                    n;

    if (cmcf == NULL) {
        return GH_ERROR;
    }
    n = gh_max(cmcf->pending_vars.nelts, (size_t) 1);
    if (r->variables != NULL) {
        memset(r->variables, 0, n * sizeof(gh_http_var_value_t));
        return GH_OK;
    }
    r->variables = gh_calloc(r->arena, n * sizeof(gh_http_var_value_t));
    return r->variables ? GH_OK : GH_ERROR;
}


gh_http_var_value_t *
gh_http_get_indexed_variable(gh_http_request_t *r, gh_uint_t index)
{
    gh_http_core_main_conf_t *cmcf = gh_http_vars_rcmcf(r);
    gh_http_var_ref_t        *ref;
    gh_http_var_value_t      *vv;
    gh_str_t                  val = gh_null_string;
    gh_int_t                  rc;

    if (cmcf == NULL || index >= cmcf->pending_vars.nelts) {
        return NULL;
    }
    if (r->variables == NULL && gh_http_variables_request_init(r) != GH_OK) {
        return NULL;
    }
    ref = gh_array_at(&cmcf->pending_vars, gh_http_var_ref_t, index);
    vv = &r->variables[index];

    if (!(ref->v.flags & GH_HTTP_VAR_NOCACHEABLE)
        && (vv->valid || vv->not_found))
    {
        return vv;
    }

    rc = ref->v.get ? ref->v.get(r, &val, ref->v.data) : GH_DECLINED;
    if (rc == GH_OK) {
        vv->value = val;
        vv->valid = 1;
        vv->not_found = 0;
    } else if (rc == GH_DECLINED) {
        vv->value.data = (uint8_t *) "";
        vv->value.len = 0;
        vv->valid = 0;
        vv->not_found = 1;
    } else {
        return NULL;
    }
    return vv;
}


gh_int_t
gh_http_get_variable(gh_http_request_t *r, const gh_str_t *name_in,
    gh_str_t *v)
{
    gh_http_core_main_conf_t *cmcf = gh_http_vars_rcmcf(r);
    gh_http_variable_t       *var;
    gh_http_var_value_t      *vv;
    gh_str_t                  copy = *name_in;   /* name and v may alias */
    const gh_str_t           *name = &copy;

    v->len = 0;
    v->data = (uint8_t *) "";
    if (cmcf == NULL) {
        return GH_DECLINED;
    }

    for (size_t i = 0; i < cmcf->variables.nelts; i++) {
        var = gh_array_at(&cmcf->variables, gh_http_variable_t, i);
        if (!gh_http_var_name_eq(&var->name, name->data, name->len)) {
            continue;
        }
        if (var->index != GH_HTTP_VAR_NOINDEX) {
            vv = gh_http_get_indexed_variable(r, var->index);
            if (vv == NULL) {
                return GH_ERROR;
            }
            if (vv->not_found) {
                return GH_DECLINED;
            }
            *v = vv->value;
            return GH_OK;
        }
        return var->get ? var->get(r, v, var->data) : GH_DECLINED;
    }

    if (gh_http_var_is_digits(name)) {
        return gh_http_capture_value(r,
            (gh_uint_t) gh_atoi(name->data, name->len), v);
    }

    for (size_t i = 0; i < cmcf->prefix_variables.nelts; i++) {
        var = gh_array_at(&cmcf->prefix_variables, gh_http_variable_t, i);
        if (name->len >= var->name.len
            && gh_strncasecmp(name->data, var->name.data, var->name.len) == 0)
        {
            return var->get ? var->get(r, v, (uintptr_t) name)
                            : GH_DECLINED;
        }
    }
    return GH_DECLINED;
}


gh_int_t
gh_http_capture_value(gh_http_request_t *r, gh_uint_t n, gh_str_t *v)
{
    if (r->captures == NULL || n >= r->ncaptures
        || r->captures[2 * n] < 0)
    {
        return GH_DECLINED;
    }
    v->data = (uint8_t *) r->captures_data + r->captures[2 * n];
    v->len = (size_t) (r->captures[2 * n + 1] - r->captures[2 * n]);
    return GH_OK;
}


/* --- complex values ------------------------------------------------- */

static bool
gh_http_var_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '_';
}


static gh_http_cv_part_t *
gh_http_cv_push(gh_http_cv_part_t *parts, gh_uint_t *n, unsigned type)
{
    gh_http_cv_part_t *p = &parts[(*n)++];

    memset(p, 0, sizeof(*p));
    p->type = type;
    return p;
}


/*
 * Syntax as nginx's script compiler: "$1".."$9" are captures (one digit:
 * "$10" is $1 then "0"); "$name" takes [A-Za-z0-9_]; "${name}" may be
 * followed by anything.  A '$' with no name after it is an error
 * ("invalid variable name"), not a literal.
 */
const char *
gh_http_compile_complex_value(gh_conf_t *cf, const gh_str_t *value,
    gh_http_complex_value_t *cv)
{
    gh_http_cv_part_t *parts, *p;
    gh_uint_t          n = 0, dollars = 0;
    const uint8_t     *s = value->data, *end = value->data + value->len;
    const uint8_t     *lit;

    memset(cv, 0, sizeof(*cv));
    cv->literal = *value;
    cv->lit_len = value->len;

    for (size_t i = 0; i < value->len; i++) {
        dollars += value->data[i] == '$';
    }
    if (dollars == 0) {
        return NULL;
    }

    /* at most a literal before each '$', the '$' part, a literal tail */
    parts = gh_alloc(cf->arena, (2 * dollars + 1) * sizeof(*parts));
    if (parts == NULL) {
        return "out of memory";
    }
    cv->lit_len = 0;

    while (s < end) {
        lit = s;
        while (s < end && *s != '$') {
            s++;
        }
        if (s > lit) {
            p = gh_http_cv_push(parts, &n, GH_HTTP_CV_LITERAL);
            p->literal.data = (uint8_t *) lit;
            p->literal.len = (size_t) (s - lit);
            cv->lit_len += p->literal.len;
        }
        if (s == end) {
            break;
        }

        s++;   /* '$' */
        if (s < end && *s >= '1' && *s <= '9') {
            p = gh_http_cv_push(parts, &n, GH_HTTP_CV_CAPTURE);
            p->index = (gh_uint_t) (*s - '0');
            s++;
            continue;
        }

        bool     bracket = s < end && *s == '{';
        gh_str_t name;

        if (bracket) {
            s++;
        }
        name.data = (uint8_t *) s;
        while (s < end && gh_http_var_char(*s)) {
            s++;
        }
        name.len = (size_t) (s - name.data);

        if (bracket) {
            if (s == end || *s != '}') {
                if (s == end && name.len) {
                    gh_conf_error(cf, "the closing bracket in \"%.*s\" "
                        "variable is missing", (int) name.len,
                        (const char *) name.data);
                } else {
                    gh_conf_error(cf, "invalid variable name");
                }
                return GH_CONF_ERROR;
            }
            s++;
        }
        if (name.len == 0) {
            gh_conf_error(cf, "invalid variable name");
            return GH_CONF_ERROR;
        }

        gh_int_t index = gh_http_get_variable_index(cf, &name);
        if (index == GH_ERROR) {
            return "out of memory";
        }
        p = gh_http_cv_push(parts, &n, GH_HTTP_CV_VAR);
        p->index = (gh_uint_t) index;
    }

    cv->parts = parts;
    cv->nparts = n;
    return NULL;
}


gh_int_t
gh_http_complex_value_escaped(gh_http_request_t *r,
    const gh_http_complex_value_t *cv, gh_str_t *out,
    gh_http_escape_pt escape)
{
    const gh_http_cv_part_t *parts = cv->parts;
    gh_str_t                 stack_vals[16], *vals = stack_vals;
    size_t                   len = 0;
    uint8_t                 *p;

    if (parts == NULL) {
        *out = cv->literal;
        return GH_OK;
    }

    /* values are fetched once: a NOCACHEABLE one ($request_time) could
     * change length between a sizing pass and a copying pass */
    if (cv->nparts > gh_nelems(stack_vals)) {
        vals = gh_alloc(r->arena, cv->nparts * sizeof(gh_str_t));
        if (vals == NULL) {
            return GH_ERROR;
        }
    }

    for (gh_uint_t i = 0; i < cv->nparts; i++) {
        const gh_http_cv_part_t *part = &parts[i];
        gh_http_var_value_t     *vv;

        switch (part->type) {
        case GH_HTTP_CV_LITERAL:
            len += part->literal.len;
            continue;
        case GH_HTTP_CV_VAR:
            vv = gh_http_get_indexed_variable(r, part->index);
            if (vv == NULL) {
                return GH_ERROR;
            }
            vals[i] = vv->not_found ? (gh_str_t) gh_null_string : vv->value;
            break;
        default:
            if (gh_http_capture_value(r, part->index, &vals[i]) != GH_OK) {
                vals[i].len = 0;
                vals[i].data = NULL;
            }
            break;
        }
        len += escape ? escape(NULL, vals[i].data, vals[i].len)
                      : vals[i].len;
    }

    p = gh_alloc_unaligned(r->arena, len + 1);
    if (p == NULL) {
        return GH_ERROR;
    }
    out->data = p;
    out->len = len;

    for (gh_uint_t i = 0; i < cv->nparts; i++) {
        const gh_http_cv_part_t *part = &parts[i];

        if (part->type == GH_HTTP_CV_LITERAL) {
            memcpy(p, part->literal.data, part->literal.len);
            p += part->literal.len;
        } else if (escape) {
            p += escape(p, vals[i].data, vals[i].len);
        } else if (vals[i].len) {
            memcpy(p, vals[i].data, vals[i].len);
            p += vals[i].len;
        }
    }
    *p = '\0';
    return GH_OK;
}


gh_int_t
gh_http_complex_value(gh_http_request_t *r,
    const gh_http_complex_value_t *cv, gh_str_t *out)
{
    return gh_http_complex_value_escaped(r, cv, out, NULL);
}


/* --- getters: helpers ----------------------------------------------- */

static gh_int_t
gh_http_var_not_found(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    return GH_DECLINED;
}


static gh_int_t
gh_http_var_capture(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    return gh_http_capture_value(r, (gh_uint_t) data, v);
}


/* a gh_str_t field of the request at offset `data`; no data: not found */
static gh_int_t
gh_http_var_request_str(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const gh_str_t *s = (const gh_str_t *) ((const char *) r + data);

    if (s->data == NULL) {
        return GH_DECLINED;
    }
    *v = *s;
    return GH_OK;
}


static gh_int_t
gh_http_var_printf(gh_http_request_t *r, gh_str_t *v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static gh_int_t
gh_http_var_printf(gh_http_request_t *r, gh_str_t *v, const char *fmt, ...)
{
    char    buf[64];
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return GH_ERROR;
    }
    v->len = gh_min((size_t) n, sizeof(buf) - 1);
    v->data = gh_alloc_unaligned(r->arena, v->len + 1);
    if (v->data == NULL) {
        return GH_ERROR;
    }
    memcpy(v->data, buf, v->len + 1);
    return GH_OK;
}


static gh_int_t
gh_http_var_const(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const char *s = (const char *) data;

    v->data = (uint8_t *) s;
    v->len = strlen(s);
    return GH_OK;
}


static gh_int_t
gh_http_var_copy(gh_http_request_t *r, gh_str_t *v, const gh_str_t *s)
{
    v->data = gh_alloc_unaligned(r->arena, s->len + 1);
    if (v->data == NULL) {
        return GH_ERROR;
    }
    memcpy(v->data, s->data, s->len);
    v->data[s->len] = '\0';
    v->len = s->len;
    return GH_OK;
}


/* header name against a variable suffix: case-insensitive, '-' == '_' */
static bool
gh_http_var_header_eq(const gh_str_t *header, const uint8_t *name, size_t len)
{
    if (header->len != len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t h = gh_tolower(header->data[i]);
        uint8_t c = gh_tolower(name[i]);

        if (h == '-') {
            h = '_';
        }
        if (c == '-') {
            c = '_';
        }
        if (h != c) {
            return false;
        }
    }
    return true;
}


/* all headers of that name, joined with sep as nginx does since 1.23 */
static gh_int_t
gh_http_var_headers(gh_http_request_t *r, const gh_array_t *headers,
    const uint8_t *name, size_t len, const char *sep, gh_str_t *v)
{
    const gh_http_table_elt_t *h = headers->elts, *first = NULL;
    size_t                     total = 0, seplen = strlen(sep), count = 0;
    uint8_t                   *p;

    for (size_t i = 0; i < headers->nelts; i++) {
        if (h[i].hash_skip || !gh_http_var_header_eq(&h[i].name, name, len)) {
            continue;
        }
        if (first == NULL) {
            first = &h[i];
        }
        total += h[i].value.len + (count ? seplen : 0);
        count++;
    }
    if (first == NULL) {
        return GH_DECLINED;
    }
    if (count == 1) {
        *v = first->value;
        return GH_OK;
    }

    p = gh_alloc_unaligned(r->arena, total + 1);
    if (p == NULL) {
        return GH_ERROR;
    }
    v->data = p;
    v->len = total;
    count = 0;
    for (size_t i = 0; i < headers->nelts; i++) {
        if (h[i].hash_skip || !gh_http_var_header_eq(&h[i].name, name, len)) {
            continue;
        }
        if (count++) {
            memcpy(p, sep, seplen);
            p += seplen;
        }
        memcpy(p, h[i].value.data, h[i].value.len);
        p += h[i].value.len;
    }
    *p = '\0';
    return GH_OK;
}


/* --- getters: prefixes ---------------------------------------------- */

static gh_int_t
gh_http_var_http(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const gh_str_t *full = (const gh_str_t *) data;
    const uint8_t  *name = full->data + 5;
    size_t          len = full->len - 5;
    const char     *sep = ", ";

    if (len == 6 && gh_strncasecmp(name, (const uint8_t *) "cookie", 6) == 0) {
        sep = "; ";
    }
    return gh_http_var_headers(r, &r->headers_in.headers, name, len, sep, v);
}


static gh_int_t
gh_http_var_sent_http(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const gh_str_t *full = (const gh_str_t *) data;
    gh_str_t        name = { full->len - 10, full->data + 10 };

    /* fields the response keeps outside the header list */
    if (gh_str_caseeq_c(&name, "content_type")
        && r->headers_out.content_type.len)
    {
        *v = r->headers_out.content_type;
        return GH_OK;
    }
    if (gh_str_caseeq_c(&name, "content_length")
        && r->headers_out.content_length_n >= 0)
    {
        return gh_http_var_printf(r, v, "%lld",
            (long long) r->headers_out.content_length_n);
    }
    return gh_http_var_headers(r, &r->headers_out.headers, name.data,
        name.len, ", ", v);
}


/* nginx's ngx_http_arg(): the first "name=" (case-insensitive) among the
 * '&'-separated arguments; the value raw, not unescaped */
static gh_int_t
gh_http_var_arg(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const gh_str_t *full = (const gh_str_t *) data;
    const uint8_t  *name = full->data + 4;
    size_t          len = full->len - 4;
    const uint8_t  *p = r->args.data, *end = r->args.data + r->args.len;

    if (len == 0 || p == NULL) {
        return GH_DECLINED;
    }
    while (p < end) {
        const uint8_t *amp = memchr(p, '&', (size_t) (end - p));
        const uint8_t *seg_end = amp ? amp : end;

        if ((size_t) (seg_end - p) > len && p[len] == '='
            && gh_strncasecmp(p, name, len) == 0)
        {
            v->data = (uint8_t *) p + len + 1;
            v->len = (size_t) (seg_end - v->data);
            return GH_OK;
        }
        p = seg_end + 1;
    }
    return GH_DECLINED;
}


/* "a=1; b=2": the first pair of that name across the Cookie headers */
static gh_int_t
gh_http_var_cookie(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const gh_str_t            *full = (const gh_str_t *) data;
    const uint8_t             *name = full->data + 7;
    size_t                     len = full->len - 7;
    const gh_http_table_elt_t *h = r->headers_in.headers.elts;

    if (len == 0) {
        return GH_DECLINED;
    }
    for (size_t i = 0; i < r->headers_in.headers.nelts; i++) {
        if (h[i].hash_skip || !gh_str_caseeq_c(&h[i].name, "cookie")) {
            continue;
        }
        const uint8_t *p = h[i].value.data;
        const uint8_t *end = p + h[i].value.len;

        while (p < end) {
            const uint8_t *semi = memchr(p, ';', (size_t) (end - p));
            const uint8_t *seg_end = semi ? semi : end;

            while (p < seg_end && (*p == ' ' || *p == '\t')) {
                p++;
            }
            if ((size_t) (seg_end - p) > len && p[len] == '='
                && gh_strncasecmp(p, name, len) == 0)
            {
                const uint8_t *ve = seg_end;

                while (ve > p + len + 1 && (ve[-1] == ' ' || ve[-1] == '\t')) {
                    ve--;
                }
                v->data = (uint8_t *) p + len + 1;
                v->len = (size_t) (ve - v->data);
                return GH_OK;
            }
            p = seg_end + 1;
        }
    }
    return GH_DECLINED;
}


/* --- getters: request ----------------------------------------------- */

static gh_int_t
gh_http_var_host(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    gh_http_core_srv_conf_t *cscf;

    /* the request code puts the absolute-form host there when there is
     * one (it overrides Host, RFC 9112 3.2.2), else the Host value */
    if (r->headers_in.server.len) {
        *v = r->headers_in.server;
        return GH_OK;
    }
    cscf = r->srv_conf ? r->srv_conf[gh_http_core_module.index] : NULL;
    if (cscf != NULL && cscf->server_name.data != NULL) {
        *v = cscf->server_name;
        return GH_OK;
    }
    v->data = (uint8_t *) "";
    v->len = 0;
    return GH_OK;
}


static gh_int_t
gh_http_var_server_name(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    gh_http_core_srv_conf_t *cscf;

    cscf = r->srv_conf ? r->srv_conf[gh_http_core_module.index] : NULL;
    if (cscf == NULL || cscf->server_name.data == NULL) {
        v->data = (uint8_t *) "";
        v->len = 0;
        return GH_OK;
    }
    *v = cscf->server_name;
    return GH_OK;
}


static gh_int_t
gh_http_var_scheme(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    if (r->schema.len) {
        *v = r->schema;
    } else {
        gh_str_set(v, "http");
    }
    return GH_OK;
}


static gh_int_t
gh_http_var_https(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    if (gh_str_eq_c(&r->schema, "https")
        || (r->conn != NULL && r->conn->tls != NULL))
    {
        gh_str_set(v, "on");
    } else {
        gh_str_set(v, "");
    }
    return GH_OK;
}


static gh_int_t
gh_http_var_is_args(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    if (r->args.len) {
        gh_str_set(v, "?");
    } else {
        gh_str_set(v, "");
    }
    return GH_OK;
}


static gh_int_t
gh_http_var_server_protocol(gh_http_request_t *r, gh_str_t *v,
    uintptr_t data)
{
    switch (r->http_version) {
    case 1000:
        gh_str_set(v, "HTTP/1.0");
        return GH_OK;
    case 1001:
        gh_str_set(v, "HTTP/1.1");
        return GH_OK;
    case 2000:
        gh_str_set(v, "HTTP/2.0");
        return GH_OK;
    default:
        return gh_http_var_printf(r, v, "HTTP/%u.%u", r->http_version / 1000,
            r->http_version % 1000);
    }
}


static gh_int_t
gh_http_var_header_in(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const char *name = (const char *) data;

    return gh_http_var_headers(r, &r->headers_in.headers,
        (const uint8_t *) name, strlen(name), ", ", v);
}


static gh_int_t
gh_http_var_content_length(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    if (r->headers_in.content_length != NULL) {
        *v = r->headers_in.content_length->value;
        return GH_OK;
    }
    return gh_http_var_header_in(r, v, (uintptr_t) "content_length");
}


static gh_int_t
gh_http_var_status(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    gh_uint_t status = r->err_status ? r->err_status : r->headers_out.status;

    return gh_http_var_printf(r, v, "%03u", (unsigned) (status % 1000));
}


/* an off_t field of the request at offset `data` */
static gh_int_t
gh_http_var_request_off(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    off_t n = *(const off_t *) ((const char *) r + data);

    return gh_http_var_printf(r, v, "%lld", (long long) gh_max(n, 0));
}


static gh_int_t
gh_http_var_request_time(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    gh_msec_t ms = gh_current_msec - r->start_msec;

    ms = gh_max(ms, 0);
    return gh_http_var_printf(r, v, "%lld.%03lld", (long long) (ms / 1000),
        (long long) (ms % 1000));
}


static gh_int_t
gh_http_var_msec(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    gh_msec_t ms = gh_current_wall_msec;

    return gh_http_var_printf(r, v, "%lld.%03lld", (long long) (ms / 1000),
        (long long) (ms % 1000));
}


/* the cached strings are rewritten once a second: copy them, a value
 * may be kept while the request lives */
static gh_int_t
gh_http_var_time(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    return gh_http_var_copy(r, v, (const gh_str_t *) data);
}


static gh_int_t
gh_http_var_connection(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    return gh_http_var_printf(r, v, "%llu",
        (unsigned long long) (r->conn ? r->conn->log.connection : 0));
}


static gh_int_t
gh_http_var_connection_requests(gh_http_request_t *r, gh_str_t *v,
    uintptr_t data)
{
    return gh_http_var_printf(r, v, "%lu",
        (unsigned long) gh_max(r->conn_requests, (gh_uint_t) 1));
}


static gh_int_t
gh_http_var_pid(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    return gh_http_var_printf(r, v, "%ld", (long) getpid());
}


static gh_int_t
gh_http_var_hostname(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    static char name[256];

    if (name[0] == '\0') {
        if (gethostname(name, sizeof(name) - 1) != 0) {
            name[0] = '\0';
            return GH_ERROR;
        }
        name[sizeof(name) - 1] = '\0';
    }
    v->data = (uint8_t *) name;
    v->len = strlen(name);
    return GH_OK;
}


/* --- getters: addresses --------------------------------------------- */

static gh_int_t
gh_http_var_remote_addr(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    if (r->conn == NULL || r->conn->addr_text.data == NULL) {
        return GH_DECLINED;
    }
    *v = r->conn->addr_text;
    return GH_OK;
}


static gh_int_t
gh_http_var_binary_remote_addr(gh_http_request_t *r, gh_str_t *v,
    uintptr_t data)
{
    gh_sockaddr_t *ss;

    if (r->conn == NULL) {
        return GH_DECLINED;
    }
    ss = &r->conn->sockaddr;
    if (ss->sa.sa_family == AF_INET) {
        v->data = (uint8_t *) &ss->sin.sin_addr;
        v->len = 4;
    } else if (ss->sa.sa_family == AF_INET6) {
        v->data = (uint8_t *) &ss->sin6.sin6_addr;
        v->len = 16;
    } else {
        gh_str_set(v, "");
    }
    return GH_OK;
}


static int
gh_http_var_port_of(const gh_sockaddr_t *ss)
{
    if (ss->sa.sa_family == AF_INET) {
        return ntohs(ss->sin.sin_port);
    }
    if (ss->sa.sa_family == AF_INET6) {
        return ntohs(ss->sin6.sin6_port);
    }
    return -1;
}


static gh_int_t
gh_http_var_remote_port(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    int port = r->conn ? gh_http_var_port_of(&r->conn->sockaddr) : -1;

    if (port < 0) {
        gh_str_set(v, "");
        return GH_OK;
    }
    return gh_http_var_printf(r, v, "%d", port);
}


/* the local address is only asked for when a variable needs it: one
 * getsockname() per connection, cached in the connection */
static gh_int_t
gh_http_var_local(gh_conn_t *c)
{
    if (gh_conn_local_addr(c) != GH_OK) {
        gh_log(GH_LOG_ERR, &c->log, errno, "getsockname() failed");
        return GH_ERROR;
    }
    return GH_OK;
}


static gh_int_t
gh_http_var_server_addr(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    gh_sockaddr_t *ss;
    char           buf[INET6_ADDRSTRLEN];
    const void    *addr;
    gh_str_t       s;

    if (r->conn == NULL || gh_http_var_local(r->conn) != GH_OK) {
        return GH_ERROR;
    }
    ss = &r->conn->local_sockaddr;
    if (ss->sa.sa_family == AF_INET) {
        addr = &ss->sin.sin_addr;
    } else if (ss->sa.sa_family == AF_INET6) {
        addr = &ss->sin6.sin6_addr;
    } else {
        gh_str_set(v, "unix:");
        return GH_OK;
    }
    if (inet_ntop(ss->sa.sa_family, addr, buf, sizeof(buf)) == NULL) {
        return GH_ERROR;
    }
    s.data = (uint8_t *) buf;
    s.len = strlen(buf);
    return gh_http_var_copy(r, v, &s);
}


static gh_int_t
gh_http_var_server_port(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    int port;

    if (r->conn == NULL || gh_http_var_local(r->conn) != GH_OK) {
        return GH_ERROR;
    }
    port = gh_http_var_port_of(&r->conn->local_sockaddr);
    if (port < 0) {
        gh_str_set(v, "");
        return GH_OK;
    }
    return gh_http_var_printf(r, v, "%d", port);
}


/* --- $request_id ---------------------------------------------------- */

/*
 * 16 random bytes per request, drawn from a per-process buffer refilled
 * with getrandom() 32 requests at a time.  A forked child drops what it
 * inherited: two workers handing out the same ids would defeat their
 * purpose.
 */
static uint8_t gh_http_rand_buf[512];
static size_t  gh_http_rand_pos = sizeof(gh_http_rand_buf);
static bool    gh_http_rand_atfork;


static void
gh_http_rand_reset(void)
{
    gh_http_rand_pos = sizeof(gh_http_rand_buf);
}


static gh_int_t
gh_http_random_bytes(uint8_t *dst, size_t n)
{
    if (!gh_http_rand_atfork) {
        pthread_atfork(NULL, NULL, gh_http_rand_reset);
        gh_http_rand_atfork = true;
    }
    if (gh_http_rand_pos + n > sizeof(gh_http_rand_buf)) {
        size_t got = 0;

        while (got < sizeof(gh_http_rand_buf)) {
            ssize_t k = getrandom(gh_http_rand_buf + got,
                sizeof(gh_http_rand_buf) - got, 0);
            if (k < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return GH_ERROR;
            }
            got += (size_t) k;
        }
        gh_http_rand_pos = 0;
    }
    memcpy(dst, gh_http_rand_buf + gh_http_rand_pos, n);
    /* used bytes are not left around for a later memory disclosure */
    memset(gh_http_rand_buf + gh_http_rand_pos, 0, n);
    gh_http_rand_pos += n;
    return GH_OK;
}


static gh_int_t
gh_http_var_request_id(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t           raw[16];

    if (r->request_id[0] == '\0') {
        if (gh_http_random_bytes(raw, sizeof(raw)) != GH_OK) {
            return GH_ERROR;
        }
        for (size_t i = 0; i < sizeof(raw); i++) {
            r->request_id[2 * i] = hex[raw[i] >> 4];
            r->request_id[2 * i + 1] = hex[raw[i] & 0xf];
        }
        r->request_id[32] = '\0';
    }
    v->data = (uint8_t *) r->request_id;
    v->len = 32;
    return GH_OK;
}


/* --- the core variables --------------------------------------------- */

#define NC GH_HTTP_VAR_NOCACHEABLE
#define RQ(f) ((uintptr_t) offsetof(gh_http_request_t, f))

static const struct {
    const char          *name;
    gh_http_var_get_pt   get;
    uintptr_t            data;
    unsigned             flags;
} gh_http_core_vars[] = {
    { "http_", gh_http_var_http, 0, GH_HTTP_VAR_PREFIX },
    { "sent_http_", gh_http_var_sent_http, 0, GH_HTTP_VAR_PREFIX | NC },
    { "arg_", gh_http_var_arg, 0, GH_HTTP_VAR_PREFIX | NC },
    { "cookie_", gh_http_var_cookie, 0, GH_HTTP_VAR_PREFIX },

    { "host", gh_http_var_host, 0, 0 },
    { "server_name", gh_http_var_server_name, 0, 0 },
    { "scheme", gh_http_var_scheme, 0, 0 },
    { "https", gh_http_var_https, 0, 0 },
    { "request", gh_http_var_request_str, RQ(request_line), 0 },
    { "request_uri", gh_http_var_request_str, RQ(unparsed_uri), 0 },
    { "request_method", gh_http_var_request_str, RQ(method_name), 0 },
    { "uri", gh_http_var_request_str, RQ(uri), NC },
    { "document_uri", gh_http_var_request_str, RQ(uri), NC },
    { "args", gh_http_var_request_str, RQ(args), NC },
    { "query_string", gh_http_var_request_str, RQ(args), NC },
    { "is_args", gh_http_var_is_args, 0, NC },
    { "server_protocol", gh_http_var_server_protocol, 0, 0 },
    { "content_length", gh_http_var_content_length, 0, 0 },
    { "content_type", gh_http_var_header_in, (uintptr_t) "content_type", 0 },
    { "remote_user", gh_http_var_not_found, 0, 0 },

    { "remote_addr", gh_http_var_remote_addr, 0, 0 },
    { "binary_remote_addr", gh_http_var_binary_remote_addr, 0, 0 },
    { "remote_port", gh_http_var_remote_port, 0, 0 },
    { "server_addr", gh_http_var_server_addr, 0, 0 },
    { "server_port", gh_http_var_server_port, 0, 0 },
    { "connection", gh_http_var_connection, 0, 0 },
    { "connection_requests", gh_http_var_connection_requests, 0, 0 },

    { "request_id", gh_http_var_request_id, 0, 0 },
    { "status", gh_http_var_status, 0, NC },
    { "body_bytes_sent", gh_http_var_request_off, RQ(body_bytes_sent), NC },
    { "bytes_sent", gh_http_var_request_off, RQ(bytes_sent), NC },
    { "request_length", gh_http_var_request_off, RQ(request_length), NC },
    { "request_time", gh_http_var_request_time, 0, NC },
    { "msec", gh_http_var_msec, 0, NC },
    { "time_local", gh_http_var_time, (uintptr_t) &gh_cached_log_time, NC },
    { "time_iso8601", gh_http_var_time, (uintptr_t) &gh_cached_iso8601_time,
      NC },

    { "pid", gh_http_var_pid, 0, 0 },
    { "hostname", gh_http_var_hostname, 0, 0 },
    { "gatehouse_version", gh_http_var_const, (uintptr_t) GH_VERSION, 0 },
};

#undef NC
#undef RQ


gh_int_t
gh_http_variables_add_core_vars(gh_conf_t *cf)
{
    for (size_t i = 0; i < gh_nelems(gh_http_core_vars); i++) {
        gh_str_t            name;
        gh_http_variable_t *v;

        name.data = (uint8_t *) gh_http_core_vars[i].name;
        name.len = strlen(gh_http_core_vars[i].name);
        v = gh_http_add_variable(cf, &name, gh_http_core_vars[i].flags);
        if (v == NULL) {
            return GH_ERROR;
        }
        v->get = gh_http_core_vars[i].get;
        v->data = gh_http_core_vars[i].data;
    }
    return GH_OK;
}
