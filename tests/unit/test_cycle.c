/*
 * test_cycle.c: loading a configuration into a cycle (core and events
 * directives, defaults, prefix rules, error_log, -g) and handing
 * listening sockets from one cycle to the next.
 *
 * The module list is the core and events modules only: what is tested
 * here must not depend on the HTTP modules linking.  Errors are read back
 * from a log sink on a temporary file, since their wording is part of the
 * interface (it is nginx's).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/gh_core.h"
#include "core/gh_cycle.h"
#include "event/gh_conn.h"

gh_module_t *gh_modules[] = { &gh_core_module, &gh_events_module, NULL };

static char          tmpdir[64];
static char          logpath[128];
static gh_log_file_t logfile;
static gh_log_t      testlog;


static void
write_file(const char *rel, const char *text)
{
    char  path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}


/* everything logged since the last call */
static const char *
read_log(void)
{
    static char buf[8192];
    ssize_t     n;

    n = pread(logfile.fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    assert_int_equal(ftruncate(logfile.fd, 0), 0);
    return buf;
}


static gh_cycle_t *
load(const char *conf, const char *param)
{
    char path[256];

    write_file("conf/gatehouse.conf", conf);
    snprintf(path, sizeof(path), "%s/conf/gatehouse.conf", tmpdir);
    read_log();
    return gh_cycle_load(path, NULL, param, NULL, &testlog, NULL);
}


/* the configuration must fail and say `msg` */
static void
expect_error(const char *conf, const char *msg)
{
    gh_cycle_t *cycle = load(conf, NULL);
    const char *log = read_log();

    if (cycle != NULL || strstr(log, msg) == NULL) {
        print_error("config: %s\nwanted: %s\nlogged: %s\n", conf, msg, log);
        gh_cycle_free(cycle);
        fail();
    }
}


static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}


static int
setup(void **state)
{
    char dir[128];

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/gh_test_cycle_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(dir, sizeof(dir), "%s/conf", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof(dir), "%s/logs", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);

    snprintf(logpath, sizeof(logpath), "%s/test.log", tmpdir);
    logfile.fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0644);
    assert_true(logfile.fd > 2);
    testlog.level = GH_LOG_DEBUG;
    testlog.file = &logfile;

    /* no echo of errors to the terminal: they are read back instead */
    gh_log_startup_style = false;
    gh_time_init();
    gh_modules_init();
    return 0;
}


static int
teardown(void **state)
{
    close(logfile.fd);
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}


static void
test_defaults(void **state)
{
    gh_cycle_t     *cycle = load("", NULL);
    gh_core_conf_t *ccf;
    char            want[256];

    assert_non_null(cycle);
    ccf = gh_core_conf(cycle);
    assert_int_equal(ccf->worker_processes, 1);
    assert_int_equal(ccf->worker_connections, 1024);
    assert_int_equal(ccf->daemon, 1);
    assert_int_equal(ccf->master, 1);
    assert_int_equal(ccf->multi_accept, 0);
    assert_int_equal(ccf->worker_rlimit_nofile, GH_UNSET);
    assert_int_equal(ccf->shutdown_timeout, 0);
    assert_false(ccf->switch_user);

    /* conf file in ".../conf/": the prefix is its parent */
    snprintf(want, sizeof(want), "%s/", tmpdir);
    assert_string_equal(cycle->prefix, want);
    snprintf(want, sizeof(want), "%s/conf/", tmpdir);
    assert_string_equal(cycle->conf_prefix, want);
    snprintf(want, sizeof(want), "%s/conf/gatehouse.conf", tmpdir);
    assert_string_equal(cycle->conf_file, want);
    snprintf(want, sizeof(want), "%s/logs/gatehouse.pid", tmpdir);
    assert_string_equal(ccf->pid, want);

    /* the default error log: logs/error.log, level error */
    assert_non_null(cycle->log);
    assert_null(cycle->log->next);
    assert_int_equal(cycle->log->level, GH_LOG_ERR);
    snprintf(want, sizeof(want), "%s/logs/error.log", tmpdir);
    assert_string_equal(cycle->log->file->path, want);
    assert_int_equal(cycle->generation, 0);
    gh_cycle_free(cycle);
}


static void
test_values(void **state)
{
    gh_core_conf_t *ccf;
    gh_cycle_t     *cycle;
    char            want[256];

    cycle = load(
        "worker_processes 3;\n"
        "daemon off;\n"
        "master_process off;\n"
        "pid run.pid;\n"
        "worker_rlimit_nofile 4096;\n"
        "worker_shutdown_timeout 10s;\n"
        "error_log logs/a.log warn;\n"
        "error_log stderr;\n"
        "pcre_jit on;\n"
        "env TZ;\n"
        "events {\n"
        "    worker_connections 77;\n"
        "    use epoll;\n"
        "    multi_accept on;\n"
        "    accept_mutex off;\n"
        "}\n", NULL);
    assert_non_null(cycle);
    ccf = gh_core_conf(cycle);
    assert_int_equal(ccf->worker_processes, 3);
    assert_int_equal(ccf->daemon, 0);
    assert_int_equal(ccf->master, 0);
    assert_int_equal(ccf->worker_rlimit_nofile, 4096);
    assert_int_equal(ccf->shutdown_timeout, 10000);
    assert_int_equal(ccf->worker_connections, 77);
    assert_int_equal(ccf->multi_accept, 1);
    assert_true(ccf->events_set);
    snprintf(want, sizeof(want), "%s/run.pid", tmpdir);
    assert_string_equal(ccf->pid, want);

    /* two sinks, in the order written */
    assert_non_null(cycle->log);
    assert_int_equal(cycle->log->level, GH_LOG_WARN);
    snprintf(want, sizeof(want), "%s/logs/a.log", tmpdir);
    assert_string_equal(cycle->log->file->path, want);
    assert_non_null(cycle->log->next);
    assert_int_equal(cycle->log->next->level, GH_LOG_ERR);
    assert_int_equal(cycle->log->next->file->fd, STDERR_FILENO);
    assert_null(cycle->log->next->next);
    assert_true(access(want, F_OK) == 0);
    gh_cycle_free(cycle);
}


static void
test_worker_processes_auto(void **state)
{
    gh_cycle_t *cycle = load("worker_processes auto;\n", NULL);
    cpu_set_t   set;

    assert_non_null(cycle);
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    assert_int_equal(gh_core_conf(cycle)->worker_processes, CPU_COUNT(&set));
    gh_cycle_free(cycle);
}


static void
test_user(void **state)
{
    gh_cycle_t *cycle = load("user root;\n", NULL);

    assert_non_null(cycle);
    if (geteuid() == 0) {
        /* the group defaults to the user's name, as nginx */
        assert_true(gh_core_conf(cycle)->switch_user);
        assert_int_equal(gh_core_conf(cycle)->user_uid, 0);
        assert_int_equal(gh_core_conf(cycle)->user_gid, 0);
        gh_cycle_free(cycle);
        expect_error("user gh_no_such_user_x;\n",
            "getpwnam(\"gh_no_such_user_x\") failed");
        expect_error("user root gh_no_such_group_x;\n",
            "getgrnam(\"gh_no_such_group_x\") failed");
    } else {
        assert_false(gh_core_conf(cycle)->switch_user);
        assert_non_null(strstr(read_log(), "makes sense only if"));
        gh_cycle_free(cycle);
    }
}


static void
test_errors(void **state)
{
    expect_error("worker_processes abc;\n",
        "\"worker_processes\" directive invalid value \"abc\"");
    expect_error("worker_processes 0;\n",
        "\"worker_processes\" directive invalid value \"0\"");
    expect_error("worker_processes 5000;\n", "invalid value \"5000\"");
    expect_error("worker_processes 1;\nworker_processes 2;\n",
        "\"worker_processes\" directive is duplicate in ");
    expect_error("worker_processes 1 2;\n",
        "invalid number of arguments in \"worker_processes\" directive");
    expect_error("events { worker_connections 0; }\n",
        "\"worker_connections\" directive invalid value \"0\"");
    expect_error("events { worker_connections x; }\n",
        "\"worker_connections\" directive invalid value \"x\"");
    expect_error("events { use kqueue; }\n", "invalid event type \"kqueue\"");
    expect_error("events { }\nevents { }\n",
        "\"events\" directive is duplicate");
    expect_error("events { accept_mutex perhaps; }\n",
        "\"accept_mutex\" directive invalid value \"perhaps\"");
    expect_error("worker_connections 10;\n",
        "\"worker_connections\" directive is not allowed here");
    expect_error("events { daemon off; }\n",
        "\"daemon\" directive is not allowed here");
    expect_error("daemon maybe;\n", "\"daemon\" directive invalid value");
    expect_error("load_module modules/x.so;\n",
        "\"load_module\" directive is not supported in ");
    expect_error("error_log logs/e.log loud;\n",
        "invalid log level \"loud\"");
    expect_error("error_log /nonexistent_gh/e.log;\n",
        "open() \"/nonexistent_gh/e.log\" failed (2: ");
    expect_error("error_log syslog:server=x;\n",
        "\"error_log\" directive does not support syslog");
    expect_error("pid a;\npid b;\n", "\"pid\" directive is duplicate");
    expect_error("worker_shutdown_timeout soon;\n",
        "\"worker_shutdown_timeout\" directive invalid value");
}


/* every unknown directive of the tree is reported, not just the first */
static void
test_unknown_all(void **state)
{
    gh_cycle_t *cycle = load("worker_procesess 2;\n"
                             "events { worker_conections 5; }\n", NULL);
    const char *log = read_log();

    assert_null(cycle);
    assert_non_null(strstr(log, "unknown directive \"worker_procesess\""));
    assert_non_null(strstr(log, "unknown directive \"worker_conections\""));
    assert_non_null(strstr(log, "gatehouse.conf:2"));
}


static void
test_conf_param(void **state)
{
    gh_cycle_t *cycle = load("worker_processes 2;\n",
        "daemon off; master_process off;");

    assert_non_null(cycle);
    assert_int_equal(gh_core_conf(cycle)->daemon, 0);
    assert_int_equal(gh_core_conf(cycle)->master, 0);
    assert_string_equal(cycle->conf_param, "daemon off; master_process off;");
    gh_cycle_free(cycle);

    /* appended to the main context: a repeat is a duplicate */
    cycle = load("daemon on;\n", "daemon off;");
    assert_null(cycle);
    assert_non_null(strstr(read_log(), "\"daemon\" directive is duplicate"));
}


static void
test_prefix(void **state)
{
    gh_cycle_t *cycle;
    char        path[256], want[256];

    /* -p given: relative -c is relative to it, logs go there */
    write_file("conf/gatehouse.conf", "");
    cycle = gh_cycle_load("conf/gatehouse.conf", tmpdir, NULL, NULL,
        &testlog, NULL);
    assert_non_null(cycle);
    snprintf(want, sizeof(want), "%s/", tmpdir);
    assert_string_equal(cycle->prefix, want);
    snprintf(want, sizeof(want), "%s/conf/gatehouse.conf", tmpdir);
    assert_string_equal(cycle->conf_file, want);
    gh_cycle_free(cycle);

    /* a config outside a "conf" directory: the prefix is its directory */
    write_file("x.conf", "error_log stderr;\n");
    snprintf(path, sizeof(path), "%s/x.conf", tmpdir);
    cycle = gh_cycle_load(path, NULL, NULL, NULL, &testlog, NULL);
    assert_non_null(cycle);
    snprintf(want, sizeof(want), "%s/", tmpdir);
    assert_string_equal(cycle->prefix, want);
    assert_string_equal(cycle->conf_prefix, want);
    gh_cycle_free(cycle);

    /* -e names the default error log, relative to the prefix */
    snprintf(path, sizeof(path), "%s/conf/gatehouse.conf", tmpdir);
    cycle = gh_cycle_load(path, NULL, NULL, "logs/startup.log", &testlog,
        NULL);
    assert_non_null(cycle);
    snprintf(want, sizeof(want), "%s/logs/startup.log", tmpdir);
    assert_string_equal(cycle->log->file->path, want);
    gh_cycle_free(cycle);

    /* a missing config file */
    cycle = gh_cycle_load("/nonexistent_gh/g.conf", NULL, NULL, NULL,
        &testlog, NULL);
    assert_null(cycle);
    assert_non_null(strstr(read_log(),
        "open() \"/nonexistent_gh/g.conf\" failed"));

    /* gh_cycle_conf_name: absolute as is, else against -p or the cwd */
    char *name = gh_cycle_conf_name("/a/b.conf", "/p");
    assert_string_equal(name, "/a/b.conf");
    free(name);
    name = gh_cycle_conf_name("c/d.conf", "/p");
    assert_string_equal(name, "/p/c/d.conf");
    free(name);
}


static gh_listening_t *
add_listen(gh_cycle_t *cycle, uint16_t port)
{
    gh_listening_t     *ls = gh_array_push(&cycle->listening);
    struct sockaddr_in *sin = (struct sockaddr_in *) &ls->sockaddr;

    assert_non_null(ls);
    memset(ls, 0, sizeof(*ls));
    ls->fd = -1;
    ls->worker = -1;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ls->socklen = sizeof(*sin);
    return ls;
}


static void
test_listening_takeover(void **state)
{
    gh_cycle_t         *a, *b;
    gh_listening_t     *la, *lb, *lbad;
    struct sockaddr_in  sin;
    socklen_t           len = sizeof(sin);
    int                 busy, fd;

    a = load("error_log stderr;\n", NULL);
    b = load("error_log stderr;\n", NULL);
    assert_non_null(a);
    assert_non_null(b);
    /* socket errors go to the cycle's own log: read them back */
    a->log = &testlog;
    b->log = &testlog;

    la = add_listen(a, 0);
    assert_int_equal(gh_cycle_open_listening(a, NULL), GH_OK);
    assert_true(la->fd >= 0);
    fd = la->fd;

    /* a port someone else listens on, for the failure below */
    busy = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(busy, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(listen(busy, 1), 0);
    assert_int_equal(getsockname(busy, (struct sockaddr *) &sin, &len), 0);

    /* failure: what b took over goes back, a keeps its socket */
    lb = add_listen(b, 0);
    lbad = add_listen(b, ntohs(sin.sin_port));
    assert_int_equal(gh_cycle_open_listening(b, a), GH_ERROR);
    assert_int_equal(lb->fd, -1);
    assert_int_equal(lbad->fd, -1);
    assert_false(la->keep);
    assert_int_equal(la->fd, fd);
    assert_true(fcntl(fd, F_GETFD) != -1);
    assert_non_null(strstr(read_log(), "bind() to 127.0.0.1:"));

    /* success: the same fd moves to b and outlives a */
    b->listening.nelts = 1;
    assert_int_equal(gh_cycle_open_listening(b, a), GH_OK);
    assert_int_equal(lb->fd, fd);
    assert_true(lb->inherited);
    assert_true(la->keep);
    gh_cycle_free(a);
    assert_true(fcntl(fd, F_GETFD) != -1);
    gh_cycle_free(b);
    assert_true(fcntl(fd, F_GETFD) == -1);
    close(busy);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_worker_processes_auto),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_unknown_all),
        cmocka_unit_test(test_conf_param),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_listening_takeover),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
