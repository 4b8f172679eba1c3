/*
 * test_conf.c: tokenizer, tree, include, unknown-directive pass, dispatch
 * and generic setters.
 *
 * Error messages are part of the interface (people grep for nginx's
 * wording), so the tests read them back: cf->log points at a sink on a
 * temporary file, and each check takes what was written since the last.
 *
 * The module table here is a fake one, with just enough directives to
 * reach every branch of the dispatcher; the real list lives in
 * src/core/gh_modules.c and is not linked into this test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/gh_core.h"
#include "core/gh_module.h"
#include "conf/gh_conf.h"

/* --- fake modules ---------------------------------------------------- */

typedef struct {
    int         flag;
    gh_int_t    num;
    size_t      size;
    off_t       off;
    gh_msec_t   msec;
    gh_int_t    sec;
    gh_str_t    str;
    gh_array_t *arr;
    gh_uint_t   mode;
    char       *path;
} test_conf_t;

/* what the handlers saw, for the assertions */
static struct {
    unsigned        calls;
    gh_conf_node_t *node_in_handler;
    unsigned        ctx_in_handler;
    void           *listen_conf;
    void           *pass_conf;
    gh_conf_node_t *raw_children;
    unsigned        http_error_log_ctx;
} seen;

static test_conf_t core_conf, events_conf;
static test_conf_t http_main, http_srv, http_loc;

enum { MODE_FAST = 1, MODE_SLOW = 2 };

static const gh_conf_enum_t test_modes[] = {
    { "fast", MODE_FAST },
    { "slow", MODE_SLOW },
    { NULL, 0 }
};

static gh_module_t test_core_module;
static gh_module_t test_events_module;
static gh_module_t test_http_module;

static void
test_conf_reset(test_conf_t *c)
{
    c->flag = GH_UNSET;
    c->num = GH_UNSET;
    c->size = GH_UNSET_SIZE;
    c->off = (off_t) GH_UNSET;
    c->msec = GH_UNSET_MSEC;
    c->sec = GH_UNSET;
    c->str.len = 0;
    c->str.data = NULL;
    c->arr = NULL;
    c->mode = (gh_uint_t) -1;
    c->path = NULL;
}

static const char *
test_events_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    void         *confs[3] = { NULL, NULL, NULL };
    gh_conf_ctx_t ctx = { confs, NULL, NULL };

    confs[test_events_module.index] = &events_conf;
    if (gh_conf_dispatch(cf, cf->node->children, GH_EVENTS_CONF, &ctx)
        != GH_OK)
    {
        return GH_CONF_ERROR;
    }
    return NULL;
}

/* http, server and location blocks share the same three confs: what
 * matters here is that the dispatcher picks the right level */
static const char *
test_block(gh_conf_t *cf, unsigned ctx_type)
{
    void         *mains[3] = { NULL, NULL, NULL };
    void         *srvs[3] = { NULL, NULL, NULL };
    void         *locs[3] = { NULL, NULL, NULL };
    gh_conf_ctx_t ctx;

    mains[test_http_module.index] = &http_main;
    srvs[test_http_module.index] = &http_srv;
    locs[test_http_module.index] = &http_loc;
    ctx.main_conf = mains;
    ctx.srv_conf = srvs;
    ctx.loc_conf = locs;

    if (gh_conf_dispatch(cf, cf->node->children, ctx_type, &ctx) != GH_OK) {
        return GH_CONF_ERROR;
    }
    return NULL;
}

static const char *
test_http_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    return test_block(cf, GH_HTTP_MAIN_CONF);
}

static const char *
test_server_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    return test_block(cf, GH_HTTP_SRV_CONF);
}

static const char *
test_location_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    return test_block(cf, GH_HTTP_LOC_CONF);
}

static const char *
test_listen(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    seen.calls++;
    seen.node_in_handler = cf->node;
    seen.ctx_in_handler = cf->ctx_type;
    seen.listen_conf = conf;
    return NULL;
}

static const char *
test_proxy_pass(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    seen.pass_conf = conf;
    if (gh_str_eq_c(&gh_conf_args(cf)[1], "bad")) {
        return "has a bad upstream";
    }
    if (gh_str_eq_c(&gh_conf_args(cf)[1], "logged")) {
        gh_conf_error(cf, "custom complaint about \"%s\"",
            (const char *) gh_conf_args(cf)[1].data);
        return GH_CONF_ERROR;
    }
    return NULL;
}

static const char *
test_map_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    seen.raw_children = cf->node->children;
    return NULL;
}

static const char *
test_http_error_log(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    seen.http_error_log_ctx = cf->ctx_type;
    return NULL;
}

static const char *
test_core_error_log(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    seen.http_error_log_ctx = 0;
    return NULL;
}

#define TC(field) offsetof(test_conf_t, field)

static const gh_command_t test_core_commands[] = {
    { "worker_processes", GH_MAIN_CONF, GH_CONF_TAKE1, gh_conf_set_num,
      GH_CONF_MAIN_OFFSET, TC(num), NULL },
    { "daemon", GH_MAIN_CONF, GH_CONF_FLAG, gh_conf_set_flag,
      GH_CONF_MAIN_OFFSET, TC(flag), NULL },
    { "buffer_size", GH_MAIN_CONF, GH_CONF_TAKE1, gh_conf_set_size,
      GH_CONF_MAIN_OFFSET, TC(size), NULL },
    { "max_file", GH_MAIN_CONF, GH_CONF_TAKE1, gh_conf_set_off,
      GH_CONF_MAIN_OFFSET, TC(off), NULL },
    { "timeout", GH_MAIN_CONF, GH_CONF_TAKE1, gh_conf_set_msec,
      GH_CONF_MAIN_OFFSET, TC(msec), NULL },
    { "ttl", GH_MAIN_CONF, GH_CONF_TAKE1, gh_conf_set_sec,
      GH_CONF_MAIN_OFFSET, TC(sec), NULL },
    { "user", GH_MAIN_CONF, GH_CONF_TAKE1, gh_conf_set_str,
      GH_CONF_MAIN_OFFSET, TC(str), NULL },
    { "env", GH_MAIN_CONF, GH_CONF_1MORE, gh_conf_set_str_array,
      GH_CONF_MAIN_OFFSET, TC(arr), NULL },
    { "mode", GH_MAIN_CONF, GH_CONF_TAKE1, gh_conf_set_enum,
      GH_CONF_MAIN_OFFSET, TC(mode), test_modes },
    { "pid", GH_MAIN_CONF, GH_CONF_TAKE1, gh_conf_set_path,
      GH_CONF_MAIN_OFFSET, TC(path), NULL },
    { "two", GH_MAIN_CONF, GH_CONF_TAKE2, NULL, 0, 0, NULL },
    { "one_or_three", GH_MAIN_CONF, GH_CONF_TAKE13, NULL, 0, 0, NULL },
    { "many", GH_MAIN_CONF, GH_CONF_2MORE, NULL, 0, 0, NULL },
    { "anything", GH_MAIN_CONF, GH_CONF_ANY, NULL, 0, 0, NULL },
    { "error_log", GH_MAIN_CONF, GH_CONF_1MORE, test_core_error_log,
      0, 0, NULL },
    { "events", GH_MAIN_CONF, GH_CONF_BLOCK | GH_CONF_NOARGS,
      test_events_block, 0, 0, NULL },
    { "http", GH_MAIN_CONF, GH_CONF_BLOCK | GH_CONF_NOARGS,
      test_http_block, 0, 0, NULL },
    GH_COMMAND_END
};

static const gh_command_t test_events_commands[] = {
    { "worker_connections", GH_EVENTS_CONF, GH_CONF_TAKE1, gh_conf_set_num,
      GH_CONF_MAIN_OFFSET, TC(num), NULL },
    GH_COMMAND_END
};

static const gh_command_t test_http_commands[] = {
    { "server", GH_HTTP_MAIN_CONF, GH_CONF_BLOCK | GH_CONF_NOARGS,
      test_server_block, 0, 0, NULL },
    { "location", GH_HTTP_SRV_CONF | GH_HTTP_LOC_CONF,
      GH_CONF_BLOCK | GH_CONF_TAKE12, test_location_block, 0, 0, NULL },
    { "listen", GH_HTTP_SRV_CONF, GH_CONF_TAKE12, test_listen,
      GH_CONF_SRV_OFFSET, 0, NULL },
    { "proxy_pass", GH_HTTP_LOC_CONF, GH_CONF_TAKE1, test_proxy_pass,
      GH_CONF_LOC_OFFSET, 0, NULL },
    { "keepalive", GH_ANY_HTTP_CONF, GH_CONF_FLAG, gh_conf_set_flag,
      GH_CONF_LOC_OFFSET, TC(flag), NULL },
    { "map", GH_HTTP_MAIN_CONF, GH_CONF_BLOCK | GH_CONF_RAW | GH_CONF_TAKE2,
      test_map_block, 0, 0, NULL },
    { "error_log", GH_ANY_HTTP_CONF, GH_CONF_1MORE, test_http_error_log,
      0, 0, NULL },
    GH_COMMAND_END
};

static gh_module_t test_core_module = {
    .name = "core", .commands = test_core_commands
};
static gh_module_t test_events_module = {
    .name = "events", .commands = test_events_commands
};
static gh_module_t test_http_module = {
    .name = "http", .commands = test_http_commands
};

gh_module_t *gh_modules[] = {
    &test_core_module,
    &test_events_module,
    &test_http_module,
    NULL
};

/* --- fixture: arena, log sink, temporary directory --------------------- */

static char           tmpdir[] = "/tmp/gh_conf_test_XXXXXX";
static int            log_fd = -1;
static gh_log_file_t  log_file;
static gh_log_t       test_log;
static gh_arena_t    *arena;
static gh_conf_t      cf;
static char          *log_text;
static void          *main_confs[3];
static gh_conf_ctx_t  main_ctx;

static int
group_setup(void **state)
{
    char path[256];

    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/.log", tmpdir);
    log_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log_fd == -1) {
        return -1;
    }
    log_file.fd = log_fd;
    test_log.level = GH_LOG_DEBUG;
    test_log.file = &log_file;
    /* the test reads the file; the stderr echo would only be noise */
    gh_log_startup_style = false;
    gh_modules_init();
    return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int
group_teardown(void **state)
{
    close(log_fd);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int
setup(void **state)
{
    arena = gh_arena_create(4096, 0);
    if (arena == NULL) {
        return -1;
    }
    gh_conf_init(&cf, NULL, arena, &test_log);
    test_conf_reset(&core_conf);
    test_conf_reset(&events_conf);
    test_conf_reset(&http_main);
    test_conf_reset(&http_srv);
    test_conf_reset(&http_loc);
    memset(&seen, 0, sizeof(seen));
    main_confs[test_core_module.index] = &core_conf;
    main_confs[test_events_module.index] = NULL;
    main_confs[test_http_module.index] = NULL;
    main_ctx.main_conf = main_confs;
    main_ctx.srv_conf = NULL;
    main_ctx.loc_conf = NULL;
    if (ftruncate(log_fd, 0) != 0) {
        return -1;
    }
    lseek(log_fd, 0, SEEK_SET);
    return 0;
}

static int
teardown(void **state)
{
    gh_arena_destroy(arena);
    free(log_text);
    log_text = NULL;
    return 0;
}

/* everything logged since the last call */
static const char *
log_take(void)
{
    struct stat st;
    ssize_t     n;

    free(log_text);
    assert_int_equal(fstat(log_fd, &st), 0);
    log_text = calloc(1, (size_t) st.st_size + 1);
    assert_non_null(log_text);
    n = pread(log_fd, log_text, (size_t) st.st_size, 0);
    assert_int_equal(n, st.st_size);
    assert_int_equal(ftruncate(log_fd, 0), 0);
    lseek(log_fd, 0, SEEK_SET);
    return log_text;
}

static void
assert_logged(const char *expect)
{
    const char *text = log_take();

    if (strstr(text, expect) == NULL) {
        print_error("expected in log: %s\nlog was: %s\n", expect, text);
        fail();
    }
}

static unsigned
log_count(const char *text, const char *what)
{
    unsigned n = 0;

    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) {
        n++;
    }
    return n;
}

static char *
tmp_path(const char *name)
{
    static char buf[4][512];
    static int  i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
    return buf[i];
}

static void
write_file(const char *name, const char *content)
{
    char *path = tmp_path(name), *slash;
    FILE *f;

    /* parents, for names like "conf.d/a.conf" */
    for (slash = strchr(path + strlen(tmpdir) + 1, '/'); slash;
         slash = strchr(slash + 1, '/'))
    {
        *slash = '\0';
        mkdir(path, 0700);
        *slash = '/';
    }
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static gh_conf_node_t *
parse_ok(const char *text)
{
    gh_conf_node_t *nodes = NULL;
    gh_int_t        rc;

    rc = gh_conf_parse_string(&cf, "test", (const uint8_t *) text,
        strlen(text), &nodes);
    if (rc != GH_OK) {
        print_error("parse failed: %s\n", log_take());
    }
    assert_int_equal(rc, GH_OK);
    return nodes;
}

static void
parse_file_fails(const char *name, const char *content, const char *expect)
{
    gh_conf_node_t *nodes;

    write_file(name, content);
    assert_int_equal(gh_conf_parse_file(&cf, tmp_path(name), &nodes),
        GH_ERROR);
    assert_null(nodes);
    assert_logged(expect);
    assert_true(cf.errors > 0);
}

static void
assert_arg(const gh_conf_node_t *n, size_t i, const char *expect)
{
    assert_true(i < n->nargs);
    if (!gh_str_eq_c(&n->args[i], expect)) {
        print_error("arg %zu: \"%.*s\" != \"%s\"\n", i, (int) n->args[i].len,
            (const char *) n->args[i].data, expect);
        fail();
    }
    /* handlers may hand words to libc */
    assert_int_equal(n->args[i].data[n->args[i].len], '\0');
}

/* --- tokenizer ---------------------------------------------------------- */

static void
test_words(void **state)
{
    gh_conf_node_t *n = parse_ok("a b\tc;\r\n  d   e ;f;");

    assert_non_null(n);
    assert_int_equal(n->nargs, 3);
    assert_arg(n, 0, "a");
    assert_arg(n, 1, "b");
    assert_arg(n, 2, "c");
    assert_false(n->block);
    assert_null(n->children);
    assert_string_equal(n->file, "test");
    assert_int_equal(n->line, 1);

    n = n->next;
    assert_int_equal(n->nargs, 2);
    assert_arg(n, 0, "d");
    assert_arg(n, 1, "e");
    assert_int_equal(n->line, 2);

    n = n->next;
    assert_int_equal(n->nargs, 1);
    assert_arg(n, 0, "f");
    assert_null(n->next);

    assert_null(parse_ok(""));
    assert_null(parse_ok("  \n# only a comment\n\n"));
}

static void
test_quotes_and_escapes(void **state)
{
    gh_conf_node_t *n;

    n = parse_ok("a \"q\\\"uote\" 'it\\'s' \"b\\\\s\" \"t\\tn\\nr\\r\" "
                 "\"\\d+\" x\\ y \"\" 'semi;{}#' \"mixed'\";");
    assert_int_equal(n->nargs, 10);
    assert_arg(n, 1, "q\"uote");
    assert_arg(n, 2, "it's");
    assert_arg(n, 3, "b\\s");
    assert_arg(n, 4, "t\tn\nr\r");
    /* unknown escapes stay, for regexes */
    assert_arg(n, 5, "\\d+");
    /* an escaped space does not split a bare word; the pair is kept */
    assert_arg(n, 6, "x\\ y");
    assert_arg(n, 7, "");
    assert_arg(n, 8, "semi;{}#");
    assert_arg(n, 9, "mixed'");

    /* quote in the middle of a bare word is an ordinary character */
    n = parse_ok("a b\"c d\"e;");
    assert_int_equal(n->nargs, 3);
    assert_arg(n, 1, "b\"c");
    assert_arg(n, 2, "d\"e");

    /* a quoted word may be followed by ')', ';', '{' or space */
    n = parse_ok("if ($a = \"b\") { x; } y \"z\";w 'v'{}");
    assert_int_equal(n->nargs, 5);
    assert_arg(n, 1, "($a");
    assert_arg(n, 3, "b");
    assert_arg(n, 4, ")");
    assert_true(n->block);
    n = n->next;
    assert_arg(n, 1, "z");
    n = n->next;
    assert_arg(n, 1, "v");
    assert_true(n->block);
}

static void
test_comments(void **state)
{
    gh_conf_node_t *n;

    n = parse_ok("# head\na b; # tail { } ;\nc#d e#f;\n#last");
    assert_int_equal(n->nargs, 2);
    n = n->next;
    /* '#' inside a word is not a comment */
    assert_int_equal(n->nargs, 2);
    assert_arg(n, 0, "c#d");
    assert_arg(n, 1, "e#f");
    assert_int_equal(n->line, 3);
    assert_null(n->next);
}

static void
test_variables(void **state)
{
    gh_conf_node_t *n;

    n = parse_ok("set $a ${b}c;\nroot /x/${host}/y$uri;\n"
                 "return 200 \"${a}\";\nx $;");
    assert_int_equal(n->nargs, 3);
    assert_arg(n, 1, "$a");
    assert_arg(n, 2, "${b}c");
    assert_false(n->block);
    n = n->next;
    assert_int_equal(n->nargs, 2);
    assert_arg(n, 1, "/x/${host}/y$uri");
    n = n->next;
    assert_arg(n, 2, "${a}");
    n = n->next;
    assert_arg(n, 1, "$");

    /* '{' not right after '$' still opens a block */
    n = parse_ok("location /a{ b; }");
    assert_true(n->block);
    assert_arg(n, 1, "/a");
    assert_arg(n->children, 0, "b");
}

static void
test_line_numbers(void **state)
{
    gh_conf_node_t *n;

    n = parse_ok("a 'multi\nline\nstring';\n\nb \"x\\\ny\";\nc\nd;\n"
                 "# comment\ne;");
    assert_int_equal(n->line, 1);
    assert_arg(n, 1, "multi\nline\nstring");
    n = n->next;
    assert_int_equal(n->line, 5);
    n = n->next;
    /* a node has the line of its first word */
    assert_int_equal(n->line, 7);
    n = n->next;
    assert_int_equal(n->line, 10);

    /* errors after a multi-line string are on the right line */
    assert_int_equal(gh_conf_parse_string(&cf, "s",
        (const uint8_t *) "a 'x\ny\n';\n}", 11, &n), GH_ERROR);
    assert_logged("unexpected \"}\" in s:4");
}

static void
test_blocks(void **state)
{
    gh_conf_node_t *n, *srv, *loc;

    n = parse_ok("events {}\nhttp {\n  server {\n    listen 80;\n"
                 "    location / { proxy_pass http://u; }\n  }\n"
                 "  server{listen 81;}\n}\nlast;");
    assert_arg(n, 0, "events");
    assert_true(n->block);
    assert_null(n->children);

    n = n->next;
    assert_arg(n, 0, "http");
    assert_int_equal(n->line, 2);
    srv = n->children;
    assert_arg(srv, 0, "server");
    assert_int_equal(srv->line, 3);
    assert_arg(srv->children, 0, "listen");
    assert_arg(srv->children, 1, "80");
    assert_int_equal(srv->children->line, 4);
    loc = srv->children->next;
    assert_arg(loc, 0, "location");
    assert_arg(loc, 1, "/");
    assert_true(loc->block);
    assert_arg(loc->children, 1, "http://u");
    assert_null(loc->children->next);
    assert_null(loc->next);
    srv = srv->next;
    assert_arg(srv, 0, "server");
    assert_arg(srv->children, 1, "81");
    assert_null(srv->next);

    n = n->next;
    assert_arg(n, 0, "last");
    assert_int_equal(n->line, 9);
    assert_null(n->next);
}

/* --- parse errors ----------------------------------------------------- */

static void
test_parse_errors(void **state)
{
    char  expect[600];
    char *big;

    snprintf(expect, sizeof(expect), "unexpected \"}\" in %s:2",
        tmp_path("e1.conf"));
    parse_file_fails("e1.conf", "a;\n}\n", expect);

    snprintf(expect, sizeof(expect), "unexpected \"}\" in %s:1",
        tmp_path("e2.conf"));
    parse_file_fails("e2.conf", "http { a b }\n", expect);

    snprintf(expect, sizeof(expect),
        "unexpected end of file, expecting \";\" or \"}\" in %s:2",
        tmp_path("e3.conf"));
    parse_file_fails("e3.conf", "a;\nb c", expect);

    snprintf(expect, sizeof(expect),
        "unexpected end of file, expecting \"}\" in %s:4",
        tmp_path("e4.conf"));
    parse_file_fails("e4.conf", "http {\n  a;\n  server { }\n", expect);

    snprintf(expect, sizeof(expect),
        "unexpected end of file, expecting \";\" or \"}\" in %s:3",
        tmp_path("e5.conf"));
    parse_file_fails("e5.conf", "a 'open\n\n", expect);

    snprintf(expect, sizeof(expect), "unexpected \";\" in %s:2",
        tmp_path("e6.conf"));
    parse_file_fails("e6.conf", "a;\n;\n", expect);

    snprintf(expect, sizeof(expect), "unexpected \"{\" in %s:1",
        tmp_path("e7.conf"));
    parse_file_fails("e7.conf", "a; { b; }\n", expect);

    snprintf(expect, sizeof(expect), "unexpected \"x\" in %s:2",
        tmp_path("e8.conf"));
    parse_file_fails("e8.conf", "a;\nb \"c\"x;\n", expect);

    snprintf(expect, sizeof(expect), "unexpected \"#\" in %s:1",
        tmp_path("e9.conf"));
    parse_file_fails("e9.conf", "b 'c'# no\n;", expect);

    /* 64 KiB is the limit for one word */
    big = malloc(70000);
    assert_non_null(big);
    memcpy(big, "a\n\"0123456789abcdefXYZ", 22);
    memset(big + 22, 'z', 70000 - 22 - 4);
    memcpy(big + 70000 - 4, "\";\n", 4);
    snprintf(expect, sizeof(expect),
        "too long parameter \"0123456789abcdef...\" started in %s:2",
        tmp_path("e10.conf"));
    parse_file_fails("e10.conf", big, expect);
    free(big);

    /* -g text has no file: nginx says "parameter" */
    {
        gh_conf_node_t *n;

        assert_int_equal(gh_conf_parse_string(&cf, "-g",
            (const uint8_t *) "daemon off", 10, &n), GH_ERROR);
        assert_logged("unexpected end of parameter, expecting \";\" in -g:1");
    }
}

static void
test_nesting_limit(void **state)
{
    gh_conf_node_t *n;
    char           *text;
    size_t          i;

    /* "a{a{a{...}}}": 500 nested blocks, far past the limit; a fuzzer
     * would otherwise find the stack's end */
    text = malloc(1500);
    assert_non_null(text);
    for (i = 0; i < 500; i++) {
        text[2 * i] = 'a';
        text[2 * i + 1] = '{';
        text[1000 + i] = '}';
    }
    assert_int_equal(gh_conf_parse_string(&cf, "deep", (uint8_t *) text,
        1500, &n), GH_ERROR);
    assert_logged("too deeply nested blocks");
    free(text);

    n = parse_ok("a{a{a{a{a{}}}}}");
    assert_non_null(n->children->children->children->children);
}

/* --- include ------------------------------------------------------------ */

static void
test_include(void **state)
{
    gh_conf_node_t *n, *h;
    gh_conf_file_t *f;
    char            main_conf[512], expect[1024];

    write_file("inc/conf.d/b.conf", "b_first;\nb_second;\n");
    write_file("inc/conf.d/a.conf", "\n\na_one 1;\n");
    write_file("inc/conf.d/skip.txt", "nope;\n");
    write_file("inc/sub/x.conf", "x_in_block;\ninclude sub/y.conf;\n");
    write_file("inc/sub/y.conf", "y_nested;");
    write_file("inc/main.conf",
        "top;\n"
        "include conf.d/*.conf;\n"
        "http {\n"
        "    include sub/x.conf;\n"
        "    after;\n"
        "}\n"
        "include nothing/*.conf;\n"
        "end;\n");
    snprintf(main_conf, sizeof(main_conf), "%s", tmp_path("inc/main.conf"));

    assert_int_equal(gh_conf_parse_file(&cf, main_conf, &n), GH_OK);
    snprintf(expect, sizeof(expect), "%s/inc/", tmpdir);
    assert_string_equal(cf.conf_prefix, expect);

    assert_arg(n, 0, "top");
    assert_string_equal(n->file, main_conf);
    assert_int_equal(n->line, 1);

    /* sorted glob: a.conf before b.conf, each node with its own file */
    n = n->next;
    assert_arg(n, 0, "a_one");
    assert_string_equal(n->file, tmp_path("inc/conf.d/a.conf"));
    assert_int_equal(n->line, 3);
    n = n->next;
    assert_arg(n, 0, "b_first");
    assert_string_equal(n->file, tmp_path("inc/conf.d/b.conf"));
    assert_int_equal(n->line, 1);
    n = n->next;
    assert_arg(n, 0, "b_second");
    assert_int_equal(n->line, 2);

    n = n->next;
    assert_arg(n, 0, "http");
    assert_string_equal(n->file, main_conf);
    assert_int_equal(n->line, 3);
    h = n->children;
    assert_arg(h, 0, "x_in_block");
    assert_string_equal(h->file, tmp_path("inc/sub/x.conf"));
    h = h->next;
    /* relative includes are relative to the main config's directory,
     * not to the including file (as nginx) */
    assert_arg(h, 0, "y_nested");
    assert_string_equal(h->file, tmp_path("inc/sub/y.conf"));
    h = h->next;
    assert_arg(h, 0, "after");
    assert_int_equal(h->line, 5);
    assert_string_equal(h->file, main_conf);
    assert_null(h->next);

    n = n->next;
    assert_arg(n, 0, "end");
    assert_int_equal(n->line, 8);
    assert_null(n->next);

    /* every file read, for -T */
    assert_int_equal(cf.files.nelts, 5);
    f = gh_array_at(&cf.files, gh_conf_file_t, 0);
    assert_string_equal(f->path, main_conf);
    f = gh_array_at(&cf.files, gh_conf_file_t, 1);
    assert_string_equal(f->path, tmp_path("inc/conf.d/a.conf"));
    assert_int_equal(f->content.len, strlen("\n\na_one 1;\n"));
    assert_int_equal(cf.errors, 0);
}

static void
test_include_absolute_and_twice(void **state)
{
    gh_conf_node_t *n;
    char            text[1024];

    write_file("abs/one.conf", "one;\n");
    snprintf(text, sizeof(text), "include %s;\ninclude \"%s\";\n",
        tmp_path("abs/one.conf"), tmp_path("abs/o*.conf"));
    write_file("main_abs.conf", text);

    assert_int_equal(gh_conf_parse_file(&cf, tmp_path("main_abs.conf"), &n),
        GH_OK);
    assert_arg(n, 0, "one");
    assert_arg(n->next, 0, "one");
    assert_null(n->next->next);
    /* same interned name, and -T shows the file once */
    assert_ptr_equal(n->file, n->next->file);
    assert_int_equal(cf.files.nelts, 2);
}

static void
test_include_errors(void **state)
{
    gh_conf_node_t *n;
    char            expect[1024];

    snprintf(expect, sizeof(expect), "open() \"%s/ie/missing.conf\" failed "
        "(2: No such file or directory) in %s:3", tmpdir,
        tmp_path("ie/main.conf"));
    parse_file_fails("ie/main.conf", "a;\nb;\ninclude missing.conf;\n",
        expect);

    snprintf(expect, sizeof(expect),
        "invalid number of arguments in \"include\" directive in %s:1",
        tmp_path("ie/args.conf"));
    parse_file_fails("ie/args.conf", "include a b;\n", expect);

    snprintf(expect, sizeof(expect), "unexpected \"{\" in %s:2",
        tmp_path("ie/block.conf"));
    parse_file_fails("ie/block.conf", "\ninclude x { }\n", expect);

    /* a file including itself */
    write_file("ie/loop.conf", "include loop.conf;\n");
    cf.conf_prefix = NULL;
    assert_int_equal(gh_conf_parse_file(&cf, tmp_path("ie/loop.conf"), &n),
        GH_ERROR);
    assert_logged("too many nested includes");

    /* the main file itself */
    assert_int_equal(gh_conf_parse_file(&cf, tmp_path("ie/none.conf"), &n),
        GH_ERROR);
    snprintf(expect, sizeof(expect), "open() \"%s\" failed "
        "(2: No such file or directory)", tmp_path("ie/none.conf"));
    assert_logged(expect);

    /* errors inside an included file point into that file */
    write_file("ie/bad.conf", "ok;\n\n  oops }\n");
    cf.conf_prefix = NULL;
    snprintf(expect, sizeof(expect), "unexpected \"}\" in %s:3",
        tmp_path("ie/bad.conf"));
    parse_file_fails("ie/main2.conf", "include bad.conf;\n", expect);

    /* a directory */
    mkdir(tmp_path("ie/dir.conf"), 0700);
    cf.conf_prefix = NULL;
    parse_file_fails("ie/main3.conf", "include dir.conf;\n",
        "failed (21: Is a directory)");

    /* a device would never end (/dev/zero) or block (a FIFO) */
    cf.conf_prefix = NULL;
    parse_file_fails("ie/main4.conf", "\ninclude /dev/null;\n",
        "\"/dev/null\" is not a regular file in ");
}

static void
test_include_from_string(void **state)
{
    gh_conf_node_t *n;
    char            prefix[512];

    write_file("str/s.conf", "from_file;\n");
    snprintf(prefix, sizeof(prefix), "%s/str/", tmpdir);
    cf.conf_prefix = prefix;
    n = parse_ok("a; include s.conf; b;");
    assert_arg(n, 0, "a");
    assert_arg(n->next, 0, "from_file");
    assert_arg(n->next->next, 0, "b");
}

static void
test_dump(void **state)
{
    gh_conf_node_t *n;
    char            expect[2048];
    int             fd;

    write_file("dump/main.conf", "include part.conf;\nmain;");
    write_file("dump/part.conf", "part;\n");
    assert_int_equal(gh_conf_parse_file(&cf, tmp_path("dump/main.conf"), &n),
        GH_OK);

    fd = open(tmp_path("dump/out"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    gh_conf_dump(&cf, fd);
    close(fd);

    snprintf(expect, sizeof(expect),
        "# configuration file %s:\ninclude part.conf;\nmain;\n"
        "# configuration file %s:\npart;\n\n",
        tmp_path("dump/main.conf"), tmp_path("dump/part.conf"));
    {
        char   got[2048];
        FILE  *f = fopen(tmp_path("dump/out"), "r");
        size_t len;

        assert_non_null(f);
        len = fread(got, 1, sizeof(got) - 1, f);
        got[len] = '\0';
        fclose(f);
        assert_string_equal(got, expect);
    }
}

/* --- unknown directives ------------------------------------------------ */

static void
test_check_unknown(void **state)
{
    gh_conf_node_t *n;
    const char     *log;
    char            expect[1024];

    write_file("unk/app", "worker_processes 1;\nhttp {\n  server {\n"
        "    lisen 80;\n    location / {\n      proxy_pas http://x;\n"
        "      totally_unknown_thing;\n    }\n  }\n"
        "  map $a $b {\n    whatever 1;\n    default 0;\n  }\n}\n"
        "sevrer {\n  listen 81;\n  also_unknown;\n}\n");
    assert_int_equal(gh_conf_parse_file(&cf, tmp_path("unk/app"), &n),
        GH_OK);

    assert_int_equal(gh_conf_check_unknown(&cf, n), 5);
    assert_int_equal(cf.errors, 5);
    log = log_take();

    snprintf(expect, sizeof(expect), "[emerg] %d#0: unknown directive "
        "\"proxy_pas\" in %s:6, did you mean \"proxy_pass\"?\n",
        (int) getpid(), tmp_path("unk/app"));
    assert_non_null(strstr(log, expect));
    assert_non_null(strstr(log, "did you mean \"proxy_pass\"?"));
    snprintf(expect, sizeof(expect), "unknown directive \"lisen\" in %s:4",
        tmp_path("unk/app"));
    assert_non_null(strstr(log, expect));
    assert_non_null(strstr(log, "did you mean \"listen\"?"));
    snprintf(expect, sizeof(expect), "unknown directive "
        "\"totally_unknown_thing\" in %s:7\n", tmp_path("unk/app"));
    assert_non_null(strstr(log, expect));
    snprintf(expect, sizeof(expect), "unknown directive \"sevrer\" in %s:15",
        tmp_path("unk/app"));
    assert_non_null(strstr(log, expect));
    assert_non_null(strstr(log, "did you mean \"server\"?"));
    snprintf(expect, sizeof(expect),
        "unknown directive \"also_unknown\" in %s:17", tmp_path("unk/app"));
    assert_non_null(strstr(log, expect));
    /* map's content is data */
    assert_null(strstr(log, "whatever"));
    assert_int_equal(log_count(log, "unknown directive"), 5);

    /* short names get no far-fetched hint */
    n = parse_ok("ab;");
    assert_int_equal(gh_conf_check_unknown(&cf, n), 1);
    log = log_take();
    assert_null(strstr(log, "did you mean"));
}

/* --- dispatch ----------------------------------------------------------- */

static gh_int_t
dispatch(const char *text)
{
    gh_conf_node_t *n;

    assert_int_equal(gh_conf_parse_string(&cf, "t", (const uint8_t *) text,
        strlen(text), &n), GH_OK);
    return gh_conf_dispatch(&cf, n, GH_MAIN_CONF, &main_ctx);
}

static void
dispatch_fails(const char *text, const char *expect)
{
    unsigned before = cf.errors;

    assert_int_equal(dispatch(text), GH_ERROR);
    assert_logged(expect);
    assert_true(cf.errors > before);
}

static void
test_dispatch_ok(void **state)
{
    gh_conf_node_t *n;

    assert_int_equal(dispatch(
        "worker_processes 4;\ndaemon off;\nevents { worker_connections 512; }\n"
        "http {\n  keepalive on;\n  error_log x;\n  server {\n"
        "    listen 80 default;\n"
        "    location / { proxy_pass u; }\n  }\n"
        "  map $a $b { default 0; anything { goes; } }\n}\n"
        "error_log y;\n"), GH_OK);
    assert_int_equal(cf.errors, 0);
    assert_int_equal(core_conf.num, 4);
    assert_int_equal(core_conf.flag, 0);
    assert_int_equal(events_conf.num, 512);
    assert_int_equal(http_main.flag, -1);
    /* keepalive is a loc-level field, even when given in http{} */
    assert_int_equal(http_loc.flag, 1);
    assert_ptr_equal(seen.listen_conf, &http_srv);
    assert_ptr_equal(seen.pass_conf, &http_loc);
    assert_int_equal(seen.ctx_in_handler, GH_HTTP_SRV_CONF);
    assert_arg(seen.node_in_handler, 0, "listen");
    assert_arg(seen.node_in_handler, 2, "default");
    assert_int_equal(seen.node_in_handler->line, 8);
    assert_non_null(seen.raw_children);
    assert_arg(seen.raw_children, 0, "default");
    /* the core error_log (the main-context one) ran last */
    assert_int_equal(seen.http_error_log_ctx, 0);

    /* the dispatcher restores what it changed */
    assert_null(cf.node);
    assert_int_equal(cf.ctx_type, GH_MAIN_CONF);
    assert_null(cf.ctx);

    /* the same name resolved in another context */
    n = parse_ok("error_log z;");
    assert_int_equal(gh_conf_dispatch(&cf, n, GH_HTTP_LOC_CONF, &main_ctx),
        GH_OK);
    assert_int_equal(seen.http_error_log_ctx, GH_HTTP_LOC_CONF);
    assert_int_equal(log_take()[0], '\0');
}

static void
test_dispatch_errors(void **state)
{
    dispatch_fails("daemon on;\nnope 1;", "unknown directive \"nope\" in t:2");
    dispatch_fails("worker_processes 1;\n\nlisten 80;\n",
        "\"listen\" directive is not allowed here in t:3");
    dispatch_fails("http {\n  server {\n    proxy_pass x;\n  }\n}",
        "\"proxy_pass\" directive is not allowed here in t:3");
    dispatch_fails("events {\n  worker_processes 2;\n}",
        "\"worker_processes\" directive is not allowed here in t:2");
    dispatch_fails("worker_processes;",
        "invalid number of arguments in \"worker_processes\" directive "
        "in t:1");
    dispatch_fails("\nworker_processes 1 2;",
        "invalid number of arguments in \"worker_processes\" directive "
        "in t:2");
    dispatch_fails("two a;", "invalid number of arguments in \"two\"");
    dispatch_fails("one_or_three a b;",
        "invalid number of arguments in \"one_or_three\"");
    dispatch_fails("many a;", "invalid number of arguments in \"many\"");
    dispatch_fails("daemon;", "invalid number of arguments in \"daemon\"");
    dispatch_fails("daemon on off;",
        "invalid number of arguments in \"daemon\"");
    dispatch_fails("anything a b c d e f g h i j k;\nhttp x { }",
        "invalid number of arguments in \"http\" directive in t:2");
    dispatch_fails("events;", "directive \"events\" has no opening \"{\" "
        "in t:1");
    dispatch_fails("\n\nworker_processes 1 { }",
        "unexpected \"{\" in t:3");
    dispatch_fails("http { map $a { } }",
        "invalid number of arguments in \"map\"");

    assert_int_equal(dispatch("one_or_three a b c; one_or_three a;"
        "two a b; many a b c d; anything; anything 1 2 3 4 5 6 7 8 9;"), GH_OK);
}

static void
test_dispatch_stops_and_messages(void **state)
{
    const char *log;

    /* the first error stops dispatch: worker_processes after it not set */
    dispatch_fails("http {\n server {\n  location / {\n   proxy_pass bad;\n"
        "  }\n }\n}\nworker_processes 3;",
        "\"proxy_pass\" directive has a bad upstream in t:4");
    assert_int_equal(core_conf.num, GH_UNSET);
    /* restored after the nested failure */
    assert_null(cf.node);
    assert_int_equal(cf.ctx_type, GH_MAIN_CONF);

    /* a handler that logged its own error: exactly one line */
    assert_int_equal(dispatch("http { server { location / {\n"
        "proxy_pass logged; } } }"), GH_ERROR);
    log = log_take();
    assert_non_null(strstr(log, "custom complaint about \"logged\" in t:2"));
    assert_int_equal(log_count(log, "\n"), 1);
}

static void
test_setters(void **state)
{
    gh_str_t *s;
    char      pidpath[512];

    cf.prefix = "/srv/gh/";
    assert_int_equal(dispatch(
        "daemon ON;\nworker_processes 12;\nbuffer_size 16k;\n"
        "max_file 2m;\ntimeout \"1m 30s\";\nttl 2h;\nuser \"www data\";\n"
        "env A B;\nenv C;\nmode Slow;\npid logs/gh.pid;\n"), GH_OK);
    assert_int_equal(core_conf.flag, 1);
    assert_int_equal(core_conf.num, 12);
    assert_int_equal(core_conf.size, 16384);
    assert_int_equal(core_conf.off, 2 * 1024 * 1024);
    assert_int_equal(core_conf.msec, 90000);
    assert_int_equal(core_conf.sec, 7200);
    assert_true(gh_str_eq_c(&core_conf.str, "www data"));
    assert_non_null(core_conf.arr);
    assert_int_equal(core_conf.arr->nelts, 3);
    s = core_conf.arr->elts;
    assert_true(gh_str_eq_c(&s[0], "A"));
    assert_true(gh_str_eq_c(&s[1], "B"));
    assert_true(gh_str_eq_c(&s[2], "C"));
    assert_int_equal(core_conf.mode, MODE_SLOW);
    snprintf(pidpath, sizeof(pidpath), "/srv/gh/logs/gh.pid");
    assert_string_equal(core_conf.path, pidpath);
    assert_int_equal(cf.errors, 0);

    /* each one again: duplicate */
    dispatch_fails("\ndaemon on;", "\"daemon\" directive is duplicate in t:2");
    dispatch_fails("worker_processes 1;",
        "\"worker_processes\" directive is duplicate in t:1");
    dispatch_fails("buffer_size 1;", "\"buffer_size\" directive is duplicate");
    dispatch_fails("max_file 1;", "\"max_file\" directive is duplicate");
    dispatch_fails("timeout 1;", "\"timeout\" directive is duplicate");
    dispatch_fails("ttl 1;", "\"ttl\" directive is duplicate");
    dispatch_fails("user x;", "\"user\" directive is duplicate");
    dispatch_fails("mode fast;", "\"mode\" directive is duplicate");
    dispatch_fails("pid /x;", "\"pid\" directive is duplicate");
}

static void
test_setters_invalid(void **state)
{
    dispatch_fails("\ndaemon yes;", "\"daemon\" directive invalid value "
        "\"yes\", it must be \"on\" or \"off\" in t:2");
    dispatch_fails("worker_processes -1;",
        "\"worker_processes\" directive invalid value \"-1\" in t:1");
    dispatch_fails("worker_processes 99999999999999999999999;",
        "invalid value \"99999999999999999999999\"");
    dispatch_fails("buffer_size 16q;",
        "\"buffer_size\" directive invalid value \"16q\" in t:1");
    dispatch_fails("max_file x;", "\"max_file\" directive invalid value");
    dispatch_fails("timeout 5x;",
        "\"timeout\" directive invalid value \"5x\" in t:1");
    dispatch_fails("ttl 500ms;", "\"ttl\" directive invalid value \"500ms\"");
    dispatch_fails("mode medium;",
        "\"mode\" directive invalid value \"medium\" in t:1");
    dispatch_fails("pid \"\";", "\"pid\" directive invalid value \"\"");

    /* a field still unset after a failed setter */
    assert_int_equal(core_conf.flag, GH_UNSET);
    assert_int_equal(core_conf.mode, (gh_uint_t) -1);

    /* relative path with no prefix: as given (cwd) */
    assert_int_equal(dispatch("pid rel/gh.pid;"), GH_OK);
    assert_string_equal(core_conf.path, "rel/gh.pid");
}

/* --- limits and memory ------------------------------------------------- */

static void
test_relative_main_and_odd_words(void **state)
{
    gh_conf_node_t *n;
    char            cwd[512], expect[1024];
    char           *big;

    write_file("rel/main.conf", "a\\\nb c;\n");
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(gh_conf_parse_file(&cf, "rel/main.conf", &n), GH_OK);
    assert_int_equal(chdir(cwd), 0);
    /* names in messages are absolute whatever the working directory */
    assert_string_equal(n->file, tmp_path("rel/main.conf"));
    snprintf(expect, sizeof(expect), "%s/rel/", tmpdir);
    assert_string_equal(cf.conf_prefix, expect);
    /* backslash-newline is kept inside a bare word, and counted */
    assert_arg(n, 0, "a\\\nb");
    assert_int_equal(n->nargs, 2);

    /* a bare word over the limit */
    big = malloc(70001);
    assert_non_null(big);
    memset(big, 'w', 70000);
    big[70000] = '\0';
    assert_int_equal(gh_conf_parse_string(&cf, "big", (uint8_t *) big,
        70000, &n), GH_ERROR);
    assert_logged("too long parameter \"wwwwwwwwwwwwwwww...\" started "
        "in big:1");
    free(big);

    dispatch_fails("two 1 2 3 4 5 6 7 8;",
        "invalid number of arguments in \"two\"");
}

/* every budget from "nothing fits" to "everything fits": each parse
 * either succeeds or fails cleanly with a message (ASan checks the rest) */
static void
test_arena_budget(void **state)
{
    gh_conf_node_t *n;
    gh_arena_t     *a;
    gh_conf_t       c;
    gh_int_t        rc;
    const char     *log;
    size_t          budget;
    bool            ok = false;

    write_file("budget/part.conf", "p 1 2 3;\nq { r; }\n");
    write_file("budget/main.conf", "worker_processes 1;\n"
        "include part.conf;\nhttp { server { listen 80; } }\n");

    for (budget = 512; budget < 64 * 1024 && !ok; budget += 256) {
        a = gh_arena_create(1024, budget);
        if (a == NULL) {
            continue;
        }
        gh_conf_init(&c, NULL, a, &test_log);
        rc = gh_conf_parse_file(&c, tmp_path("budget/main.conf"), &n);
        log = log_take();
        if (rc == GH_OK) {
            ok = true;
            assert_arg(n->next, 0, "p");
            assert_int_equal(c.errors, 0);
        } else {
            assert_null(n);
            assert_int_equal(c.errors, 1);
            assert_non_null(strstr(log,
                "not enough memory for the configuration"));
        }
        gh_arena_destroy(a);
    }
    assert_true(ok);
}

/* --- helpers ----------------------------------------------------------- */

static void
test_full_name(void **state)
{
    gh_str_t rel = gh_string("a/b.conf"), abs = gh_string("/etc/x");
    gh_str_t empty = gh_null_string;

    assert_string_equal(gh_conf_full_name(&cf, &rel, true), "a/b.conf");
    cf.conf_prefix = "/etc/gh/";
    cf.prefix = "/usr/local/gh";
    assert_string_equal(gh_conf_full_name(&cf, &rel, true),
        "/etc/gh/a/b.conf");
    assert_string_equal(gh_conf_full_name(&cf, &rel, false),
        "/usr/local/gh/a/b.conf");
    assert_string_equal(gh_conf_full_name(&cf, &abs, true), "/etc/x");
    assert_string_equal(gh_conf_full_name(&cf, &abs, false), "/etc/x");
    assert_string_equal(gh_conf_full_name(&cf, &empty, true), "/etc/gh/");
    cf.conf_prefix = NULL;
    assert_string_equal(gh_conf_full_name(&cf, &rel, true),
        "/usr/local/gh/a/b.conf");
}

static void
test_find_command(void **state)
{
    gh_str_t     name = gh_string("error_log"), none = gh_string("nope");
    gh_str_t     pre = gh_string("error_lo");
    gh_module_t *m = NULL;
    const gh_command_t *cmd;

    assert_int_equal(test_core_module.index, 0);
    assert_int_equal(test_http_module.index, 2);
    assert_int_equal(gh_modules_n, 3);

    cmd = gh_modules_find_command(&name, GH_HTTP_SRV_CONF, &m);
    assert_non_null(cmd);
    assert_ptr_equal(m, &test_http_module);
    cmd = gh_modules_find_command(&name, GH_MAIN_CONF, &m);
    assert_ptr_equal(m, &test_core_module);
    cmd = gh_modules_find_command(&name, 0, &m);
    assert_ptr_equal(m, &test_core_module);
    cmd = gh_modules_find_command(&name, GH_EVENTS_CONF, &m);
    assert_non_null(cmd);
    assert_ptr_equal(m, &test_core_module);
    assert_null(gh_modules_find_command(&none, 0, &m));
    assert_null(gh_modules_find_command(&pre, 0, &m));
}

static void
test_error_helpers(void **state)
{
    gh_conf_node_t n = { NULL, 0, "/f", 7, false, NULL, NULL };

    gh_conf_error_at(&cf, GH_LOG_WARN, &n, "soft %d", 1);
    assert_logged("[warn] ");
    assert_int_equal(cf.errors, 0);
    gh_conf_error_at(&cf, GH_LOG_EMERG, &n, "hard %s", "x");
    assert_logged("[emerg] ");
    assert_int_equal(cf.errors, 1);
    cf.node = &n;
    gh_conf_error(&cf, "via node");
    assert_logged("via node in /f:7\n");
    cf.node = NULL;
    gh_conf_error(&cf, "no node");
    assert_logged("no node\n");
    assert_int_equal(cf.errors, 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quotes_and_escapes, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_comments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nesting_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_absolute_and_twice,
            setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_from_string, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_dump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_errors, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_stops_and_messages,
            setup, teardown),
        cmocka_unit_test_setup_teardown(test_setters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setters_invalid, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_relative_main_and_odd_words,
            setup, teardown),
        cmocka_unit_test_setup_teardown(test_arena_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_helpers, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
