/*
 * test_log.c: the error log line formats (nginx's), level filtering,
 * sink chains, escaping of control characters and the time cache.
 */
#include "core/gh_core.h"

#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

static char gh_path[64];

static int
setup(void **state)
{
    int fd;

    snprintf(gh_path, sizeof(gh_path), "/tmp/gh_test_log_%d", (int) getpid());
    unlink(gh_path);
    fd = open(gh_path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    gh_time_init();
    return 0;
}

static int
teardown(void **state)
{
    unlink(gh_path);
    return 0;
}

static size_t
read_log(char *buf, size_t size)
{
    int     fd = open(gh_path, O_RDONLY);
    ssize_t n = read(fd, buf, size - 1);

    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t) n : 0;
}

static void
assert_matches(const char *s, const char *re)
{
    regex_t r;
    int     rc;

    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    rc = regexec(&r, s, 0, NULL, 0);
    regfree(&r);
    if (rc != 0) {
        fail_msg("\"%s\" does not match /%s/", s, re);
    }
}

static size_t
client_ctx(gh_log_t *log, uint8_t *buf, size_t len)
{
    int n = snprintf((char *) buf, len, ", client: %s", (char *) log->data);

    return n > 0 ? gh_min((size_t) n, len) : 0;
}

static void
test_line_format(void **state)
{
    gh_log_file_t *files = NULL, *f;
    gh_log_t       log = { .level = GH_LOG_ERR };
    char           buf[1024];

    f = gh_log_open_file(&files, gh_path);
    assert_non_null(f);
    assert_ptr_equal(gh_log_open_file(&files, gh_path), f);   /* shared */
    log.file = f;
    log.handler = client_ctx;
    log.data = "10.0.0.1";
    log.connection = 7;

    gh_log_startup_style = false;
    gh_log(GH_LOG_ERR, &log, 111, "connect() to %s failed", "1.2.3.4:80");
    gh_log(GH_LOG_INFO, &log, 0, "filtered out");
    log.connection = 0;
    log.handler = NULL;
    gh_log(GH_LOG_EMERG, &log, 0, "bad\nline");
    gh_log_startup_style = true;

    read_log(buf, sizeof(buf));
    assert_matches(buf, "^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:"
        "[0-9]{2} \\[error\\] [0-9]+#0: \\*7 connect\\(\\) to 1\\.2\\.3\\.4:80 "
        "failed \\(111: Connection refused\\), client: 10\\.0\\.0\\.1\n"
        "[0-9/: ]+ \\[emerg\\] [0-9]+#0: bad\\\\x0Aline\n$");
    assert_null(strstr(buf, "filtered"));
    gh_log_files_close(files);
}

static void
test_startup_style(void **state)
{
    gh_log_file_t *files = NULL;
    gh_log_t       log = { .level = GH_LOG_INFO };
    char           buf[1024];
    int            saved = dup(STDERR_FILENO);
    int            fd = open(gh_path, O_WRONLY | O_TRUNC);

    /* the stderr sink, pointed at our file */
    dup2(fd, STDERR_FILENO);
    close(fd);
    log.file = gh_log_open_file(&files, "stderr");
    assert_non_null(log.file);
    assert_null(log.file->path);
    assert_int_equal(log.file->fd, STDERR_FILENO);

    gh_log_startup_style = true;
    gh_log(GH_LOG_EMERG, &log, 98, "bind() to %s failed", "0.0.0.0:80");
    gh_log(GH_LOG_WARN, &log, 0, "a warning");

    dup2(saved, STDERR_FILENO);
    close(saved);
    read_log(buf, sizeof(buf));
    assert_string_equal(buf,
        "gatehouse: [emerg] bind() to 0.0.0.0:80 failed "
        "(98: Address already in use)\n"
        "gatehouse: [warn] a warning\n");
    gh_log_files_close(files);
}

static void
test_levels(void **state)
{
    gh_str_t   s = gh_string("warn");
    gh_str_t   bad = gh_string("stderr");
    gh_log_t   b = { .level = GH_LOG_DEBUG };
    gh_log_t   a = { .level = GH_LOG_ERR, .next = &b };

    assert_int_equal(gh_log_level_parse(&s), GH_LOG_WARN);
    assert_int_equal(gh_log_level_parse(&bad), -1);
    assert_string_equal(gh_log_level_name(GH_LOG_ERR), "error");
    assert_string_equal(gh_log_level_name(GH_LOG_EMERG), "emerg");
    /* a chain accepts what any sink accepts */
    assert_true(gh_log_enabled(&a, GH_LOG_DEBUG));
    a.next = NULL;
    assert_false(gh_log_enabled(&a, GH_LOG_WARN));
}

static void
test_time_cache(void **state)
{
    gh_time_update();
    assert_int_equal(gh_cached_err_log_time.len, 19);
    assert_int_equal(gh_cached_http_time.len, 29);
    assert_int_equal(gh_cached_log_time.len, 26);
    assert_int_equal(gh_cached_iso8601_time.len, 25);
    assert_matches((char *) gh_cached_http_time.data,
        "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} [0-9]{4} "
        "[0-9]{2}:[0-9]{2}:[0-9]{2} GMT$");
    assert_matches((char *) gh_cached_log_time.data,
        "^[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} [+-][0-9]{4}$");
    assert_matches((char *) gh_cached_iso8601_time.data,
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-][0-9]{2}:[0-9]{2}$");
    assert_true(gh_current_msec > 0);
    assert_true(gh_current_sec > 1600000000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_startup_style, setup, teardown),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_time_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
