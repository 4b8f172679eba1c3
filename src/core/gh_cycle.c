/*
 * gh_cycle.c: loading a configuration into a cycle, and handing listening
 * sockets from one cycle to the next.
 *
 * Load order (as nginx's ngx_init_cycle, minus what needs a master):
 *   parse the main file (includes expand in place), append -g
 *   -> create every module's core conf
 *   -> report every unknown directive of the whole tree at once
 *   -> dispatch the main context (http {} runs its own postconfiguration
 *      and pushes listening sockets into cycle->listening)
 *   -> each module's init_core_conf (defaults)
 *   -> the default error log if the configuration named none.
 * Sockets and shared zones are left to the caller, so -t and -s load the
 * same way without binding anything.
 *
 * Paths.  nginx compiles a prefix in; we have none, so:
 *   - the main config (-c, default "conf/gatehouse.conf") is taken
 *     relative to -p if given, else to the working directory;
 *   - conf_prefix is its directory: includes and certificates are
 *     relative to it;
 *   - the prefix (-p) defaults to the parent of that directory when the
 *     directory is called "conf" (the nginx layout: prefix/conf/,
 *     prefix/logs/), else to that directory itself; logs, the pid file
 *     and temp paths are relative to the prefix.
 *
 * Ownership of a listening fd: the cycle that opened it, until a newer
 * cycle takes it over (old entry keep=1, new entry inherited=1); a cycle
 * closes at free only the fds it still owns.
 */
#include "gh_core.h"
#include "gh_cycle.h"
#include "../event/gh_conn.h"

#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/un.h>
#include <unistd.h>

/* the configuration arena: one block holds a small config whole */
#define GH_CYCLE_ARENA_BLOCK (64 * 1024)

volatile gh_cycle_t *gh_cycle;


/* "base" + "name" (base ends in '/'), malloc'd */
static char *
gh_cycle_join(const char *base, const char *name)
{
    size_t bl = strlen(base), nl = strlen(name);
    char  *out;

    out = gh_xmalloc(bl + nl + 1);
    memcpy(out, base, bl);
    memcpy(out + bl, name, nl + 1);
    return out;
}


/* absolute, with a trailing '/', malloc'd; NULL if the cwd is unknown */
static char *
gh_cycle_dir(const char *dir)
{
    char   cwd[PATH_MAX], *out;
    size_t len;

    if (dir[0] == '/') {
        len = strlen(dir);
        out = gh_xmalloc(len + 2);
        memcpy(out, dir, len + 1);
    } else {
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            return NULL;
        }
        len = strlen(cwd) + 1 + strlen(dir);
        out = gh_xmalloc(len + 2);
        /* memcpy rather than snprintf: gcc's -Wformat-truncation cannot
         * see that len was computed from these very strings */
        size_t cl = strlen(cwd);
        memcpy(out, cwd, cl);
        out[cl] = '/';
        memcpy(out + cl + 1, dir, strlen(dir) + 1);
        /* "-p ." and "" name the cwd itself */
        if (strcmp(dir, ".") == 0 || dir[0] == '\0') {
            out[strlen(cwd) + 1] = '\0';
        }
    }
    len = strlen(out);
    if (len == 0 || out[len - 1] != '/') {
        out[len++] = '/';
        out[len] = '\0';
    }
    return out;
}


char *
gh_cycle_conf_name(const char *conf_file, const char *prefix)
{
    char *base, *out;

    if (conf_file[0] == '/') {
        return gh_xstrdup(conf_file);
    }
    base = gh_cycle_dir(prefix ? prefix : ".");
    if (base == NULL) {
        return gh_xstrdup(conf_file);
    }
    out = gh_cycle_join(base, conf_file);
    free(base);
    return out;
}


static char *
gh_cycle_strdup(gh_arena_t *a, const char *s)
{
    return (char *) gh_strdup_arena(a, (const uint8_t *) s, strlen(s));
}


/* conf_file, conf_prefix and prefix of the cycle, in its arena */
static gh_int_t
gh_cycle_paths(gh_cycle_t *cycle, const char *conf_file, const char *prefix,
    gh_log_t *log)
{
    char   *name, *dir = NULL, *slash;
    size_t  len;

    name = gh_cycle_conf_name(conf_file, prefix);
    if (name[0] != '/') {
        gh_log_error(GH_LOG_EMERG, log, errno, "getcwd() failed");
        free(name);
        return GH_ERROR;
    }
    cycle->conf_file = gh_cycle_strdup(cycle->arena, name);
    slash = strrchr(name, '/');
    slash[1] = '\0';                       /* name is now conf_prefix */
    cycle->conf_prefix = gh_cycle_strdup(cycle->arena, name);

    if (prefix != NULL) {
        dir = gh_cycle_dir(prefix);
        if (dir == NULL) {
            gh_log_error(GH_LOG_EMERG, log, errno, "getcwd() failed");
            free(name);
            return GH_ERROR;
        }
        cycle->prefix = gh_cycle_strdup(cycle->arena, dir);
    } else {
        /* ".../conf/" -> ".../" (see the file header) */
        len = strlen(name);
        if (len >= 6 && strcmp(name + len - 6, "/conf/") == 0) {
            name[len - 5] = '\0';
        }
        cycle->prefix = gh_cycle_strdup(cycle->arena, name);
    }

    free(dir);
    free(name);
    if (cycle->conf_file == NULL || cycle->conf_prefix == NULL
        || cycle->prefix == NULL)
    {
        gh_log_error(GH_LOG_EMERG, log, 0,
            "not enough memory for the configuration");
        return GH_ERROR;
    }
    return GH_OK;
}


/* error_log given nowhere in the main context: -e, else logs/error.log
 * in the prefix, at level error (nginx's default) */
static gh_int_t
gh_cycle_default_log(gh_cycle_t *cycle, gh_conf_t *cf)
{
    gh_log_file_t *file;
    gh_log_t      *log;
    gh_str_t       name;
    const char    *path;

    if (cycle->new_log != NULL) {
        return GH_OK;
    }

    path = cycle->error_log_path ? cycle->error_log_path : "logs/error.log";
    if (strcmp(path, "stderr") != 0) {
        name.data = (uint8_t *) path;
        name.len = strlen(path);
        path = gh_conf_full_name(cf, &name, false);
        if (path == NULL) {
            gh_conf_error_at(cf, GH_LOG_EMERG, NULL,
                "not enough memory for the configuration");
            return GH_ERROR;
        }
    }

    file = gh_log_open_file(&cycle->files, path);
    if (file == NULL) {
        gh_log_error(GH_LOG_EMERG, cf->log, errno, "open() \"%s\" failed",
            path);
        return GH_ERROR;
    }
    log = gh_calloc(cycle->arena, sizeof(gh_log_t));
    if (log == NULL) {
        gh_conf_error_at(cf, GH_LOG_EMERG, NULL,
            "not enough memory for the configuration");
        return GH_ERROR;
    }
    log->level = GH_LOG_ERR;
    log->file = file;
    cycle->new_log = log;
    return GH_OK;
}


static gh_int_t
gh_cycle_create_confs(gh_cycle_t *cycle, gh_conf_t *cf)
{
    gh_module_t *m;

    cycle->core_confs = gh_calloc(cycle->arena,
        (gh_modules_n + 1) * sizeof(void *));
    if (cycle->core_confs == NULL) {
        return GH_ERROR;
    }
    cycle->main_ctx.main_conf = cycle->core_confs;

    /* in module order: the events module hands out the core module's
     * structure, created just before */
    for (gh_uint_t i = 0; gh_modules[i] != NULL; i++) {
        m = gh_modules[i];
        if (m->create_core_conf == NULL) {
            continue;
        }
        cycle->core_confs[m->index] = m->create_core_conf(cf);
        if (cycle->core_confs[m->index] == NULL) {
            return GH_ERROR;
        }
    }
    return GH_OK;
}


static gh_int_t
gh_cycle_init_confs(gh_cycle_t *cycle, gh_conf_t *cf)
{
    const char  *rv;
    gh_module_t *m;

    for (gh_uint_t i = 0; gh_modules[i] != NULL; i++) {
        m = gh_modules[i];
        if (m->init_core_conf == NULL) {
            continue;
        }
        rv = m->init_core_conf(cf, cycle->core_confs[m->index]);
        if (rv == NULL) {
            continue;
        }
        if (rv != GH_CONF_ERROR) {
            gh_conf_error_at(cf, GH_LOG_EMERG, NULL, "%s", rv);
        }
        return GH_ERROR;
    }
    return GH_OK;
}


/* the main file, then -g appended to the main context as nginx does (so
 * a -g directive that the file also has is a duplicate) */
static gh_int_t
gh_cycle_parse(gh_cycle_t *cycle, gh_conf_t *cf, gh_conf_node_t **nodes)
{
    gh_conf_node_t *extra, **tail;

    if (gh_conf_parse_file(cf, cycle->conf_file, nodes) != GH_OK) {
        return GH_ERROR;
    }
    if (cycle->conf_param == NULL) {
        return GH_OK;
    }
    if (gh_conf_parse_string(cf, "command line",
            (const uint8_t *) cycle->conf_param, strlen(cycle->conf_param),
            &extra) != GH_OK)
    {
        return GH_ERROR;
    }
    for (tail = nodes; *tail != NULL; tail = &(*tail)->next) {
        /* to the end of the main list */
    }
    *tail = extra;
    return GH_OK;
}


gh_cycle_t *
gh_cycle_load(const char *conf_file, const char *prefix,
    const char *conf_param, const char *error_log_path, gh_log_t *log,
    gh_cycle_t *old)
{
    gh_conf_node_t *nodes = NULL;
    gh_cycle_t     *cycle;
    gh_arena_t     *arena;
    gh_conf_t      *cf;

    arena = gh_arena_create(GH_CYCLE_ARENA_BLOCK, 0);
    cycle = arena ? gh_calloc(arena, sizeof(gh_cycle_t)) : NULL;
    cf = cycle ? gh_calloc(arena, sizeof(gh_conf_t)) : NULL;
    if (cf == NULL) {
        gh_log_error(GH_LOG_EMERG, log, 0,
            "not enough memory for the configuration");
        if (arena) {
            gh_arena_destroy(arena);
        }
        return NULL;
    }
    cycle->arena = arena;
    cycle->generation = old ? old->generation + 1 : 0;
    if (gh_array_init(&cycle->listening, arena, 4, sizeof(gh_listening_t))
        != GH_OK)
    {
        gh_log_error(GH_LOG_EMERG, log, 0,
            "not enough memory for the configuration");
        goto failed;
    }

    if (gh_cycle_paths(cycle, conf_file, prefix, log) != GH_OK) {
        goto failed;
    }
    if (conf_param != NULL) {
        cycle->conf_param = gh_cycle_strdup(arena, conf_param);
    }
    if (error_log_path != NULL) {
        cycle->error_log_path = gh_cycle_strdup(arena, error_log_path);
    }

    gh_conf_init(cf, cycle, arena, log);
    cf->conf_prefix = cycle->conf_prefix;
    cf->prefix = cycle->prefix;
    cycle->conf = cf;

    if (gh_cycle_parse(cycle, cf, &nodes) != GH_OK) {
        goto failed;
    }
    if (gh_cycle_create_confs(cycle, cf) != GH_OK) {
        gh_conf_error_at(cf, GH_LOG_EMERG, NULL,
            "not enough memory for the configuration");
        goto failed;
    }
    if (gh_conf_check_unknown(cf, nodes) > 0) {
        goto failed;
    }
    if (gh_conf_dispatch(cf, nodes, GH_MAIN_CONF, &cycle->main_ctx)
        != GH_OK)
    {
        goto failed;
    }
    if (gh_cycle_init_confs(cycle, cf) != GH_OK) {
        goto failed;
    }
    if (gh_cycle_default_log(cycle, cf) != GH_OK) {
        goto failed;
    }
    /* a handler that logged an error but let parsing go on */
    if (cf->errors > 0) {
        goto failed;
    }
    cycle->log = cycle->new_log;

    /* listening sockets made while reading http {} may have been given
     * the log in use before error_log was known */
    for (size_t i = 0; i < cycle->listening.nelts; i++) {
        gh_listening_t *ls = gh_array_at(&cycle->listening, gh_listening_t, i);

        if (ls->log == NULL || ls->log == log) {
            ls->log = cycle->log;
        }
    }
    return cycle;

failed:
    gh_cycle_free(cycle);
    return NULL;
}


void
gh_cycle_free(gh_cycle_t *cycle)
{
    gh_listening_t *ls;

    if (cycle == NULL) {
        return;
    }
    for (size_t i = 0; i < cycle->listening.nelts; i++) {
        ls = gh_array_at(&cycle->listening, gh_listening_t, i);
        if (ls->fd >= 0 && !ls->keep) {
            close(ls->fd);
            ls->fd = -1;
        }
    }
    gh_log_files_close(cycle->files);
    cycle->files = NULL;
    if (gh_cycle == cycle) {
        gh_cycle = NULL;
    }
    gh_arena_destroy(cycle->arena);
}


/* --- listening sockets -------------------------------------------------- */

/* byte comparison of whole sockaddr_storage would see padding and
 * sin_zero; compare what the kernel binds to */
static bool
gh_cycle_same_addr(const gh_listening_t *a, const gh_listening_t *b)
{
    const struct sockaddr *sa = (const struct sockaddr *) &a->sockaddr;
    const struct sockaddr *sb = (const struct sockaddr *) &b->sockaddr;

    if (sa->sa_family != sb->sa_family) {
        return false;
    }
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *x = (const void *) sa, *y = (const void *) sb;

        return x->sin_port == y->sin_port
            && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *x = (const void *) sa,
                                  *y = (const void *) sb;

        return x->sin6_port == y->sin6_port
            && x->sin6_scope_id == y->sin6_scope_id
            && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr))
               == 0;
    }
    case AF_UNIX: {
        const struct sockaddr_un *x = (const void *) sa, *y = (const void *) sb;

        return strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
    }
    default:
        return a->socklen == b->socklen
            && memcmp(sa, sb, a->socklen) == 0;
    }
}


static gh_listening_t *
gh_cycle_find_listening(gh_cycle_t *old, const gh_listening_t *ls)
{
    gh_listening_t *ols;

    for (size_t i = 0; i < old->listening.nelts; i++) {
        ols = gh_array_at(&old->listening, gh_listening_t, i);
        /* a socket bound without SO_REUSEPORT cannot be shared with one
         * that wants it (or the reverse): such a change opens anew */
        if (ols->fd >= 0 && !ols->keep && ols->reuseport == ls->reuseport
            && ols->worker == ls->worker && gh_cycle_same_addr(ols, ls))
        {
            return ols;
        }
    }
    return NULL;
}


gh_int_t
gh_cycle_open_listening(gh_cycle_t *cycle, gh_cycle_t *old)
{
    gh_listening_t *ls, *ols;
    size_t          i;

    if (old != NULL) {
        for (i = 0; i < old->listening.nelts; i++) {
            gh_array_at(&old->listening, gh_listening_t, i)->keep = 0;
        }
    }

    for (i = 0; i < cycle->listening.nelts; i++) {
        ls = gh_array_at(&cycle->listening, gh_listening_t, i);
        ls->keep = 0;

        ols = old ? gh_cycle_find_listening(old, ls) : NULL;
        if (ols != NULL) {
            /* the same socket keeps its accept queue across a reload:
             * no connection is refused while workers change */
            ls->fd = ols->fd;
            ls->nodelay = ols->nodelay;
            ls->inherited = 1;
            ols->keep = 1;
            continue;
        }
        ls->inherited = 0;
        ls->fd = -1;
        if (gh_listening_open(ls, cycle->log) != GH_OK) {
            goto failed;
        }
    }
    return GH_OK;

failed:
    /* undo: the old cycle keeps running with all of its sockets */
    for (size_t j = 0; j < i; j++) {
        ls = gh_array_at(&cycle->listening, gh_listening_t, j);
        if (!ls->inherited && ls->fd >= 0) {
            close(ls->fd);
        }
        ls->fd = -1;
        ls->inherited = 0;
    }
    if (old != NULL) {
        for (size_t j = 0; j < old->listening.nelts; j++) {
            gh_array_at(&old->listening, gh_listening_t, j)->keep = 0;
        }
    }
    return GH_ERROR;
}
