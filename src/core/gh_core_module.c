/*
 * gh_core_module.c: the main-context directives (worker_processes, pid,
 * user, error_log, ...) and the events {} block.
 *
 * Both modules fill one gh_core_conf_t: the events module's "conf" is the
 * core module's structure (its create_core_conf hands it out), so that
 * events {} directives use the generic setters with offsetof() into it
 * and the process code finds every process-level setting in one place.
 * This relies on the core module coming first in gh_modules[].
 *
 * Differences from nginx, on purpose:
 *   - without a `user` directive the workers keep the master's user.
 *     nginx switches a root master's workers to "nobody"; doing that by
 *     default breaks the common case of files readable only by the user
 *     who started us, and is a surprise when testing as root.
 *   - worker_connections defaults to 1024 (nginx: 512).
 *   - worker_processes 0 is refused (nginx starts a master with no
 *     worker, which serves nothing), and so is more than 1024.
 *   - `use` accepts only epoll; accept_mutex is accepted and ignored,
 *     as listening sockets use EPOLLEXCLUSIVE instead; pcre_jit and env
 *     are accepted and ignored (regexes always use JIT; nothing we run
 *     reads the environment).  load_module is an error: there is no
 *     dynamic module loading.
 *   - an events {} block is not required (nginx refuses a configuration
 *     without one); its absence just means the defaults.
 */
#include "gh_core.h"
#include "gh_cycle.h"

#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

/* a typo such as "worker_processes 800" should not fork-bomb the host;
 * nginx's own process table holds 1024 */
#define GH_MAX_WORKER_PROCESSES 1024

static void *gh_core_create_conf(gh_conf_t *cf);
static const char *gh_core_init_conf(gh_conf_t *cf, void *conf);
static void *gh_events_create_conf(gh_conf_t *cf);

static const char *gh_core_set_worker_processes(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_core_set_positive(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_core_set_pid(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_core_set_user(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_core_set_error_log(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_core_set_ignored(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_core_set_unsupported(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_events_block(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_events_set_use(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);

#define MAIN   GH_MAIN_CONF
#define EVENTS GH_EVENTS_CONF

static const gh_command_t gh_core_commands[] = {
    { .name = "worker_processes", .ctx = MAIN, .args = GH_CONF_TAKE1,
      .set = gh_core_set_worker_processes },
    { .name = "daemon", .ctx = MAIN, .args = GH_CONF_FLAG,
      .set = gh_conf_set_flag, .offset = offsetof(gh_core_conf_t, daemon) },
    { .name = "master_process", .ctx = MAIN, .args = GH_CONF_FLAG,
      .set = gh_conf_set_flag, .offset = offsetof(gh_core_conf_t, master) },
    { .name = "pid", .ctx = MAIN, .args = GH_CONF_TAKE1,
      .set = gh_core_set_pid },
    { .name = "user", .ctx = MAIN, .args = GH_CONF_TAKE12,
      .set = gh_core_set_user },
    { .name = "worker_rlimit_nofile", .ctx = MAIN, .args = GH_CONF_TAKE1,
      .set = gh_core_set_positive,
      .offset = offsetof(gh_core_conf_t, worker_rlimit_nofile) },
    { .name = "worker_shutdown_timeout", .ctx = MAIN, .args = GH_CONF_TAKE1,
      .set = gh_conf_set_msec,
      .offset = offsetof(gh_core_conf_t, shutdown_timeout) },
    { .name = "error_log", .ctx = MAIN, .args = GH_CONF_1MORE,
      .set = gh_core_set_error_log },
    { .name = "pcre_jit", .ctx = MAIN, .args = GH_CONF_FLAG,
      .set = gh_conf_set_flag, .offset = offsetof(gh_core_conf_t, pcre_jit) },
    { .name = "env", .ctx = MAIN, .args = GH_CONF_TAKE1,
      .set = gh_core_set_ignored },
    { .name = "load_module", .ctx = MAIN, .args = GH_CONF_TAKE1,
      .set = gh_core_set_unsupported },
    GH_COMMAND_END
};

static const gh_command_t gh_events_commands[] = {
    { .name = "events", .ctx = MAIN, .args = GH_CONF_BLOCK | GH_CONF_NOARGS,
      .set = gh_events_block },
    { .name = "worker_connections", .ctx = EVENTS, .args = GH_CONF_TAKE1,
      .set = gh_core_set_positive,
      .offset = offsetof(gh_core_conf_t, worker_connections) },
    { .name = "use", .ctx = EVENTS, .args = GH_CONF_TAKE1,
      .set = gh_events_set_use },
    { .name = "multi_accept", .ctx = EVENTS, .args = GH_CONF_FLAG,
      .set = gh_conf_set_flag,
      .offset = offsetof(gh_core_conf_t, multi_accept) },
    { .name = "accept_mutex", .ctx = EVENTS, .args = GH_CONF_FLAG,
      .set = gh_core_set_ignored },
    { .name = "accept_mutex_delay", .ctx = EVENTS, .args = GH_CONF_TAKE1,
      .set = gh_core_set_ignored },
    GH_COMMAND_END
};

gh_module_t gh_core_module = {
    .name = "core",
    .commands = gh_core_commands,
    .create_core_conf = gh_core_create_conf,
    .init_core_conf = gh_core_init_conf,
};

gh_module_t gh_events_module = {
    .name = "events",
    .commands = gh_events_commands,
    .create_core_conf = gh_events_create_conf,
};


static void *
gh_core_create_conf(gh_conf_t *cf)
{
    gh_core_conf_t *ccf;

    ccf = gh_calloc(cf->arena, sizeof(gh_core_conf_t));
    if (ccf == NULL) {
        return NULL;
    }
    ccf->daemon = GH_UNSET;
    ccf->master = GH_UNSET;
    ccf->worker_processes = GH_UNSET;
    ccf->worker_connections = GH_UNSET;
    ccf->worker_rlimit_nofile = GH_UNSET;
    ccf->shutdown_timeout = GH_UNSET_MSEC;
    ccf->multi_accept = GH_UNSET;
    ccf->pcre_jit = GH_UNSET;
    /* pid, user, group, error_log_set: NULL / empty means unset */
    return ccf;
}


/* the same structure as the core module's: see the file header */
static void *
gh_events_create_conf(gh_conf_t *cf)
{
    return cf->cycle->core_confs[gh_core_module.index];
}


/* CPUs this process may run on: the affinity mask follows taskset and
 * cgroup cpusets, which the number of online CPUs does not */
static gh_int_t
gh_core_ncpu(void)
{
    cpu_set_t set;
    long      n;

    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        n = CPU_COUNT(&set);
        if (n > 0) {
            return n;
        }
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}


static const char *
gh_core_init_conf(gh_conf_t *cf, void *conf)
{
    gh_core_conf_t *ccf = conf;
    gh_str_t        pid = gh_string("logs/gatehouse.pid");

    GH_CONF_UNSET_INT(ccf->daemon, 1);
    GH_CONF_UNSET_INT(ccf->master, 1);
    GH_CONF_UNSET_INT(ccf->worker_processes, 1);
    GH_CONF_UNSET_INT(ccf->worker_connections, 1024);
    GH_CONF_UNSET_INT(ccf->multi_accept, 0);
    GH_CONF_UNSET_INT(ccf->pcre_jit, 0);
    /* worker_rlimit_nofile stays UNSET: leave the inherited limit alone */

    if (ccf->worker_processes == 0) {
        ccf->worker_processes = gh_min(gh_core_ncpu(),
            GH_MAX_WORKER_PROCESSES);
    }
    if (ccf->shutdown_timeout == GH_UNSET_MSEC) {
        ccf->shutdown_timeout = 0;      /* wait for every connection */
    }
    if (ccf->pid == NULL) {
        ccf->pid = gh_conf_full_name(cf, &pid, false);
        if (ccf->pid == NULL) {
            return "not enough memory for the configuration";
        }
    }
    return NULL;
}


/* `invalid value "X", why`, the wording of the generic setters; the
 * dispatcher puts "\"name\" directive" in front and file:line after */
static const char *
gh_core_invalid(gh_conf_t *cf, const gh_str_t *value, const char *why)
{
    char   *msg;
    size_t  n;
    int     len;

    len = (int) gh_min(value->len, (size_t) 256);
    n = sizeof("invalid value \"\", ") + (size_t) len + strlen(why);
    msg = gh_alloc_unaligned(cf->arena, n);
    if (msg == NULL) {
        return "invalid value";
    }
    snprintf(msg, n, "invalid value \"%.*s\", %s", len,
        (const char *) value->data, why);
    return msg;
}


static const char *
gh_core_set_worker_processes(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf)
{
    gh_core_conf_t *ccf = conf;
    gh_str_t       *value = &gh_conf_args(cf)[1];
    gh_int_t        n;

    if (ccf->worker_processes != GH_UNSET) {
        return "is duplicate";
    }
    if (gh_str_eq_c(value, "auto")) {
        ccf->worker_processes = 0;      /* resolved in init */
        return NULL;
    }
    n = gh_atoi(value->data, value->len);
    if (n < 1 || n > GH_MAX_WORKER_PROCESSES) {
        return gh_core_invalid(cf, value,
            "it must be \"auto\" or a number from 1 to 1024");
    }
    ccf->worker_processes = n;
    return NULL;
}


/* a gh_int_t that must be at least 1 (0 connections or 0 descriptors
 * would only fail later, and less clearly) */
static const char *
gh_core_set_positive(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *value = &gh_conf_args(cf)[1];
    gh_int_t *np = (gh_int_t *) (void *) ((uint8_t *) conf + cmd->offset);
    gh_int_t  n;

    if (*np != GH_UNSET) {
        return "is duplicate";
    }
    n = gh_atoi(value->data, value->len);
    if (n < 1 || n > INT32_MAX) {
        return gh_core_invalid(cf, value, "it must be greater than 0");
    }
    *np = n;
    return NULL;
}


static const char *
gh_core_set_pid(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_core_conf_t *ccf = conf;
    gh_str_t       *value = &gh_conf_args(cf)[1];

    if (ccf->pid != NULL) {
        return "is duplicate";
    }
    if (value->len == 0) {
        return "has an empty path";
    }
    ccf->pid = gh_conf_full_name(cf, value, false);
    if (ccf->pid == NULL) {
        return "cannot be stored: not enough memory";
    }
    return NULL;
}


/* names are resolved now, so that a typo is a configuration error with a
 * line number rather than a worker that dies at start */
static const char *
gh_core_set_user(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_core_conf_t *ccf = conf;
    gh_str_t       *args = gh_conf_args(cf);
    struct passwd  *pw;
    struct group   *gr;
    char           *user, *group;

    if (ccf->user.data != NULL) {
        return "is duplicate";
    }
    ccf->user = args[1];
    /* as nginx: the group defaults to the group of the user's name */
    ccf->group = cf->node->nargs == 3 ? args[2] : args[1];

    if (geteuid() != 0) {
        gh_conf_error_at(cf, GH_LOG_WARN, cf->node, "the \"user\" directive "
            "makes sense only if the master process runs with super-user "
            "privileges, ignored");
        return NULL;
    }

    user = gh_cstr(cf->arena, &ccf->user);
    group = gh_cstr(cf->arena, &ccf->group);
    if (user == NULL || group == NULL) {
        return "cannot be stored: not enough memory";
    }

    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        gh_conf_error(cf, "getpwnam(\"%s\") failed", user);
        return GH_CONF_ERROR;
    }
    ccf->user_uid = pw->pw_uid;

    errno = 0;
    gr = getgrnam(group);
    if (gr == NULL) {
        gh_conf_error(cf, "getgrnam(\"%s\") failed", group);
        return GH_CONF_ERROR;
    }
    ccf->user_gid = gr->gr_gid;
    ccf->switch_user = true;
    return NULL;
}


static const char *
gh_core_set_error_log(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_core_conf_t *ccf = conf;
    const char     *rv;

    rv = gh_conf_set_error_log(cf, &cf->cycle->new_log);
    if (rv == NULL && ccf->error_log_set.data == NULL) {
        ccf->error_log_set = gh_conf_args(cf)[1];
    }
    return rv;
}


/* known nginx directives that have no effect here (see the file
 * header); a flag still has to be on or off */
static const char *
gh_core_set_ignored(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *value = &gh_conf_args(cf)[1];

    if ((cmd->args & GH_CONF_FLAG) && !gh_str_caseeq_c(value, "on")
        && !gh_str_caseeq_c(value, "off"))
    {
        return gh_core_invalid(cf, value, "it must be \"on\" or \"off\"");
    }
    return NULL;
}


static const char *
gh_core_set_unsupported(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    return "is not supported";
}


static const char *
gh_events_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_core_conf_t *ccf = conf;

    if (ccf->events_set) {
        return "is duplicate";
    }
    ccf->events_set = true;

    /* same conf context as main: events {} only changes which directives
     * are allowed */
    if (gh_conf_dispatch(cf, cf->node->children, GH_EVENTS_CONF, cf->ctx)
        != GH_OK)
    {
        return GH_CONF_ERROR;
    }
    return NULL;
}


static const char *
gh_events_set_use(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *value = &gh_conf_args(cf)[1];

    if (!gh_str_eq_c(value, "epoll")) {
        gh_conf_error(cf, "invalid event type \"%.*s\"",
            (int) gh_min(value->len, (size_t) 256),
            (const char *) value->data);
        return GH_CONF_ERROR;
    }
    return NULL;
}


/* --- error_log --------------------------------------------------------- */

/*
 * error_log FILE [LEVEL], at any level that has one.  FILE is relative to
 * the prefix, or "stderr".  Repeating the directive adds sinks (each with
 * its own level) to the chain at *logp.  The file is opened at once, by
 * the master, as nginx does, so that -t finds an unwritable log and
 * workers inherit the descriptor whatever user they switch to.
 */
const char *
gh_conf_set_error_log(gh_conf_t *cf, gh_log_t **logp)
{
    gh_str_t      *args = gh_conf_args(cf);
    gh_log_file_t *file;
    gh_log_t      *log, **tail;
    const char    *path;
    int            level = GH_LOG_ERR, err;

    if (cf->node->nargs < 2 || cf->node->nargs > 3) {
        gh_conf_error(cf, "invalid number of arguments in \"error_log\" "
            "directive");
        return GH_CONF_ERROR;
    }
    if (args[1].len == 0) {
        return "has an empty file name";
    }
    if (args[1].len >= 7 && memcmp(args[1].data, "syslog:", 7) == 0) {
        return "does not support syslog";
    }
    if (args[1].len >= 7 && memcmp(args[1].data, "memory:", 7) == 0) {
        return "does not support memory buffers";
    }

    if (cf->node->nargs == 3) {
        level = gh_log_level_parse(&args[2]);
        if (level < 0) {
            gh_conf_error(cf, "invalid log level \"%.*s\"",
                (int) gh_min(args[2].len, (size_t) 64),
                (const char *) args[2].data);
            return GH_CONF_ERROR;
        }
    }

    if (gh_str_eq_c(&args[1], "stderr")) {
        path = "stderr";
    } else {
        path = gh_conf_full_name(cf, &args[1], false);
        if (path == NULL) {
            return "cannot be stored: not enough memory";
        }
    }

    file = gh_log_open_file(&cf->cycle->files, path);
    if (file == NULL) {
        err = errno;
        gh_conf_error(cf, "open() \"%s\" failed (%d: %s)", path, err,
            strerror(err));
        return GH_CONF_ERROR;
    }

    log = gh_calloc(cf->arena, sizeof(gh_log_t));
    if (log == NULL) {
        return "cannot be stored: not enough memory";
    }
    log->level = level;
    log->file = file;

    for (tail = logp; *tail != NULL; tail = &(*tail)->next) {
        /* append: the order of the directives is the order of sinks */
    }
    *tail = log;
    return NULL;
}
