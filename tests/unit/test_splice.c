/*
 * test_splice.c: the splice relay over socketpairs and the worker's cache
 * of empty pipes: a pipe left empty is reused by the next relay, one that
 * still holds bytes is closed (never handed on), the cache is bounded and
 * dropped on demand.
 */
#include "event/gh_splice.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

/* src: the relay reads up[0], the test writes up[1];
 * dst: the relay writes down[0], the test reads down[1] */
typedef struct {
    int        up[2], down[2];
    gh_conn_t  src, dst;
} relay_t;

static void
relay_open(relay_t *rl)
{
    memset(rl, 0, sizeof(*rl));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
        rl->up), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
        rl->down), 0);
    rl->src.fd = rl->up[0];
    rl->dst.fd = rl->down[0];
}

static void
relay_close(relay_t *rl)
{
    close(rl->up[0]);
    close(rl->up[1]);
    close(rl->down[0]);
    close(rl->down[1]);
}

static void
fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t) (seed + i * 7 + i / 4099);
    }
}

/* n bytes through the relay; what comes out must be what went in */
static void
relay_bytes(gh_splice_t *sp, size_t n, uint8_t seed)
{
    static uint8_t in[200000], out[sizeof(in)];
    relay_t rl;
    off_t   rest = (off_t) n, moved = 0;
    size_t  got = 0, put = 0;

    assert_true(n <= sizeof(in));
    fill(in, n, seed);
    relay_open(&rl);
    for (int i = 0; rest > 0 || sp->in_pipe > 0; i++) {
        assert_true(i < 100000);
        if (put < n) {
            ssize_t w = write(rl.up[1], in + put, n - put);
            if (w > 0) {
                put += (size_t) w;
            }
        }
        rl.src.read.ready = 1;
        rl.dst.write.ready = 1;
        gh_int_t rc = gh_splice_pump(sp, &rl.src, &rl.dst, &rest, &moved);
        assert_true(rc == GH_OK || rc == GH_AGAIN);
        ssize_t r;
        while ((r = read(rl.down[1], out + got, sizeof(out) - got)) > 0) {
            got += (size_t) r;
        }
    }
    ssize_t r;
    while ((r = read(rl.down[1], out + got, sizeof(out) - got)) > 0) {
        got += (size_t) r;
    }
    assert_int_equal(got, n);
    assert_int_equal(moved, (off_t) n);
    assert_memory_equal(in, out, n);
    relay_close(&rl);
}

static ino_t
inode_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_ino;
}

static bool
fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void
test_empty_pipe_reused(void **state)
{
    gh_splice_t sp;

    gh_splice_cache_drop();
    gh_splice_init(&sp);
    relay_bytes(&sp, 100003, 1);
    ino_t ino = inode_of(sp.pipe[0]);
    int fd0 = sp.pipe[0];
    gh_splice_release(&sp);
    assert_int_equal(sp.pipe[0], -1);
    assert_int_equal(gh_splice_cached(), 1);
    assert_true(fd_open(fd0));         /* kept, not closed */

    gh_splice_release(&sp);            /* twice is harmless */
    assert_int_equal(gh_splice_cached(), 1);

    /* the next relay takes it instead of making one */
    gh_splice_init(&sp);
    relay_bytes(&sp, 70001, 2);
    assert_int_equal(inode_of(sp.pipe[0]), ino);
    assert_int_equal(gh_splice_cached(), 0);
    gh_splice_release(&sp);
    assert_int_equal(gh_splice_cached(), 1);

    gh_splice_cache_drop();
    assert_int_equal(gh_splice_cached(), 0);
    assert_false(fd_open(fd0));
}

static void
test_full_pipe_closed(void **state)
{
    static uint8_t in[1 << 20];
    gh_splice_t sp;
    relay_t     rl;
    off_t       rest = sizeof(in), moved = 0;
    size_t      put = 0;

    gh_splice_cache_drop();
    relay_open(&rl);
    gh_splice_init(&sp);
    fill(in, sizeof(in), 3);
    /* nobody reads down[1]: the relay stops with bytes in the pipe */
    for (int i = 0; i < 1000; i++) {
        ssize_t w = write(rl.up[1], in + put, sizeof(in) - put);
        if (w > 0) {
            put += (size_t) w;
        }
        rl.src.read.ready = 1;
        rl.dst.write.ready = 1;
        assert_int_equal(gh_splice_pump(&sp, &rl.src, &rl.dst, &rest,
            &moved), GH_AGAIN);
        if (!rl.dst.write.ready) {
            break;                      /* dst full */
        }
    }
    assert_false(rl.dst.write.ready);
    assert_true(sp.in_pipe > 0);
    int fd0 = sp.pipe[0], fd1 = sp.pipe[1];
    gh_splice_release(&sp);            /* the client went away, say */
    assert_int_equal(gh_splice_cached(), 0);
    assert_false(fd_open(fd0));
    assert_false(fd_open(fd1));
    relay_close(&rl);

    /* and the next relay is byte-exact on a fresh pipe */
    gh_splice_init(&sp);
    relay_bytes(&sp, 65537, 4);
    gh_splice_release(&sp);
    assert_int_equal(gh_splice_cached(), 1);
    gh_splice_cache_drop();
}

static void
test_upstream_eof_pipe_reused(void **state)
{
    gh_splice_t sp;
    relay_t     rl;
    off_t       rest = 100000, moved = 0;
    uint8_t     buf[5000], out[5000];

    gh_splice_cache_drop();
    relay_open(&rl);
    gh_splice_init(&sp);
    fill(buf, sizeof(buf), 5);
    assert_int_equal(write(rl.up[1], buf, sizeof(buf)), (ssize_t) sizeof(buf));
    close(rl.up[1]);
    rl.up[1] = -1;
    rl.src.read.ready = 1;
    rl.dst.write.ready = 1;
    /* the source ends early: everything read was written, the pipe is
     * empty and may serve again */
    assert_int_equal(gh_splice_pump(&sp, &rl.src, &rl.dst, &rest, &moved),
        GH_DONE);
    assert_int_equal(moved, (off_t) sizeof(buf));
    assert_int_equal(sp.in_pipe, 0);
    assert_int_equal(read(rl.down[1], out, sizeof(out)),
        (ssize_t) sizeof(out));
    assert_memory_equal(buf, out, sizeof(buf));
    ino_t ino = inode_of(sp.pipe[0]);
    gh_splice_release(&sp);
    assert_int_equal(gh_splice_cached(), 1);
    relay_close(&rl);

    gh_splice_init(&sp);
    relay_bytes(&sp, 99999, 6);
    assert_int_equal(inode_of(sp.pipe[0]), ino);
    gh_splice_release(&sp);
    gh_splice_cache_drop();
}

static void
test_cache_bounded(void **state)
{
    enum { N = GH_SPLICE_PIPE_CACHE + 4 };
    gh_splice_t sp[N];
    int         fds[N];

    gh_splice_cache_drop();
    for (int i = 0; i < N; i++) {
        gh_splice_init(&sp[i]);
        relay_bytes(&sp[i], 1000 + (size_t) i, (uint8_t) i);
        fds[i] = sp[i].pipe[0];
    }
    for (int i = 0; i < N; i++) {
        gh_splice_release(&sp[i]);
    }
    assert_int_equal(gh_splice_cached(), GH_SPLICE_PIPE_CACHE);
    for (int i = 0; i < N; i++) {
        /* the first ones filled the cache, the rest were closed */
        assert_int_equal(fd_open(fds[i]), i < GH_SPLICE_PIPE_CACHE);
    }
    gh_splice_cache_drop();
    for (int i = 0; i < N; i++) {
        assert_false(fd_open(fds[i]));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_pipe_reused),
        cmocka_unit_test(test_full_pipe_closed),
        cmocka_unit_test(test_upstream_eof_pipe_reused),
        cmocka_unit_test(test_cache_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
