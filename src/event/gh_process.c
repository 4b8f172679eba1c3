/*
 * gh_process.c: master and worker processes.
 *
 * Master: a sigsuspend() loop.  Every signal it handles is blocked except
 * inside sigsuspend(), so a handler only sets a flag, and the flags are
 * acted on between two waits, never in the middle of something else.
 *
 *   start --spawn N--> running --HUP--> load the config into a new cycle
 *                         |               ok: spawn N new workers, QUIT
 *                         |                   the old ones
 *                         |               failed: keep everything as is
 *                         |--CHLD--> reap; a current worker that died
 *                         |          unasked is replaced at once with the
 *                         |          same index (unless it exited with 2:
 *                         |          it could not start, retrying won't
 *                         |          help)
 *                         |--USR1--> reopen logs, forward USR1
 *                         |--QUIT--> quitting: QUIT every worker
 *                         '--TERM/INT--> terminating: TERM every worker,
 *                                        KILL what is left after 1.5s
 *   quitting/terminating and no worker left: remove the pid file, exit 0
 *
 * Worker: the epoll loop.  Signals are read from a signalfd registered in
 * the loop, so a signal wakes epoll_wait() with no race between checking
 * a flag and going to sleep.
 *
 *   running --QUIT--> shutting down: close the listening sockets, then
 *             |       close idle connections each iteration (HTTP/2 ones
 *             |       say GOAWAY and finish their streams); exit when
 *             |       no connection and no non-cancelable timer is left,
 *             |       or when worker_shutdown_timeout has passed
 *             '--TERM/INT--> exit now
 *
 * Each worker remembers the cycle it runs.  After a reload the old
 * workers finish on the old cycle; the master frees that cycle when its
 * last worker has been reaped.
 */
#include "gh_process.h"
#include "gh_conn.h"
#include "gh_splice.h"

#include <fcntl.h>
#include <grp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* fast shutdown: how long workers get to exit on TERM before KILL (what
 * nginx's doubling delays add up to) */
#define GH_TERMINATE_KILL_MSEC 1500

/* exit status of a worker that cannot start (bad user, init_process
 * failed): the master does not respawn it, as nginx */
#define GH_WORKER_FATAL 2

extern char **environ;

typedef struct {
    pid_t        pid;        /* 0: free slot */
    gh_uint_t    index;      /* worker_index, kept on respawn */
    gh_cycle_t  *cycle;      /* the configuration it runs */
    bool         exiting;    /* asked to stop: never respawned */
} gh_worker_t;

/* master state */
static gh_worker_t  *gh_workers;
static size_t        gh_nworkers;         /* slots in use or free */
static gh_cycle_t  **gh_old_cycles;       /* waiting for their workers */
static size_t        gh_nold;
static gh_cycle_t   *gh_master_cycle;     /* the current configuration */
static pid_t         gh_master_pid;
static bool          gh_quitting;
static bool          gh_terminating;

static volatile sig_atomic_t gh_sig_reap;
static volatile sig_atomic_t gh_sig_reconfigure;
static volatile sig_atomic_t gh_sig_reopen;
static volatile sig_atomic_t gh_sig_quit;
static volatile sig_atomic_t gh_sig_terminate;
static volatile sig_atomic_t gh_sig_alarm;

/* worker state; set by the signalfd handler inside the loop */
static gh_conn_t     gh_sigconn;
static bool          gh_w_quit;
static bool          gh_w_terminate;
static bool          gh_w_reopen;
static bool          gh_w_reload;

/* process titles */
static char         *gh_title_start;
static char         *gh_title_end;
static char         *gh_cmdline;

static void gh_worker_process(gh_cycle_t *cycle, gh_uint_t index)
    __attribute__((noreturn));


/* --- process titles ----------------------------------------------------- */

void
gh_proctitle_init(int argc, char **argv)
{
    char   *end, **env, *p;
    size_t  n = 0, len = 0;
    int     i;

    if (argc < 1 || argv[0] == NULL) {
        return;
    }

    /* the argv strings, then the environment strings, are one contiguous
     * area; once both are copied elsewhere the title may use all of it */
    end = argv[0];
    for (i = 0; i < argc; i++) {
        if (argv[i] == end) {
            end = argv[i] + strlen(argv[i]) + 1;
        }
        len += strlen(argv[i]) + 1;
    }
    for (i = 0; environ != NULL && environ[i] != NULL; i++) {
        if (environ[i] == end) {
            end = environ[i] + strlen(environ[i]) + 1;
        }
        n++;
    }

    /* "master process <command line>", as nginx shows it */
    gh_cmdline = gh_xmalloc(len + 1);
    p = gh_cmdline;
    for (i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);

        memcpy(p, argv[i], l);
        p += l;
        *p++ = i + 1 < argc ? ' ' : '\0';
    }
    *p = '\0';

    env = gh_xcalloc(n + 1, sizeof(char *));
    for (i = 0; (size_t) i < n; i++) {
        env[i] = gh_xstrdup(environ[i]);
    }
    environ = env;

    gh_title_start = argv[0];
    gh_title_end = end;
    for (i = 0; i < argc; i++) {
        argv[i] = gh_xstrdup(argv[i]);
    }
}


void
gh_proctitle_set(const char *title)
{
    size_t size;
    int    n;

    if (gh_title_start == NULL || gh_title_end - gh_title_start < 2) {
        return;
    }
    size = (size_t) (gh_title_end - gh_title_start);
    n = snprintf(gh_title_start, size, "%s: %s", GH_NAME, title);
    if (n < 0) {
        return;
    }
    /* the rest is zeroed so that ps does not show leftovers of argv */
    n = (int) gh_min((size_t) n, size - 1);
    memset(gh_title_start + n, 0, size - (size_t) n);
}


/* --- daemon and pid file ------------------------------------------------ */

gh_int_t
gh_daemonize(gh_log_t *log)
{
    int fd;

    switch (fork()) {
    case -1:
        gh_log_error(GH_LOG_EMERG, log, errno, "fork() failed");
        return GH_ERROR;
    case 0:
        break;
    default:
        /* _exit: the parent must not run atexit handlers of state that
         * now belongs to the child */
        _exit(0);
    }

    if (setsid() == -1) {
        gh_log_error(GH_LOG_EMERG, log, errno, "setsid() failed");
        return GH_ERROR;
    }

    /* the umask is left alone: files are created with explicit modes */
    fd = open("/dev/null", O_RDWR);
    if (fd == -1) {
        gh_log_error(GH_LOG_EMERG, log, errno,
            "open(\"/dev/null\") failed");
        return GH_ERROR;
    }
    for (int i = STDIN_FILENO; i <= STDERR_FILENO; i++) {
        if (dup2(fd, i) == -1) {
            gh_log_error(GH_LOG_EMERG, log, errno, "dup2(%d) failed", i);
            return GH_ERROR;
        }
    }
    if (fd > STDERR_FILENO) {
        close(fd);
    }
    return GH_OK;
}


gh_int_t
gh_pidfile_write(const char *path, gh_log_t *log)
{
    char buf[32];
    int  fd, n;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        gh_log_error(GH_LOG_EMERG, log, errno, "open() \"%s\" failed", path);
        return GH_ERROR;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
    if (write(fd, buf, (size_t) n) != n) {
        gh_log_error(GH_LOG_EMERG, log, errno, "write() to \"%s\" failed",
            path);
        close(fd);
        return GH_ERROR;
    }
    if (close(fd) == -1) {
        gh_log_error(GH_LOG_EMERG, log, errno, "close() \"%s\" failed", path);
        return GH_ERROR;
    }
    return GH_OK;
}


void
gh_pidfile_remove(const char *path, gh_log_t *log)
{
    if (unlink(path) == -1 && errno != ENOENT) {
        gh_log_error(GH_LOG_ALERT, log, errno, "unlink() \"%s\" failed",
            path);
    }
}


/* --- -s signal ---------------------------------------------------------- */

static const struct {
    const char *name;
    int         signo;
} gh_signal_names[] = {
    { "stop", SIGTERM },
    { "quit", SIGQUIT },
    { "reopen", SIGUSR1 },
    { "reload", SIGHUP },
};


static int
gh_signal_number(const char *name)
{
    for (size_t i = 0; i < gh_nelems(gh_signal_names); i++) {
        if (strcmp(name, gh_signal_names[i].name) == 0) {
            return gh_signal_names[i].signo;
        }
    }
    return 0;
}


gh_int_t
gh_signal_check(const char *name)
{
    return gh_signal_number(name) ? GH_OK : GH_ERROR;
}


int
gh_signal_process(gh_cycle_t *cycle, const char *name)
{
    const char *path = gh_core_conf(cycle)->pid;
    char        buf[32];
    ssize_t     n;
    gh_int_t    pid;
    int         fd, signo;

    signo = gh_signal_number(name);
    if (signo == 0) {
        gh_log_error(GH_LOG_EMERG, cycle->log, 0, "invalid option: \"-s %s\"",
            name);
        return 1;
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        gh_log_error(GH_LOG_ERR, cycle->log, errno, "open() \"%s\" failed",
            path);
        return 1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    if (n == -1) {
        gh_log_error(GH_LOG_ALERT, cycle->log, errno, "read() \"%s\" failed",
            path);
        close(fd);
        return 1;
    }
    close(fd);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'
                     || buf[n - 1] == ' '))
    {
        n--;
    }
    pid = gh_atoi((const uint8_t *) buf, (size_t) n);
    if (pid <= 0 || pid > INT32_MAX) {
        gh_log_error(GH_LOG_ERR, cycle->log, 0,
            "invalid PID number \"%.*s\" in \"%s\"", (int) n, buf, path);
        return 1;
    }

    if (kill((pid_t) pid, signo) == -1) {
        gh_log_error(GH_LOG_ALERT, cycle->log, errno, "kill(%ld, %d) failed",
            (long) pid, signo);
        return 1;
    }
    return 0;
}


/* --- worker -------------------------------------------------------------- */

/* the signalfd is edge-triggered like every conn: read until EAGAIN */
static void
gh_worker_signal_read(gh_event_t *ev)
{
    gh_conn_t               *c = ev->data;
    struct signalfd_siginfo  si;
    ssize_t                  n;

    for (;;) {
        n = read(c->fd, &si, sizeof(si));
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n != (ssize_t) sizeof(si)) {
            ev->ready = 0;
            return;
        }
        switch (si.ssi_signo) {
        case SIGQUIT:
            gh_w_quit = true;
            break;
        case SIGTERM:
        case SIGINT:
            gh_w_terminate = true;
            break;
        case SIGUSR1:
            gh_w_reopen = true;
            break;
        case SIGHUP:
            gh_w_reload = true;
            break;
        default:
            break;
        }
    }
}


static gh_int_t
gh_worker_signals_init(gh_cycle_t *cycle, gh_loop_t *loop)
{
    static const int  wanted[] = { SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGHUP };
    struct sigaction  sa;
    sigset_t          set;
    int               fd;

    /* the master's handlers are of no use here */
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);

    sigemptyset(&set);
    for (size_t i = 0; i < gh_nelems(wanted); i++) {
        sigaddset(&set, wanted[i]);
    }
    /* blocked signals stay pending for the signalfd; those that arrived
     * between fork and here were already blocked and are not lost */
    if (sigprocmask(SIG_SETMASK, &set, NULL) == -1) {
        gh_log_error(GH_LOG_EMERG, cycle->log, errno,
            "sigprocmask() failed");
        return GH_ERROR;
    }
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd == -1) {
        gh_log_error(GH_LOG_EMERG, cycle->log, errno, "signalfd() failed");
        return GH_ERROR;
    }

    /* a bare gh_conn_t, not one from gh_conn_get(): it must not count
     * as an active connection, or a quitting worker would never exit */
    memset(&gh_sigconn, 0, sizeof(gh_sigconn));
    gh_sigconn.fd = fd;
    gh_sigconn.log = *cycle->log;
    gh_sigconn.read.data = &gh_sigconn;
    gh_sigconn.read.handler = gh_worker_signal_read;
    gh_sigconn.write.data = &gh_sigconn;
    gh_sigconn.write.write = 1;
    if (gh_loop_add_conn(loop, &gh_sigconn) != GH_OK) {
        close(fd);
        return GH_ERROR;
    }
    return GH_OK;
}


static gh_int_t
gh_worker_limits(gh_cycle_t *cycle, bool switch_user)
{
    gh_core_conf_t *ccf = gh_core_conf(cycle);
    struct rlimit   rl;
    char           *user;

    if (ccf->worker_rlimit_nofile != GH_UNSET) {
        rl.rlim_cur = (rlim_t) ccf->worker_rlimit_nofile;
        rl.rlim_max = (rlim_t) ccf->worker_rlimit_nofile;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            gh_log_error(GH_LOG_ALERT, cycle->log, errno,
                "setrlimit(RLIMIT_NOFILE, %ld) failed",
                (long) ccf->worker_rlimit_nofile);
        }
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        && (rlim_t) ccf->worker_connections > rl.rlim_cur)
    {
        gh_log_error(GH_LOG_WARN, cycle->log, 0,
            "%ld worker_connections exceed open file resource limit: %ld",
            (long) ccf->worker_connections, (long) rl.rlim_cur);
    }

    if (!switch_user || !ccf->switch_user || geteuid() != 0) {
        return GH_OK;
    }
    user = gh_cstr(cycle->arena, &ccf->user);
    if (user == NULL) {
        return GH_ERROR;
    }
    /* group first: once the uid is gone, so is the right to change it */
    if (setgid(ccf->user_gid) == -1) {
        gh_log_error(GH_LOG_EMERG, cycle->log, errno, "setgid(%ld) failed",
            (long) ccf->user_gid);
        return GH_ERROR;
    }
    if (initgroups(user, ccf->user_gid) == -1) {
        gh_log_error(GH_LOG_EMERG, cycle->log, errno,
            "initgroups(%s, %ld) failed", user, (long) ccf->user_gid);
        return GH_ERROR;
    }
    if (setuid(ccf->user_uid) == -1) {
        gh_log_error(GH_LOG_EMERG, cycle->log, errno, "setuid(%ld) failed",
            (long) ccf->user_uid);
        return GH_ERROR;
    }
    return GH_OK;
}


static gh_int_t
gh_worker_listen(gh_cycle_t *cycle, gh_loop_t *loop)
{
    gh_core_conf_t *ccf = gh_core_conf(cycle);
    gh_listening_t *ls;

    if ((gh_uint_t) ccf->worker_connections <= cycle->listening.nelts) {
        gh_log_error(GH_LOG_EMERG, cycle->log, 0,
            "%ld worker_connections are not enough for %zu listening "
            "sockets", (long) ccf->worker_connections,
            cycle->listening.nelts);
        return GH_ERROR;
    }

    for (size_t i = 0; i < cycle->listening.nelts; i++) {
        ls = gh_array_at(&cycle->listening, gh_listening_t, i);
        if (ls->fd < 0) {
            continue;
        }
        /* a reuseport socket per worker: the others' copies are of no
         * use here and would keep their queues from draining elsewhere */
        if (ls->reuseport && ls->worker >= 0
            && (gh_uint_t) ls->worker != cycle->worker_index)
        {
            close(ls->fd);
            ls->fd = -1;
            continue;
        }
        if (gh_listening_add(loop, ls) != GH_OK) {
            return GH_ERROR;        /* logged */
        }
    }
    return GH_OK;
}


/* everything a worker (or the single process) needs before its loop */
static gh_int_t
gh_worker_init(gh_cycle_t *cycle, bool switch_user)
{
    gh_core_conf_t *ccf = gh_core_conf(cycle);
    gh_loop_t      *loop;

    gh_cycle = cycle;
    gh_time_update();
#ifdef __GLIBC__
    /* the worker gives its free heap back itself, from a timer once the
     * load drops (gh_http_trim); glibc's own trim on free() would shrink
     * the heap's top after every large body only for the next one to grow
     * it again (a brk() per 1 MiB POST held in memory).  Setting the trim
     * threshold fixes the mmap threshold too (no more dynamic raise), so
     * that one is set to glibc's own ceiling: below it, a buffer freed
     * and taken again reuses heap pages instead of an mmap/munmap pair
     * and a page fault per page. */
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
#endif

    if (gh_worker_limits(cycle, switch_user) != GH_OK) {
        return GH_ERROR;
    }

    loop = gh_loop_create(512, cycle->log);
    if (loop == NULL) {
        gh_log_error(GH_LOG_EMERG, cycle->log, errno,
            "cannot create the event loop");
        return GH_ERROR;
    }
    cycle->loop = loop;
    gh_conns.max = (gh_uint_t) ccf->worker_connections;

    if (gh_worker_signals_init(cycle, loop) != GH_OK
        || gh_worker_listen(cycle, loop) != GH_OK)
    {
        return GH_ERROR;
    }

    for (gh_uint_t i = 0; gh_modules[i] != NULL; i++) {
        if (gh_modules[i]->init_process != NULL
            && gh_modules[i]->init_process(cycle) != GH_OK)
        {
            gh_log_error(GH_LOG_EMERG, cycle->log, 0,
                "%s module failed to initialize the process",
                gh_modules[i]->name);
            return GH_ERROR;
        }
    }
    return GH_OK;
}


static void
gh_worker_quit_start(gh_cycle_t *cycle)
{
    gh_listening_t *ls;

    gh_conns.quitting = true;
    gh_proctitle_set("worker process is shutting down");
    gh_log_error(GH_LOG_NOTICE, cycle->log, 0, "gracefully shutting down");

    /* no new connections: the kernel hands them to the new workers (or
     * refuses them once every process has closed the socket) */
    for (size_t i = 0; i < cycle->listening.nelts; i++) {
        ls = gh_array_at(&cycle->listening, gh_listening_t, i);
        if (ls->conn != NULL) {
            gh_conn_close(ls->conn);
            ls->conn = NULL;
            ls->fd = -1;
        }
    }
    gh_conn_release_closed();
}


static void
gh_worker_exit(gh_cycle_t *cycle)
{
    for (gh_uint_t i = 0; gh_modules[i] != NULL; i++) {
        if (gh_modules[i]->exit_process != NULL) {
            gh_modules[i]->exit_process(cycle);
        }
    }
    gh_splice_cache_drop();
    gh_log_error(GH_LOG_NOTICE, cycle->log, 0, "exit");
}


/* the loop until told to stop; returns the exit status */
static int
gh_worker_run(gh_cycle_t *cycle, bool single)
{
    gh_core_conf_t *ccf = gh_core_conf(cycle);
    gh_loop_t      *loop = cycle->loop;
    gh_msec_t       deadline = 0, wait;
    int             rc = 0;

    for (;;) {
        wait = -1;
        if (gh_conns.quitting) {
            /* keep-alive connections that became idle since the last
             * round are closed too */
            gh_conn_close_idle();
            gh_conn_release_closed();
            if (gh_conns.active == 0
                && gh_timer_pending_noncancelable(loop) == 0)
            {
                break;
            }
            if (deadline != 0 && gh_current_msec >= deadline) {
                gh_log_error(GH_LOG_NOTICE, cycle->log, 0,
                    "worker_shutdown_timeout expired, closing %lu "
                    "connections", (unsigned long) gh_conns.active);
                break;
            }
            /* woken at least once a second to look at the above */
            wait = 1000;
            if (deadline != 0) {
                wait = gh_min(wait, deadline - gh_current_msec);
            }
        }

        if (gh_loop_run_once(loop, wait) != GH_OK) {
            /* epoll itself failed: a fresh worker is the best bet */
            rc = 1;
            break;
        }

        if (gh_w_terminate) {
            break;
        }
        if (gh_w_quit && !gh_conns.quitting) {
            gh_worker_quit_start(cycle);
            if (ccf->shutdown_timeout > 0) {
                deadline = gh_current_msec + ccf->shutdown_timeout;
            }
        }
        if (gh_w_reopen) {
            gh_w_reopen = false;
            gh_log_error(GH_LOG_NOTICE, cycle->log, 0, "reopening logs");
            gh_log_reopen(cycle->files);
        }
        if (gh_w_reload) {
            gh_w_reload = false;
            if (single) {
                gh_log_error(GH_LOG_NOTICE, cycle->log, 0, "reload is not "
                    "supported with \"master_process off\", ignored");
            }
        }
    }

    gh_worker_exit(cycle);
    return rc;
}


static void
gh_worker_process(gh_cycle_t *cycle, gh_uint_t index)
{
    cycle->worker_index = index;
    gh_proctitle_set("worker process");

    /* a worker outliving a killed master would hold the ports and serve
     * an old configuration forever; the TERM arrives on the signalfd */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != gh_master_pid)
    {
        exit(0);
    }

    if (gh_worker_init(cycle, true) != GH_OK) {
        exit(GH_WORKER_FATAL);
    }
    exit(gh_worker_run(cycle, false));
}


int
gh_single_process_cycle(gh_cycle_t *cycle)
{
    int rc = 1;

    cycle->worker_index = 0;
    /* as nginx: no user switch when the one process is also the master */
    if (gh_worker_init(cycle, false) == GH_OK) {
        rc = gh_worker_run(cycle, true);
    }
    gh_pidfile_remove(gh_core_conf(cycle)->pid, cycle->log);
    return rc;
}


/* --- master -------------------------------------------------------------- */

static void
gh_master_signal(int signo)
{
    int saved = errno;

    switch (signo) {
    case SIGCHLD:
        gh_sig_reap = 1;
        break;
    case SIGHUP:
        gh_sig_reconfigure = 1;
        break;
    case SIGQUIT:
        gh_sig_quit = 1;
        break;
    case SIGTERM:
    case SIGINT:
        gh_sig_terminate = 1;
        break;
    case SIGUSR1:
        gh_sig_reopen = 1;
        break;
    case SIGALRM:
        gh_sig_alarm = 1;
        break;
    default:
        break;
    }
    errno = saved;
}


static gh_int_t
gh_master_signals_init(gh_log_t *log)
{
    static const int  handled[] = {
        SIGCHLD, SIGHUP, SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGALRM
    };
    /* USR2 (binary upgrade) and WINCH (stop workers) are nginx features
     * we do not have; ignored rather than fatal */
    static const int  ignored[] = { SIGPIPE, SIGUSR2, SIGWINCH };
    struct sigaction  sa;
    sigset_t          set;

    sigemptyset(&set);
    for (size_t i = 0; i < gh_nelems(handled); i++) {
        sigaddset(&set, handled[i]);
    }
    if (sigprocmask(SIG_BLOCK, &set, NULL) == -1) {
        gh_log_error(GH_LOG_EMERG, log, errno, "sigprocmask() failed");
        return GH_ERROR;
    }

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NOCLDSTOP;
    sa.sa_handler = gh_master_signal;
    for (size_t i = 0; i < gh_nelems(handled); i++) {
        if (sigaction(handled[i], &sa, NULL) == -1) {
            gh_log_error(GH_LOG_EMERG, log, errno, "sigaction(%d) failed",
                handled[i]);
            return GH_ERROR;
        }
    }
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    for (size_t i = 0; i < gh_nelems(ignored); i++) {
        sigaction(ignored[i], &sa, NULL);
    }
    return GH_OK;
}


static gh_worker_t *
gh_master_slot(void)
{
    for (size_t i = 0; i < gh_nworkers; i++) {
        if (gh_workers[i].pid == 0) {
            return &gh_workers[i];
        }
    }
    gh_workers = gh_xrealloc(gh_workers,
        (gh_nworkers + 1) * sizeof(gh_worker_t));
    return &gh_workers[gh_nworkers++];
}


static void
gh_master_spawn(gh_cycle_t *cycle, gh_uint_t index)
{
    gh_worker_t *w;
    pid_t        pid;

    pid = fork();
    if (pid == -1) {
        gh_log_error(GH_LOG_ALERT, cycle->log, errno,
            "fork() failed while spawning \"worker process\"");
        return;
    }
    if (pid == 0) {
        gh_worker_process(cycle, index);
    }

    gh_log(GH_LOG_NOTICE, cycle->log, 0, "start worker process %ld",
        (long) pid);
    w = gh_master_slot();
    w->pid = pid;
    w->index = index;
    w->cycle = cycle;
    w->exiting = false;
}


static void
gh_master_start_workers(gh_cycle_t *cycle)
{
    gh_core_conf_t *ccf = gh_core_conf(cycle);

    gh_log(GH_LOG_NOTICE, cycle->log, 0, "start worker processes");
    for (gh_int_t i = 0; i < ccf->worker_processes; i++) {
        gh_master_spawn(cycle, (gh_uint_t) i);
    }
}


/* signo to every live worker not running `except` (NULL: all) */
static void
gh_master_signal_workers(int signo, gh_cycle_t *except)
{
    gh_worker_t *w;

    for (size_t i = 0; i < gh_nworkers; i++) {
        w = &gh_workers[i];
        if (w->pid == 0 || (except != NULL && w->cycle == except)) {
            continue;
        }
        if (signo == SIGQUIT || signo == SIGTERM || signo == SIGKILL) {
            w->exiting = true;
        }
        /* ESRCH: it died and waits to be reaped */
        if (kill(w->pid, signo) == -1 && errno != ESRCH) {
            gh_log_error(GH_LOG_ALERT, gh_master_cycle->log, errno,
                "kill(%ld, %d) failed", (long) w->pid, signo);
        }
    }
}


static bool
gh_master_has_workers(gh_cycle_t *cycle)
{
    for (size_t i = 0; i < gh_nworkers; i++) {
        if (gh_workers[i].pid != 0
            && (cycle == NULL || gh_workers[i].cycle == cycle))
        {
            return true;
        }
    }
    return false;
}


static void
gh_master_free_old_cycles(void)
{
    size_t i = 0;

    while (i < gh_nold) {
        if (gh_master_has_workers(gh_old_cycles[i])) {
            i++;
            continue;
        }
        gh_cycle_free(gh_old_cycles[i]);
        gh_old_cycles[i] = gh_old_cycles[--gh_nold];
    }
}


static void
gh_master_reap(void)
{
    gh_log_t    *log = gh_master_cycle->log;
    gh_worker_t *w;
    gh_cycle_t  *cycle;
    gh_uint_t    index;
    bool         respawn;
    pid_t        pid;
    int          status, code;

    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0) {
            break;
        }
        if (pid == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != ECHILD) {
                gh_log_error(GH_LOG_ALERT, log, errno, "waitpid() failed");
            }
            break;
        }

        w = NULL;
        for (size_t i = 0; i < gh_nworkers; i++) {
            if (gh_workers[i].pid == pid) {
                w = &gh_workers[i];
                break;
            }
        }
        if (w == NULL) {
            continue;
        }

        cycle = w->cycle;
        index = w->index;
        respawn = !w->exiting && cycle == gh_master_cycle && !gh_quitting
                  && !gh_terminating;

        if (WIFSIGNALED(status)) {
            gh_log_error(GH_LOG_ALERT, log, 0,
                "worker process %ld exited on signal %d%s", (long) pid,
                WTERMSIG(status), WCOREDUMP(status) ? " (core dumped)" : "");
        } else {
            code = WEXITSTATUS(status);
            gh_log(GH_LOG_NOTICE, log, 0,
                "worker process %ld exited with code %d", (long) pid, code);
            if (code == GH_WORKER_FATAL && respawn) {
                gh_log_error(GH_LOG_ALERT, log, 0, "worker process %ld "
                    "exited with fatal code %d and cannot be respawned",
                    (long) pid, code);
                respawn = false;
            }
        }

        w->pid = 0;
        w->cycle = NULL;
        if (respawn) {
            gh_master_spawn(cycle, index);
        }
    }
    gh_master_free_old_cycles();
}


static void
gh_master_close_listening(gh_cycle_t *cycle, bool unused_only)
{
    gh_listening_t *ls;

    for (size_t i = 0; i < cycle->listening.nelts; i++) {
        ls = gh_array_at(&cycle->listening, gh_listening_t, i);
        if (ls->fd >= 0 && !(unused_only && ls->keep)) {
            close(ls->fd);
            ls->fd = -1;
        }
    }
}


/* HUP.  Nothing of the running configuration changes until the new one
 * has loaded, mapped its zones, written a moved pid file and opened its
 * sockets; any failure leaves the old workers serving as before. */
static void
gh_master_reload(void)
{
    gh_cycle_t     *cur = gh_master_cycle, *nc;
    gh_core_conf_t *occf = gh_core_conf(cur), *nccf;
    bool            pid_moved;

    gh_log_error(GH_LOG_NOTICE, cur->log, 0, "reconfiguring");

    nc = gh_cycle_load(cur->conf_file, cur->prefix, cur->conf_param,
        cur->error_log_path, cur->log, cur);
    if (nc == NULL) {
        goto failed;
    }
    nccf = gh_core_conf(nc);

    if (gh_shm_zones_init(nc->shm_zones, cur->shm_zones, nc->log) != GH_OK) {
        goto unload;
    }
    pid_moved = strcmp(occf->pid, nccf->pid) != 0;
    if (pid_moved && gh_pidfile_write(nccf->pid, nc->log) != GH_OK) {
        goto release;
    }
    if (gh_cycle_open_listening(nc, cur) != GH_OK) {
        if (pid_moved) {
            gh_pidfile_remove(nccf->pid, nc->log);
        }
        goto release;
    }

    /* commit */
    if (pid_moved) {
        gh_pidfile_remove(occf->pid, nc->log);
    }
    /* old workers have their own mappings; the master needs only the
     * zones the new configuration kept */
    gh_shm_zones_release(cur->shm_zones, nc->shm_zones);
    /* before forking: new workers must not inherit sockets of addresses
     * the new configuration dropped, or those would stay bound */
    gh_master_close_listening(cur, true);

    gh_master_cycle = nc;
    gh_cycle = nc;
    gh_master_start_workers(nc);
    gh_master_signal_workers(SIGQUIT, nc);

    gh_old_cycles = gh_xrealloc(gh_old_cycles,
        (gh_nold + 1) * sizeof(gh_cycle_t *));
    gh_old_cycles[gh_nold++] = cur;
    gh_master_free_old_cycles();
    return;

release:
    gh_shm_zones_release(nc->shm_zones, cur->shm_zones);
unload:
    gh_cycle_free(nc);
failed:
    gh_log_error(GH_LOG_NOTICE, cur->log, 0,
        "reload failed, the old configuration stays in use");
}


static void
gh_master_reopen(void)
{
    gh_cycle_t     *cycle = gh_master_cycle;
    gh_core_conf_t *ccf = gh_core_conf(cycle);

    gh_log_error(GH_LOG_NOTICE, cycle->log, 0, "reopening logs");
    gh_log_reopen(cycle->files);

    /* the workers reopen too, as ccf->user: a file created just now by
     * the root master must be theirs to write */
    if (ccf->switch_user && geteuid() == 0) {
        for (gh_log_file_t *f = cycle->files; f != NULL; f = f->next) {
            if (f->path != NULL && chown(f->path, ccf->user_uid, (gid_t) -1)
                == -1)
            {
                gh_log_error(GH_LOG_ALERT, cycle->log, errno,
                    "chown(\"%s\", %ld) failed", f->path,
                    (long) ccf->user_uid);
            }
        }
    }
    gh_master_signal_workers(SIGUSR1, NULL);
}


static void
gh_master_stop(bool fast)
{
    struct itimerval itv;

    if (fast) {
        if (gh_terminating) {
            return;
        }
        gh_terminating = true;
        gh_log_error(GH_LOG_NOTICE, gh_master_cycle->log, 0, "exiting");
        gh_master_signal_workers(SIGTERM, NULL);

        memset(&itv, 0, sizeof(itv));
        itv.it_value.tv_sec = GH_TERMINATE_KILL_MSEC / 1000;
        itv.it_value.tv_usec = (GH_TERMINATE_KILL_MSEC % 1000) * 1000;
        if (setitimer(ITIMER_REAL, &itv, NULL) == -1) {
            gh_log_error(GH_LOG_ALERT, gh_master_cycle->log, errno,
                "setitimer() failed");
        }
    } else {
        if (gh_quitting || gh_terminating) {
            return;
        }
        gh_quitting = true;
        gh_log_error(GH_LOG_NOTICE, gh_master_cycle->log, 0,
            "gracefully shutting down");
        gh_master_signal_workers(SIGQUIT, NULL);
    }

    /* the master accepts nothing; closing lets a successor bind as soon
     * as the workers are gone too */
    gh_master_close_listening(gh_master_cycle, false);
    for (size_t i = 0; i < gh_nold; i++) {
        gh_master_close_listening(gh_old_cycles[i], false);
    }
}


int
gh_master_process_cycle(gh_cycle_t *cycle)
{
    sigset_t  empty;
    char     *title;
    size_t    len;

    gh_master_cycle = cycle;
    gh_cycle = cycle;
    gh_master_pid = getpid();

    if (gh_master_signals_init(cycle->log) != GH_OK) {
        gh_pidfile_remove(gh_core_conf(cycle)->pid, cycle->log);
        return 1;
    }

    len = sizeof("master process ") + (gh_cmdline ? strlen(gh_cmdline) : 0);
    title = gh_xmalloc(len);
    snprintf(title, len, "master process %s", gh_cmdline ? gh_cmdline : "");
    gh_proctitle_set(title);
    free(title);

    gh_master_start_workers(cycle);

    sigemptyset(&empty);
    for (;;) {
        sigsuspend(&empty);
        gh_time_update();

        if (gh_sig_reap) {
            gh_sig_reap = 0;
            gh_master_reap();
        }
        if (gh_sig_terminate) {
            gh_sig_terminate = 0;
            gh_master_stop(true);
        }
        if (gh_sig_alarm) {
            gh_sig_alarm = 0;
            if (gh_terminating) {
                gh_master_signal_workers(SIGKILL, NULL);
            }
        }
        if (gh_sig_quit) {
            gh_sig_quit = 0;
            gh_master_stop(false);
        }

        if (gh_quitting || gh_terminating) {
            if (!gh_master_has_workers(NULL)) {
                break;
            }
            continue;
        }

        if (gh_sig_reconfigure) {
            gh_sig_reconfigure = 0;
            gh_master_reload();
        }
        if (gh_sig_reopen) {
            gh_sig_reopen = 0;
            gh_master_reopen();
        }
    }

    gh_log_error(GH_LOG_NOTICE, gh_master_cycle->log, 0, "exit");
    gh_pidfile_remove(gh_core_conf(gh_master_cycle)->pid,
        gh_master_cycle->log);
    return 0;
}
