/*
 * gh_http_script.h: the rewrite module's compiled scripts (see
 * gh_http_rewrite_module.c for the execution model).  Private to
 * src/http; shared with the unit tests so that they can check what a
 * directive compiled to.
 */
#ifndef GH_HTTP_SCRIPT_H
#define GH_HTTP_SCRIPT_H

#include "gh_http.h"

typedef struct gh_http_script_engine_s gh_http_script_engine_t;
typedef struct gh_http_script_action_s gh_http_script_action_t;

/* GH_DECLINED: go on with the next action; anything else ends the
 * script with that result */
typedef gh_int_t (*gh_http_script_op_pt)(gh_http_script_engine_t *e,
    const gh_http_script_action_t *a);

struct gh_http_script_action_s {
    gh_http_script_op_pt  handler;
    /* compiled arguments, one member per action type */
    union {
        struct {
            gh_uint_t                status;    /* 0..999 */
            bool                     has_text;
            gh_http_complex_value_t  text;      /* body or URL */
        } ret;
    } u;
};

struct gh_http_script_engine_s {
    gh_http_request_t *r;
    size_t             ip;       /* next action; a jump writes it */
};

/* the rewrite module's conf, the same type at server and location level
 * (and, later, per if{}) */
typedef struct {
    gh_array_t *script;          /* gh_http_script_action_t; NULL: none */
} gh_http_rewrite_conf_t;

#endif
