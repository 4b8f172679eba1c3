/*
 * gh_conf.c: directive dispatch, the unknown-directive pass, error
 * messages, path resolution and the -T dump.
 *
 * The dispatcher does what nginx's ngx_conf_handler() does, in the same
 * order so that the same mistake gets the same message: find the command,
 * check the context, check block/no block, check the argument count, then
 * call `set` with the conf structure of the command's level.
 *
 * Line numbers: a node carries the line of its first word.  nginx reports
 * the line where the directive ends (its ';' or '{'); the two differ only
 * for directives spread over several lines, where the first line is the
 * one worth looking at.
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "gh_conf.h"
#include "../core/gh_module.h"

/* long enough for any message whose parts are directive names; a message
 * quoting a 64 KiB parameter is cut, which is what a reader wants anyway */
#define GH_CONF_ERRSTR 2048

/* "did you mean": names are compared only up to this length, and a hint
 * is given for an edit distance of at most 2 */
#define GH_CONF_HINT_NAME 64
#define GH_CONF_HINT_DIST 2


static gh_log_t *
gh_conf_log(gh_conf_t *cf)
{
    return cf->log ? cf->log : &gh_log_stderr;
}


static void
gh_conf_verror_at(gh_conf_t *cf, int level, const gh_conf_node_t *n,
    const char *fmt, va_list ap)
{
    char msg[GH_CONF_ERRSTR];

    vsnprintf(msg, sizeof(msg), fmt, ap);

    if (n != NULL && n->file != NULL) {
        gh_log_error(level, gh_conf_log(cf), 0, "%s in %s:%u", msg, n->file,
            n->line);
    } else {
        gh_log_error(level, gh_conf_log(cf), 0, "%s", msg);
    }

    /* warnings do not make `gatehouse -t` fail */
    if (level <= GH_LOG_ERR) {
        cf->errors++;
    }
}


void
gh_conf_error_at(gh_conf_t *cf, int level, const gh_conf_node_t *n,
    const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gh_conf_verror_at(cf, level, n, fmt, ap);
    va_end(ap);
}


void
gh_conf_error(gh_conf_t *cf, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gh_conf_verror_at(cf, GH_LOG_EMERG, cf->node, fmt, ap);
    va_end(ap);
}


/* optimal string alignment distance (Levenshtein plus adjacent
 * transpositions, so "lsiten" is one step from "listen"); the caller
 * bounds both lengths by GH_CONF_HINT_NAME */
static size_t
gh_conf_distance(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    size_t d[GH_CONF_HINT_NAME + 1][GH_CONF_HINT_NAME + 1];
    size_t i, j, cost, v;

    for (i = 0; i <= la; i++) {
        d[i][0] = i;
    }
    for (j = 0; j <= lb; j++) {
        d[0][j] = j;
    }

    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            cost = a[i - 1] == b[j - 1] ? 0 : 1;
            v = gh_min(d[i - 1][j] + 1, d[i][j - 1] + 1);
            v = gh_min(v, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2]
                && a[i - 2] == b[j - 1])
            {
                v = gh_min(v, d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    return d[la][lb];
}


/* the closest known directive name, or NULL if none is close enough to be
 * a plausible typo: at most 2 edits, and no more than a third of the name
 * (so that "ab" does not suggest "if") */
static const char *
gh_conf_suggest(const gh_str_t *name)
{
    const gh_command_t *cmd;
    const char         *best = NULL;
    size_t              i, d, len, best_d = GH_CONF_HINT_DIST + 1;

    if (name->len > GH_CONF_HINT_NAME) {
        return NULL;
    }

    for (i = 0; gh_modules[i] != NULL; i++) {
        for (cmd = gh_modules[i]->commands; cmd && cmd->name; cmd++) {
            len = strlen(cmd->name);
            if (len > GH_CONF_HINT_NAME
                || (len > name->len ? len - name->len : name->len - len)
                   > GH_CONF_HINT_DIST)
            {
                continue;
            }
            d = gh_conf_distance(name->data, name->len,
                (const uint8_t *) cmd->name, len);
            if (d < best_d && d * 3 <= name->len) {
                best = cmd->name;
                best_d = d;
            }
        }
    }
    return best;
}


static void
gh_conf_unknown(gh_conf_t *cf, const gh_conf_node_t *n)
{
    const gh_str_t *name = &n->args[0];
    const char     *hint;
    int             len;

    len = (int) gh_min(name->len, (size_t) GH_CONF_ERRSTR);
    hint = gh_conf_suggest(name);

    /* the hint goes after nginx's exact text, which scripts grep for */
    if (hint != NULL) {
        gh_log_error(GH_LOG_EMERG, gh_conf_log(cf), 0,
            "unknown directive \"%.*s\" in %s:%u, did you mean \"%s\"?",
            len, (const char *) name->data, n->file, n->line, hint);
    } else {
        gh_log_error(GH_LOG_EMERG, gh_conf_log(cf), 0,
            "unknown directive \"%.*s\" in %s:%u",
            len, (const char *) name->data, n->file, n->line);
    }
    cf->errors++;
}


unsigned
gh_conf_check_unknown(gh_conf_t *cf, gh_conf_node_t *nodes)
{
    const gh_command_t *cmd;
    gh_conf_node_t     *n;
    gh_module_t        *m;
    unsigned            found = 0;

    for (n = nodes; n != NULL; n = n->next) {
        cmd = gh_modules_find_command(&n->args[0], 0, &m);
        if (cmd == NULL) {
            gh_conf_unknown(cf, n);
            found++;
        }

        /* an unknown block is still searched: its content is probably
         * ordinary directives under a misspelt `sever {` */
        if (n->children != NULL && (cmd == NULL || !(cmd->args & GH_CONF_RAW)))
        {
            found += gh_conf_check_unknown(cf, n->children);
        }
    }
    return found;
}


static bool
gh_conf_args_ok(const gh_command_t *cmd, size_t nargs)
{
    /* argument counts without the name: TAKE1 is bit 1, ... */
    static const unsigned take[] = {
        GH_CONF_NOARGS, GH_CONF_TAKE1, GH_CONF_TAKE2, GH_CONF_TAKE3,
        GH_CONF_TAKE4, GH_CONF_TAKE5, GH_CONF_TAKE6, GH_CONF_TAKE7
    };
    size_t n = nargs - 1;

    if (cmd->args & GH_CONF_ANY) {
        return true;
    }
    if (cmd->args & GH_CONF_FLAG) {
        return n == 1;
    }
    if (cmd->args & GH_CONF_1MORE) {
        return n >= 1;
    }
    if (cmd->args & GH_CONF_2MORE) {
        return n >= 2;
    }
    if (n >= gh_nelems(take)) {
        return false;
    }
    return (cmd->args & take[n]) != 0;
}


static void *
gh_conf_level(const gh_command_t *cmd, const gh_module_t *m,
    const gh_conf_ctx_t *ctx)
{
    void **confs;

    if (ctx == NULL) {
        return NULL;
    }
    switch (cmd->conf) {
    case GH_CONF_SRV_OFFSET:
        confs = ctx->srv_conf;
        break;
    case GH_CONF_LOC_OFFSET:
        confs = ctx->loc_conf;
        break;
    default:
        confs = ctx->main_conf;
        break;
    }
    return confs ? confs[m->index] : NULL;
}


/* one node; cf->node, cf->ctx_type and cf->ctx are set by the caller */
static gh_int_t
gh_conf_handle(gh_conf_t *cf, gh_conf_node_t *n, unsigned ctx_type,
    gh_conf_ctx_t *ctx)
{
    const gh_command_t *cmd;
    const char         *rv;
    gh_module_t        *m;
    bool                takes_block;
    int                 len;

    len = (int) gh_min(n->args[0].len, (size_t) GH_CONF_ERRSTR);

    cmd = gh_modules_find_command(&n->args[0], ctx_type, &m);
    if (cmd == NULL) {
        gh_conf_unknown(cf, n);
        return GH_ERROR;
    }

    if (!(cmd->ctx & ctx_type)) {
        gh_conf_error(cf, "\"%.*s\" directive is not allowed here", len,
            (const char *) n->args[0].data);
        return GH_ERROR;
    }

    takes_block = (cmd->args & (GH_CONF_BLOCK | GH_CONF_RAW)) != 0;
    if (takes_block && !n->block) {
        gh_conf_error(cf, "directive \"%.*s\" has no opening \"{\"", len,
            (const char *) n->args[0].data);
        return GH_ERROR;
    }
    if (!takes_block && n->block) {
        gh_conf_error(cf, "unexpected \"{\"");
        return GH_ERROR;
    }

    if (!gh_conf_args_ok(cmd, n->nargs)) {
        gh_conf_error(cf, "invalid number of arguments in \"%.*s\" directive",
            len, (const char *) n->args[0].data);
        return GH_ERROR;
    }

    if (cmd->set == NULL) {
        return GH_OK;
    }

    rv = cmd->set(cf, cmd, gh_conf_level(cmd, m, ctx));

    /* a block handler dispatched its children and moved cf->node */
    cf->node = n;

    if (rv == NULL) {
        return GH_OK;
    }
    if (rv != GH_CONF_ERROR) {
        gh_conf_error(cf, "\"%.*s\" directive %s", len,
            (const char *) n->args[0].data, rv);
    }
    return GH_ERROR;
}


gh_int_t
gh_conf_dispatch(gh_conf_t *cf, gh_conf_node_t *nodes, unsigned ctx_type,
    gh_conf_ctx_t *ctx)
{
    gh_conf_node_t *n, *saved_node;
    gh_conf_ctx_t  *saved_ctx;
    unsigned        saved_type;
    gh_int_t        rc = GH_OK;

    /* block handlers recurse through here: whatever they change, their
     * caller sees its own node and context again afterwards */
    saved_node = cf->node;
    saved_type = cf->ctx_type;
    saved_ctx = cf->ctx;

    for (n = nodes; n != NULL; n = n->next) {
        cf->node = n;
        cf->ctx_type = ctx_type;
        cf->ctx = ctx;

        rc = gh_conf_handle(cf, n, ctx_type, ctx);
        if (rc != GH_OK) {
            break;
        }
    }

    cf->node = saved_node;
    cf->ctx_type = saved_type;
    cf->ctx = saved_ctx;
    return rc;
}


char *
gh_conf_full_name(gh_conf_t *cf, const gh_str_t *name, bool conf)
{
    const char *base;
    char       *out;
    size_t      bl;
    bool        slash;

    base = conf ? (cf->conf_prefix ? cf->conf_prefix : cf->prefix)
                : cf->prefix;

    /* absolute, or no prefix to join: relative to the working directory */
    if ((name->len > 0 && name->data[0] == '/') || base == NULL
        || base[0] == '\0')
    {
        return gh_cstr(cf->arena, name);
    }

    bl = strlen(base);
    slash = base[bl - 1] != '/';
    out = gh_alloc_unaligned(cf->arena, bl + slash + name->len + 1);
    if (out == NULL) {
        return NULL;
    }
    memcpy(out, base, bl);
    if (slash) {
        out[bl] = '/';
    }
    if (name->len > 0) {
        memcpy(out + bl + slash, name->data, name->len);
    }
    out[bl + slash + name->len] = '\0';
    return out;
}


static void
gh_conf_write(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    ssize_t        n;

    while (len > 0) {
        n = write(fd, p, len);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            /* -T goes to a terminal or a pipe; nobody to tell */
            return;
        }
        p += n;
        len -= (size_t) n;
    }
}


void
gh_conf_dump(gh_conf_t *cf, int fd)
{
    gh_conf_file_t *f;
    size_t          i;

    for (i = 0; i < cf->files.nelts; i++) {
        f = gh_array_at(&cf->files, gh_conf_file_t, i);
        gh_conf_write(fd, "# configuration file ",
            sizeof("# configuration file ") - 1);
        gh_conf_write(fd, f->path, strlen(f->path));
        gh_conf_write(fd, ":\n", 2);
        gh_conf_write(fd, f->content.data, f->content.len);
        gh_conf_write(fd, "\n", 1);
    }
}
