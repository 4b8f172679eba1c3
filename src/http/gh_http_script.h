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

/* GH_DECLINED: go on with the next action (unless the action set
 * e->quit); anything else ends the script with that result */
typedef gh_int_t (*gh_http_script_op_pt)(gh_http_script_engine_t *e,
    const gh_http_script_action_t *a);

/* `rewrite` flags */
enum {
    GH_HTTP_REWRITE_NONE = 0,     /* go on with the script */
    GH_HTTP_REWRITE_LAST,         /* stop, search the location again */
    GH_HTTP_REWRITE_BREAK,        /* stop, stay in this location */
    GH_HTTP_REWRITE_REDIRECT      /* answer with u.rewrite.status */
};

/* `if` conditions */
enum {
    GH_HTTP_IF_VAR = 0,           /* ($v): not "" and not "0" */
    GH_HTTP_IF_EQ,                /* ($v = s), negate for != */
    GH_HTTP_IF_REGEX,             /* ($v ~ re), ~* caseless, !~ negate */
    GH_HTTP_IF_FILE,              /* -f path */
    GH_HTTP_IF_DIR,               /* -d path */
    GH_HTTP_IF_EXISTS,            /* -e path */
    GH_HTTP_IF_EXEC               /* -x path */
};

struct gh_http_script_action_s {
    gh_http_script_op_pt  handler;
    /* compiled arguments, one member per action type */
    union {
        struct {
            gh_uint_t                status;    /* 0..999 */
            bool                     has_text;
            gh_http_complex_value_t  text;      /* body or URL */
        } ret;
        struct {
            gh_http_regex_t         *regex;     /* on r->uri */
            gh_http_complex_value_t  uri;       /* replacement up to '?' */
            gh_http_complex_value_t  args;      /* after '?' (has_args) */
            unsigned                 flag;      /* GH_HTTP_REWRITE_* */
            gh_uint_t                status;    /* 301/302 for REDIRECT */
            bool                     has_args;  /* a '?' in replacement */
            bool                     add_args;  /* append the request's
                                                   args (no trailing '?') */
        } rewrite;
        struct {
            unsigned                 op;        /* GH_HTTP_IF_* */
            bool                     negate;
            gh_http_complex_value_t  left;      /* variable or path */
            gh_http_complex_value_t  right;     /* for = and != */
            gh_http_regex_t         *regex;     /* for ~ */
            size_t                   next;      /* ip past the block */
            void                   **loc_conf;  /* the block's confs */
        } cond;
        struct {
            gh_uint_t                index;     /* variable index */
            gh_http_complex_value_t  value;
            bool                     args;      /* `set $args`: r->args */
        } set;
    } u;
};

struct gh_http_script_engine_s {
    gh_http_request_t *r;
    size_t             ip;       /* next action; a jump writes it */
    unsigned           quit:1;   /* break / rewrite last|break: stop */
    unsigned           search:1; /* the URI changed: find the location
                                    again once the script is over */
};

/* the rewrite module's conf, the same type at server and location level
 * (and per if{}: while the block is read its `script` is the enclosing
 * level's array, so that the block's actions land inline) */
typedef struct {
    gh_array_t *script;          /* gh_http_script_action_t; NULL: none */
    int         log;             /* rewrite_log */
    int         uninit_warn;     /* uninitialized_variable_warn */
} gh_http_rewrite_conf_t;

#endif
