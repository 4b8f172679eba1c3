/*
 * gh_http_regex.c: PCRE2 regexes of the configuration (locations,
 * server_name, map, ...) and their captures.
 *
 * Compilation happens at config time in the conf arena; every pattern is
 * JIT-compiled when the platform allows it (a JIT failure is not an
 * error: the interpreter gives the same answers, only slower).  Named
 * groups "(?<name>...)" declare variables so that "$name" works, as in
 * nginx; their values are stored into the request's variable cache when
 * the regex matches.
 *
 * Matching uses one match-data block per worker, grown to the largest
 * capture count seen, so a match allocates nothing unless captures must
 * be kept: then the ovector is copied into r->captures (allocated once per
 * request, sized for the largest regex of the configuration).
 */
#include "gh_http.h"
#include <stdio.h>

/* per-worker match data; workers are single-threaded */
static pcre2_match_data *gh_http_match_data;
static uint32_t          gh_http_match_pairs;


static void
gh_http_regex_cleanup(void *data)
{
    pcre2_code_free(data);
}


/* nginx's wording: pcre2_compile() failed: <why> in "<re>" at "<rest>" */
static const char *
gh_http_regex_error(gh_conf_t *cf, int code, const gh_str_t *re,
    size_t offset)
{
    PCRE2_UCHAR msg[256];
    char        buf[512];
    size_t      n;
    char       *out;

    if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0) {
        snprintf((char *) msg, sizeof(msg), "error %d", code);
    }
    offset = gh_min(offset, re->len);
    n = (size_t) snprintf(buf, sizeof(buf),
        "pcre2_compile() failed: %s in \"%.*s\" at \"%.*s\"",
        (const char *) msg, (int) gh_min(re->len, (size_t) 200),
        (const char *) re->data,
        (int) gh_min(re->len - offset, (size_t) 100),
        (const char *) re->data + offset);
    n = gh_min(n, sizeof(buf) - 1);
    out = gh_alloc_unaligned(cf->arena, n + 1);
    if (out == NULL) {
        return "out of memory";
    }
    memcpy(out, buf, n + 1);
    return out;
}


/* named groups become CHANGEABLE variables whose value only a match sets
 * (nginx's behaviour: "$name" is "not found" until then) */
static gh_int_t
gh_http_regex_names(gh_conf_t *cf, gh_http_regex_t *re, const char **err)
{
    uint32_t      count, entry;
    PCRE2_SPTR    table;
    char         *msg;

    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &count);
    if (count == 0) {
        return GH_OK;
    }
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &table);

    re->name_vars = gh_alloc(cf->arena, count * sizeof(gh_int_t));
    re->name_groups = gh_alloc(cf->arena, count * sizeof(gh_uint_t));
    if (re->name_vars == NULL || re->name_groups == NULL) {
        *err = "out of memory";
        return GH_ERROR;
    }

    for (uint32_t i = 0; i < count; i++) {
        const uint8_t      *p = table + (size_t) i * entry;
        gh_str_t            name;
        gh_http_variable_t *v;
        gh_int_t            index;

        /* entry: group number (2 bytes, big endian), NUL-terminated name */
        name.data = (uint8_t *) p + 2;
        name.len = strlen((const char *) name.data);

        v = gh_http_add_variable(cf, &name, GH_HTTP_VAR_CHANGEABLE);
        if (v == NULL) {
            msg = gh_alloc_unaligned(cf->arena, name.len + 32);
            if (msg != NULL) {
                snprintf(msg, name.len + 32, "the duplicate \"%s\" variable",
                    (const char *) name.data);
            }
            *err = msg ? msg : "out of memory";
            return GH_ERROR;
        }
        /* v->get stays NULL: init_vars makes it "not found" */

        index = gh_http_get_variable_index(cf, &name);
        if (index == GH_ERROR) {
            *err = "out of memory";
            return GH_ERROR;
        }
        re->name_vars[i] = index;
        re->name_groups[i] = ((gh_uint_t) p[0] << 8) | p[1];
    }
    re->nnames = count;
    return GH_OK;
}


gh_http_regex_t *
gh_http_regex_compile(gh_conf_t *cf, const gh_str_t *pattern, bool caseless,
    const char **err)
{
    gh_http_regex_t          *re;
    gh_http_core_main_conf_t *cmcf;
    pcre2_code               *code;
    int                       errcode;
    PCRE2_SIZE                erroff;
    uint32_t                  ncap;

    code = pcre2_compile(pattern->data, pattern->len,
        caseless ? PCRE2_CASELESS : 0, &errcode, &erroff, NULL);
    if (code == NULL) {
        *err = gh_http_regex_error(cf, errcode, pattern, erroff);
        return NULL;
    }
    if (gh_cleanup_add(cf->arena, gh_http_regex_cleanup, code) == NULL) {
        pcre2_code_free(code);
        *err = "out of memory";
        return NULL;
    }

    /* PCRE2_ERROR_JIT_BADOPTION and friends: interpreted matching is fine */
    (void) pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);

    re = gh_calloc(cf->arena, sizeof(*re));
    if (re == NULL) {
        *err = "out of memory";
        return NULL;
    }
    re->code = code;
    re->pattern = gh_str_dup(cf->arena, pattern);
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &ncap);
    re->ncaptures = ncap;

    if (gh_http_regex_names(cf, re, err) != GH_OK) {
        return NULL;
    }

    if (cf->ctx != NULL && cf->ctx->main_conf != NULL) {
        cmcf = gh_http_conf_get_module_main_conf(cf, gh_http_core_module);
        if (cmcf != NULL && cmcf->ncaptures < re->ncaptures) {
            cmcf->ncaptures = re->ncaptures;
        }
    }
    return re;
}


static pcre2_match_data *
gh_http_regex_match_data(uint32_t pairs)
{
    if (gh_http_match_data != NULL && gh_http_match_pairs >= pairs) {
        return gh_http_match_data;
    }
    if (gh_http_match_data != NULL) {
        pcre2_match_data_free(gh_http_match_data);
    }
    /* room for a few more groups than asked, so that a reload with a
     * slightly larger regex does not reallocate */
    pairs = gh_max(pairs, 10);
    gh_http_match_data = pcre2_match_data_create(pairs, NULL);
    gh_http_match_pairs = gh_http_match_data ? pairs : 0;
    return gh_http_match_data;
}


gh_int_t
gh_http_regex_exec(gh_http_request_t *r, gh_http_regex_t *re,
    const gh_str_t *subject)
{
    pcre2_match_data         *md;
    PCRE2_SIZE               *ov;
    gh_http_core_main_conf_t *cmcf = NULL;
    gh_uint_t                 pairs, cap;
    int                       rc;

    md = gh_http_regex_match_data((uint32_t) re->ncaptures + 1);
    if (md == NULL) {
        return GH_ERROR;
    }

    rc = pcre2_match(re->code, subject->len ? subject->data
                                            : (PCRE2_SPTR) "",
        subject->len, 0, 0, md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) {
        return GH_DECLINED;
    }
    if (rc < 0) {
        if (r != NULL && r->conn != NULL) {
            gh_log(GH_LOG_ERR, &r->conn->log, 0,
                "pcre2_match() failed: %d on \"%.*s\" using \"%.*s\"", rc,
                (int) gh_min(subject->len, (size_t) 256),
                (const char *) subject->data, (int) re->pattern.len,
                (const char *) re->pattern.data);
        }
        return GH_ERROR;
    }
    if (r == NULL) {
        return GH_OK;
    }

    ov = pcre2_get_ovector_pointer(md);

    /* named captures: their variables' cached values (the cache holds
     * slices of the subject, which outlives the request's use of them) */
    if (re->nnames && r->variables == NULL) {
        (void) gh_http_variables_request_init(r);
    }
    if (re->nnames && r->variables != NULL) {
        for (gh_uint_t i = 0; i < re->nnames; i++) {
            gh_http_var_value_t *vv = &r->variables[re->name_vars[i]];
            gh_uint_t            g = re->name_groups[i];

            vv->valid = 1;
            vv->not_found = 0;
            if (g < (gh_uint_t) rc && ov[2 * g] != PCRE2_UNSET) {
                vv->value.data = subject->data + ov[2 * g];
                vv->value.len = ov[2 * g + 1] - ov[2 * g];
            } else {
                vv->value.data = (uint8_t *) "";
                vv->value.len = 0;
            }
        }
    }

    /* nginx keeps the previous captures when this regex has none, so that
     * "location ~ \.php$" does not wipe $1 of a server_name regex */
    if (re->ncaptures == 0) {
        return GH_OK;
    }

    if (r->main_conf != NULL) {
        cmcf = r->main_conf[gh_http_core_module.index];
    }
    cap = gh_max(cmcf ? cmcf->ncaptures : 0, re->ncaptures) + 1;
    if (r->captures == NULL || r->ncaptures_alloc < cap) {
        r->captures = gh_alloc(r->arena, cap * 2 * sizeof(int));
        if (r->captures == NULL) {
            return GH_ERROR;
        }
        r->ncaptures_alloc = cap;
    }

    pairs = (gh_uint_t) rc;
    for (gh_uint_t i = 0; i < pairs; i++) {
        if (ov[2 * i] == PCRE2_UNSET) {
            r->captures[2 * i] = -1;
            r->captures[2 * i + 1] = -1;
        } else {
            r->captures[2 * i] = (int) ov[2 * i];
            r->captures[2 * i + 1] = (int) ov[2 * i + 1];
        }
    }
    r->ncaptures = pairs;
    r->captures_data = subject->data;
    return GH_OK;
}
