/*
 * test_event.c: the loop with real file descriptors: a socketpair
 * connection, close inside a handler, timers and posted events in
 * gh_loop_run_once, send_chain with writev and sendfile, accepting on a
 * loopback listener (and the worker_connections cap), address parsing.
 */
#include "event/gh_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

/* for calls expected to fail: keeps the test output readable */
static gh_log_t gh_quiet = { .level = -1 };

static char gh_rbuf[256];
static int  gh_rlen;
static int  gh_reads, gh_writes, gh_eofs;

static void
on_read(gh_event_t *ev)
{
    gh_conn_t *c = ev->data;
    ssize_t    n;

    gh_reads++;
    while ((n = c->recv(c, (uint8_t *) gh_rbuf + gh_rlen,
                sizeof(gh_rbuf) - 1 - (size_t) gh_rlen)) > 0)
    {
        gh_rlen += (int) n;
    }
    gh_rbuf[gh_rlen] = '\0';
    if (n == 0) {
        gh_eofs++;
        gh_conn_close(c);
    }
}

static void
on_write(gh_event_t *ev)
{
    gh_writes++;
}

static gh_conn_t *
pair_conn(gh_loop_t *loop, int sv[2])
{
    gh_conn_t *c;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
        0);
    c = gh_conn_get(sv[0], loop, NULL);
    assert_non_null(c);
    c->read.handler = on_read;
    c->write.handler = on_write;
    assert_int_equal(gh_loop_add_conn(loop, c), GH_OK);
    return c;
}

static void
test_socketpair_read(void **state)
{
    gh_loop_t  *loop = gh_loop_create(64, NULL);
    gh_uint_t   active = gh_conns.active;
    gh_conn_t  *c;
    int         sv[2];

    gh_time_init();
    c = pair_conn(loop, sv);
    assert_int_equal(gh_conns.active, active + 1);

    /* the first edge: writable */
    gh_reads = gh_writes = gh_eofs = gh_rlen = 0;
    assert_int_equal(gh_loop_run_once(loop, 1000), GH_OK);
    assert_int_equal(gh_writes, 1);
    assert_true(c->write.ready);

    assert_int_equal(write(sv[1], "ping", 4), 4);
    assert_int_equal(gh_loop_run_once(loop, 1000), GH_OK);
    assert_true(gh_reads >= 1);
    assert_string_equal(gh_rbuf, "ping");
    assert_false(c->read.ready);       /* read until EAGAIN */

    /* peer closes: the read handler sees EOF and closes; the write
     * handler for the same epoll event must not run on the dead conn */
    gh_writes = 0;
    close(sv[1]);
    assert_int_equal(gh_loop_run_once(loop, 1000), GH_OK);
    assert_int_equal(gh_eofs, 1);
    assert_int_equal(gh_writes, 0);
    assert_int_equal(gh_conns.active, active);
    gh_loop_destroy(loop);
}

static void
test_send(void **state)
{
    gh_loop_t  *loop = gh_loop_create(64, NULL);
    gh_conn_t  *c;
    int         sv[2];
    char        buf[16];

    c = pair_conn(loop, sv);
    assert_int_equal(c->send(c, (const uint8_t *) "pong", 4), 4);
    assert_int_equal(c->sent, 4);
    assert_int_equal(read(sv[1], buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "pong", 4);
    assert_int_equal(c->recv(c, (uint8_t *) buf, sizeof(buf)), GH_AGAIN);
    gh_conn_close(c);
    gh_conn_close(c);                  /* twice is harmless */
    close(sv[1]);
    gh_loop_destroy(loop);
}

static int gh_timer_fired;

static void
on_timer(gh_event_t *ev)
{
    gh_timer_fired += ev->timedout;
}

static void
on_posted(gh_event_t *ev)
{
    gh_timer_fired += 100;
}

static void
test_timer_in_loop(void **state)
{
    gh_loop_t  *loop = gh_loop_create(64, NULL);
    gh_event_t  ev = { .handler = on_timer };
    gh_event_t  post = { .handler = on_posted };
    gh_msec_t   start;

    gh_time_update();
    start = gh_current_msec;
    gh_timer_fired = 0;
    gh_timer_add(loop, &ev, 30);
    for (int i = 0; i < 10 && !gh_timer_fired; i++) {
        assert_int_equal(gh_loop_run_once(loop, 1000), GH_OK);
    }
    assert_int_equal(gh_timer_fired, 1);
    assert_true(gh_current_msec - start >= 30);
    assert_false(ev.timer_set);

    /* a posted event makes the wait zero and runs in the same round */
    gh_post_event(loop, &post);
    start = gh_current_msec;
    assert_int_equal(gh_loop_run_once(loop, 5000), GH_OK);
    assert_int_equal(gh_timer_fired, 101);
    assert_true(gh_current_msec - start < 1000);

    /* max_wait caps the wait when nothing is pending */
    assert_int_equal(gh_loop_run_once(loop, 10), GH_OK);
    gh_loop_destroy(loop);
}

static gh_buf_t *
mem_buf(gh_arena_t *a, const char *s)
{
    gh_buf_t *b = gh_buf_create(a, strlen(s));

    memcpy(b->last, s, strlen(s));
    b->last += strlen(s);
    return b;
}

static gh_chain_t *
make_chain(gh_arena_t *a, int fd)
{
    gh_chain_t *head = NULL, **next = &head;
    gh_buf_t   *file, *bufs[4];

    bufs[0] = mem_buf(a, "abc");
    bufs[1] = mem_buf(a, "");
    bufs[2] = mem_buf(a, "def");
    file = gh_calloc(a, sizeof(gh_buf_t));
    file->in_file = 1;
    file->fd = fd;
    file->file_pos = 2;
    file->file_last = 8;
    bufs[3] = file;
    for (int i = 0; i < 4; i++) {
        *next = gh_chain_link(a, bufs[i]);
        next = &(*next)->next;
    }
    *next = gh_chain_link(a, mem_buf(a, "!"));
    return head;
}

static void
test_send_chain(void **state)
{
    gh_loop_t  *loop = gh_loop_create(64, NULL);
    gh_arena_t *a = gh_arena_create(1024, 0);
    char        path[] = "/tmp/gh_test_chainXXXXXX";
    char        buf[64];
    gh_chain_t *cl, *rest;
    gh_conn_t  *c;
    int         sv[2], fd;
    ssize_t     n;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "0123456789", 10), 10);

    c = pair_conn(loop, sv);
    cl = make_chain(a, fd);
    /* a limit stops early and leaves the rest */
    rest = c->send_chain(c, cl, 4);
    assert_non_null(rest);
    assert_ptr_equal(rest->buf->pos, rest->buf->start + 1);   /* "d|ef" */
    rest = c->send_chain(c, rest, 0);
    assert_null(rest);
    assert_int_equal(c->sent, 3 + 3 + 6 + 1);

    n = read(sv[1], buf, sizeof(buf) - 1);
    assert_int_equal(n, 13);
    buf[n] = '\0';
    assert_string_equal(buf, "abcdef234567!");

    gh_conn_close(c);
    close(sv[1]);
    close(fd);
    gh_arena_destroy(a);
    gh_loop_destroy(loop);
}

/* a chain sent to a peer that has gone: an EPIPE error for the caller,
 * never a SIGPIPE, even with the signal at its default action (which
 * would kill this test) -- one iovec (send) and several (sendmsg),
 * each named in gh_conn_send_failed */
static void
test_send_chain_epipe(void **state)
{
    gh_loop_t  *loop = gh_loop_create(64, NULL);
    gh_arena_t *a = gh_arena_create(1024, 0);
    gh_chain_t *cl;
    gh_conn_t  *c;
    int         sv[2];
    void        (*old)(int) = signal(SIGPIPE, SIG_DFL);

    c = pair_conn(loop, sv);
    c->log = gh_quiet;
    close(sv[1]);

    cl = gh_chain_link(a, mem_buf(a, "one buffer"));
    errno = 0;
    gh_conn_send_failed = "?";
    assert_ptr_equal(c->send_chain(c, cl, 0), GH_CHAIN_ERROR);
    assert_int_equal(errno, EPIPE);
    assert_true(c->write.error);
    /* the callers' log lines name the call that failed */
    assert_string_equal(gh_conn_send_failed, "send");

    c->write.error = 0;
    cl = gh_chain_link(a, mem_buf(a, "two "));
    cl->next = gh_chain_link(a, mem_buf(a, "buffers"));
    errno = 0;
    assert_ptr_equal(c->send_chain(c, cl, 0), GH_CHAIN_ERROR);
    assert_int_equal(errno, EPIPE);
    assert_true(c->write.error);
    assert_string_equal(gh_conn_send_failed, "sendmsg");

    signal(SIGPIPE, old);
    gh_conn_close(c);
    gh_arena_destroy(a);
    gh_loop_destroy(loop);
}

/* a small buffer behind a `coalesce` buffer with room is copied into it,
 * so the two leave in one send; without the room, or without the flag,
 * they stay apart (two iovecs), and the bytes on the wire are the same */
static void
test_send_chain_coalesce(void **state)
{
    gh_loop_t  *loop = gh_loop_create(64, NULL);
    gh_arena_t *a = gh_arena_create(1024, 0);
    gh_buf_t   *head, *body, *tail;
    gh_chain_t *cl;
    gh_conn_t  *c;
    char        buf[64];
    int         sv[2];
    ssize_t     n;

    c = pair_conn(loop, sv);

    head = gh_buf_create(a, 8 + 4);
    memcpy(head->last, "HEAD:", 5);
    head->last += 5;
    head->coalesce = 1;
    body = mem_buf(a, "body");
    tail = mem_buf(a, "-tail");     /* no room left for it */
    cl = gh_chain_link(a, head);
    cl->next = gh_chain_link(a, body);
    cl->next->next = gh_chain_link(a, tail);

    assert_null(c->send_chain(c, cl, 0));
    assert_int_equal(head->last - head->start, 9);
    assert_memory_equal(head->start, "HEAD:body", 9);
    assert_ptr_equal(body->pos, body->last);
    assert_ptr_equal(tail->pos, tail->last);
    assert_memory_equal(tail->start, "-tail", 5);
    assert_int_equal(c->sent, 14);
    n = read(sv[1], buf, sizeof(buf) - 1);
    assert_int_equal(n, 14);
    buf[n] = '\0';
    assert_string_equal(buf, "HEAD:body-tail");

    /* no flag: nothing is copied */
    head = gh_buf_create(a, 16);
    memcpy(head->last, "HEAD:", 5);
    head->last += 5;
    body = mem_buf(a, "body");
    cl = gh_chain_link(a, head);
    cl->next = gh_chain_link(a, body);
    assert_null(c->send_chain(c, cl, 0));
    assert_int_equal(head->last - head->start, 5);
    n = read(sv[1], buf, sizeof(buf) - 1);
    assert_int_equal(n, 9);

    gh_conn_close(c);
    close(sv[1]);
    gh_arena_destroy(a);
    gh_loop_destroy(loop);
}

static gh_conn_t *gh_accepted;
static int        gh_naccepted;

static void
on_accept(gh_conn_t *c)
{
    gh_naccepted++;
    gh_accepted = c;
}

static int
connect_to(const gh_listening_t *ls, struct sockaddr_in *sin)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *) sin, sizeof(*sin)), 0);
    return fd;
}

static void
test_accept(void **state)
{
    gh_loop_t         *loop = gh_loop_create(64, NULL);
    gh_listening_t     ls;
    struct sockaddr_in sin;
    socklen_t          len = sizeof(sin);
    gh_uint_t          max = gh_conns.max;
    gh_str_t           addr = gh_string("127.0.0.1:1");
    const char        *err;
    char               b;
    int                cfd, cfd2;

    memset(&ls, 0, sizeof(ls));
    assert_int_equal(gh_parse_addr_port(&addr, &ls.sockaddr, &ls.socklen, 0,
        &err), GH_OK);
    ((struct sockaddr_in *) &ls.sockaddr)->sin_port = 0;   /* ephemeral */
    ls.handler = on_accept;
    assert_int_equal(gh_listening_open(&ls, &gh_log_stderr), GH_OK);
    assert_string_equal(ls.addr_text, "127.0.0.1:0");
    assert_int_equal(getsockname(ls.fd, (struct sockaddr *) &sin, &len), 0);
    assert_int_equal(gh_listening_add(loop, &ls), GH_OK);
    assert_non_null(ls.conn);

    gh_naccepted = 0;
    cfd = connect_to(&ls, &sin);
    for (int i = 0; i < 10 && !gh_naccepted; i++) {
        gh_loop_run_once(loop, 1000);
    }
    assert_int_equal(gh_naccepted, 1);
    /* no arena until asked for; the IPv4 text is in the object */
    assert_null(gh_accepted->arena);
    assert_true(gh_str_eq_c(&gh_accepted->addr_text, "127.0.0.1"));
    assert_ptr_equal(gh_accepted->addr_text.data,
        gh_accepted->addr_text_buf);
    assert_true(gh_accepted->accepted);
    assert_int_equal(gh_conn_arena(gh_accepted)->block_size, 1024);
    assert_true(gh_accepted->tcp_nodelay);
    assert_ptr_equal(gh_accepted->listening, &ls);
    assert_true(gh_accepted->read.active && gh_accepted->write.active);
    gh_conn_close(gh_accepted);
    close(cfd);

    /* at worker_connections the next connection is closed at once */
    gh_conns.max = gh_conns.active;
    cfd2 = connect_to(&ls, &sin);
    for (int i = 0; i < 3; i++) {
        gh_loop_run_once(loop, 50);
    }
    assert_int_equal(gh_naccepted, 1);
    assert_int_equal(read(cfd2, &b, 1), 0);
    close(cfd2);
    gh_conns.max = max;

    gh_conn_close(ls.conn);            /* closes the listening fd */
    gh_loop_run_once(loop, 0);
    gh_loop_destroy(loop);
}

static void
test_unix_listener(void **state)
{
    gh_listening_t ls;
    char           path[64];
    gh_str_t       addr;
    const char    *err;

    snprintf(path, sizeof(path), "unix:/tmp/gh_test_%d.sock", (int) getpid());
    addr.data = (uint8_t *) path;
    addr.len = strlen(path);
    memset(&ls, 0, sizeof(ls));
    assert_int_equal(gh_parse_addr_port(&addr, &ls.sockaddr, &ls.socklen, 0,
        &err), GH_OK);
    assert_int_equal(gh_listening_open(&ls, &gh_log_stderr), GH_OK);
    assert_string_equal(ls.addr_text, path);

    /* a live socket is left alone */
    {
        gh_listening_t ls2 = ls;

        ls2.fd = -1;
        assert_int_equal(gh_listening_open(&ls2, &gh_quiet), GH_ERROR);
    }
    /* the file of a dead server is stale and removed */
    close(ls.fd);
    assert_int_equal(gh_listening_open(&ls, &gh_log_stderr), GH_OK);
    close(ls.fd);
    unlink(path + 5);
}

static void
check_addr(const char *in, int def, const char *text)
{
    gh_str_t                s = { strlen(in), (uint8_t *) in };
    struct sockaddr_storage ss;
    socklen_t               len;
    const char             *err = NULL;
    char                    buf[128];

    assert_int_equal(gh_parse_addr_port(&s, &ss, &len, def, &err), GH_OK);
    gh_sock_ntop((struct sockaddr *) &ss, len, buf, sizeof(buf), true);
    assert_string_equal(buf, text);
}

static void
check_addr_err(const char *in, int def, const char *msg)
{
    gh_str_t                s = { strlen(in), (uint8_t *) in };
    struct sockaddr_storage ss;
    socklen_t               len;
    const char             *err = NULL;

    assert_int_equal(gh_parse_addr_port(&s, &ss, &len, def, &err), GH_ERROR);
    assert_non_null(err);
    assert_string_equal(err, msg);
}

static void
test_parse_addr(void **state)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
    char                buf[64];

    check_addr("8080", 80, "0.0.0.0:8080");
    check_addr("127.0.0.1:8080", 80, "127.0.0.1:8080");
    check_addr("127.0.0.1", 80, "127.0.0.1:80");
    check_addr("*:80", 0, "0.0.0.0:80");
    check_addr("[::1]:8080", 0, "[::1]:8080");
    check_addr("[::]:80", 0, "[::]:80");
    check_addr("[::1]", 443, "[::1]:443");
    check_addr("unix:/run/gh.sock", 0, "unix:/run/gh.sock");
    check_addr("localhost:8080", 0, "127.0.0.1:8080");

    check_addr_err("0", 80, "invalid port");
    check_addr_err("127.0.0.1:0", 80, "invalid port");
    check_addr_err("127.0.0.1:65536", 80, "invalid port");
    check_addr_err("127.0.0.1:8o", 80, "invalid port");
    check_addr_err("127.0.0.1:", 80, "invalid port");
    check_addr_err("127.0.0.1", 0, "no port");
    check_addr_err(":80", 0, "no host");
    check_addr_err("::1", 80, "invalid host");
    check_addr_err("[::1", 80, "invalid host");
    check_addr_err("[::1]x", 80, "invalid host");
    check_addr_err("[::1]", 0, "no port");
    check_addr_err("[::g]:80", 0, "invalid IPv6 address");
    check_addr_err("no-such-host.invalid:80", 0, "host not found");
    check_addr_err("unix:", 0, "no path in the unix domain socket");

    /* without the port, IPv6 is printed without brackets as nginx does */
    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    gh_sock_ntop((struct sockaddr *) &sin6, sizeof(sin6), buf, sizeof(buf),
        false);
    assert_string_equal(buf, "2001:db8::1");
    /* truncation keeps the NUL */
    assert_int_equal(gh_sock_ntop((struct sockaddr *) &sin6, sizeof(sin6),
        buf, 5, true), 4);
    assert_string_equal(buf, "[200");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socketpair_read),
        cmocka_unit_test(test_send),
        cmocka_unit_test(test_timer_in_loop),
        cmocka_unit_test(test_send_chain),
        cmocka_unit_test(test_send_chain_epipe),
        cmocka_unit_test(test_send_chain_coalesce),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_unix_listener),
        cmocka_unit_test(test_parse_addr),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
