/*
 * gh_conf.h: nginx-syntax configuration.
 *
 * Two passes.  First the tokenizer and parser turn files into a tree of
 * gh_conf_node_t (includes expanded in place, every node knows its
 * file:line).  Then gh_conf_dispatch() walks the tree: for each node it
 * finds the command among all modules' tables, checks context and argument
 * count, and calls the command's `set` handler.  Block commands (http,
 * server, location, ...) call gh_conf_dispatch() on their children with a
 * new context.  Commands flagged GH_CONF_RAW get their children as data
 * (map, types) and the dispatcher does not look into them.
 *
 * Before dispatch, gh_conf_check_unknown() walks the whole tree and reports
 * every unknown directive at once, so that someone moving an nginx config
 * over sees the whole list.
 *
 * Error messages follow nginx:
 *   gatehouse: [emerg] unknown directive "proxy_pas" in /etc/x/app:12
 *   gatehouse: [emerg] "listen" directive is not allowed here in f:3
 *   gatehouse: [emerg] invalid number of arguments in "root" directive in f:4
 * A `set` handler returns NULL on success or a message; the core prints
 *   gatehouse: [emerg] "<name>" directive <message> in file:line
 * A handler that logged its own error returns GH_CONF_ERROR.
 */
#ifndef GH_CONF_H
#define GH_CONF_H

#include "../core/gh_core.h"

/* contexts (bitmask) */
#define GH_MAIN_CONF       0x0001
#define GH_EVENTS_CONF     0x0002
#define GH_HTTP_MAIN_CONF  0x0004
#define GH_HTTP_SRV_CONF   0x0008
#define GH_HTTP_LOC_CONF   0x0010
#define GH_HTTP_UPS_CONF   0x0020
#define GH_HTTP_SIF_CONF   0x0040   /* if inside server */
#define GH_HTTP_LIF_CONF   0x0080   /* if inside location */
#define GH_HTTP_LMT_CONF   0x0100   /* limit_except */
#define GH_ANY_HTTP_CONF   (GH_HTTP_MAIN_CONF | GH_HTTP_SRV_CONF | GH_HTTP_LOC_CONF)

/* argument counts (bitmask; TAKE12 = TAKE1|TAKE2 etc.) */
#define GH_CONF_NOARGS  0x00000001
#define GH_CONF_TAKE1   0x00000002
#define GH_CONF_TAKE2   0x00000004
#define GH_CONF_TAKE3   0x00000008
#define GH_CONF_TAKE4   0x00000010
#define GH_CONF_TAKE5   0x00000020
#define GH_CONF_TAKE6   0x00000040
#define GH_CONF_TAKE7   0x00000080
#define GH_CONF_MAX_ARGS 8
#define GH_CONF_TAKE12  (GH_CONF_TAKE1 | GH_CONF_TAKE2)
#define GH_CONF_TAKE13  (GH_CONF_TAKE1 | GH_CONF_TAKE3)
#define GH_CONF_TAKE23  (GH_CONF_TAKE2 | GH_CONF_TAKE3)
#define GH_CONF_TAKE123 (GH_CONF_TAKE1 | GH_CONF_TAKE2 | GH_CONF_TAKE3)
#define GH_CONF_TAKE1234 (GH_CONF_TAKE123 | GH_CONF_TAKE4)
#define GH_CONF_FLAG    0x00000200   /* exactly one arg: on|off */
#define GH_CONF_ANY     0x00000400   /* any number, including 0 */
#define GH_CONF_1MORE   0x00000800
#define GH_CONF_2MORE   0x00001000
#define GH_CONF_BLOCK   0x00010000   /* directive takes a { } block */
#define GH_CONF_RAW     0x00020000   /* block content is data, not directives */

/* which conf structure `set` gets (see gh_conf_ctx_t) */
#define GH_CONF_MAIN_OFFSET 0   /* core: main context / events; http: http{} level */
#define GH_CONF_SRV_OFFSET  1
#define GH_CONF_LOC_OFFSET  2

#define GH_CONF_ERROR ((const char *) -1)

typedef struct gh_conf_node_s gh_conf_node_t;
struct gh_conf_node_s {
    gh_str_t       *args;      /* args[0] is the directive name */
    size_t          nargs;
    const char     *file;      /* absolute path, interned in the conf arena */
    unsigned        line;
    bool            block;     /* followed by { ... } */
    gh_conf_node_t *children;  /* first child if block */
    gh_conf_node_t *next;      /* next sibling */
};

/* conf structures of the current level, indexed by module index */
typedef struct {
    void **main_conf;
    void **srv_conf;
    void **loc_conf;
} gh_conf_ctx_t;

typedef struct {
    const char *path;
    gh_str_t    content;
} gh_conf_file_t;

struct gh_conf_s {
    gh_cycle_t     *cycle;
    gh_arena_t     *arena;       /* lives as long as the configuration */
    gh_log_t       *log;
    gh_conf_node_t *node;        /* node being handled */
    unsigned        ctx_type;    /* GH_*_CONF of the current block */
    gh_conf_ctx_t  *ctx;
    void           *handler_data;/* free for block handlers (e.g. upstream) */
    const char     *conf_prefix; /* directory of the main config, ends in '/' */
    const char     *prefix;      /* -p prefix, ends in '/' */
    gh_array_t      files;       /* gh_conf_file_t: every file read, for -T */
    unsigned        include_depth;
    unsigned        errors;      /* errors reported so far */
};

typedef const char *(*gh_conf_set_pt)(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);

struct gh_command_s {
    const char     *name;
    unsigned        ctx;
    unsigned        args;
    gh_conf_set_pt  set;
    unsigned        conf;     /* GH_CONF_*_OFFSET */
    size_t          offset;   /* for the generic setters */
    const void     *post;     /* e.g. gh_conf_enum_t[] for gh_conf_set_enum */
};

#define GH_COMMAND_END { NULL, 0, 0, NULL, 0, 0, NULL }

typedef struct {
    const char *name;
    gh_uint_t   value;
} gh_conf_enum_t;

/* --- parsing --------------------------------------------------------- */

void gh_conf_init(gh_conf_t *cf, gh_cycle_t *cycle, gh_arena_t *arena,
    gh_log_t *log);
/* parse a file (path absolute or relative to cwd) into a node list */
gh_int_t gh_conf_parse_file(gh_conf_t *cf, const char *path,
    gh_conf_node_t **out);
/* parse a string, e.g. the -g argument; `name` is used in messages */
gh_int_t gh_conf_parse_string(gh_conf_t *cf, const char *name,
    const uint8_t *data, size_t len, gh_conf_node_t **out);

/* --- dispatch -------------------------------------------------------- */

/* report every directive not declared by any module (walks the tree,
 * skipping GH_CONF_RAW blocks); returns the number found */
unsigned gh_conf_check_unknown(gh_conf_t *cf, gh_conf_node_t *nodes);
/* handle a list of nodes in context ctx_type with conf ctx */
gh_int_t gh_conf_dispatch(gh_conf_t *cf, gh_conf_node_t *nodes,
    unsigned ctx_type, gh_conf_ctx_t *ctx);

/* log "[emerg] <msg> in file:line" for the current node */
void gh_conf_error(gh_conf_t *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void gh_conf_error_at(gh_conf_t *cf, int level, const gh_conf_node_t *n,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* resolve a path: absolute stays, relative joins conf_prefix (conf=true)
 * or prefix (conf=false).  NUL-terminated, allocated in cf->arena. */
char *gh_conf_full_name(gh_conf_t *cf, const gh_str_t *name, bool conf);

/* print every file read, nginx -T style, to fd */
void gh_conf_dump(gh_conf_t *cf, int fd);

/* --- generic setters ------------------------------------------------- */
/* the field at cmd->offset must be UNSET before; else "is duplicate" */
const char *gh_conf_set_flag(gh_conf_t *cf, const gh_command_t *cmd, void *conf);   /* int (not gh_int_t) */
const char *gh_conf_set_num(gh_conf_t *cf, const gh_command_t *cmd, void *conf);    /* gh_int_t */
const char *gh_conf_set_size(gh_conf_t *cf, const gh_command_t *cmd, void *conf);   /* size_t */
const char *gh_conf_set_off(gh_conf_t *cf, const gh_command_t *cmd, void *conf);    /* off_t */
const char *gh_conf_set_msec(gh_conf_t *cf, const gh_command_t *cmd, void *conf);   /* gh_msec_t */
const char *gh_conf_set_sec(gh_conf_t *cf, const gh_command_t *cmd, void *conf);    /* gh_int_t seconds */
const char *gh_conf_set_str(gh_conf_t *cf, const gh_command_t *cmd, void *conf);    /* gh_str_t, data==NULL unset */
const char *gh_conf_set_str_array(gh_conf_t *cf, const gh_command_t *cmd, void *conf); /* gh_array_t* of gh_str_t, NULL unset */
const char *gh_conf_set_enum(gh_conf_t *cf, const gh_command_t *cmd, void *conf);   /* gh_uint_t, UNSET = (gh_uint_t)-1 */
const char *gh_conf_set_path(gh_conf_t *cf, const gh_command_t *cmd, void *conf);   /* char*, relative to prefix */

/* value helpers shared by custom setters */
static inline gh_str_t *
gh_conf_args(gh_conf_t *cf)
{
    return cf->node->args;
}

#endif
