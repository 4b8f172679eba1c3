/*
 * gh_splice.c: socket -> pipe -> socket with splice(2).  The pipe is taken
 * lazily per relay (64 KiB of kernel buffer) from the worker's cache of
 * empty pipes, or made; memory in user space stays zero whatever the body
 * size.
 *
 * Emptiness is known exactly, not guessed: in_pipe counts what splice()
 * reported moved in minus what it reported moved out, and splice() moves
 * nothing when it fails.  A relay cut short with bytes still in the pipe
 * (client gone, timeout) therefore closes it.  Debug builds also ask the
 * kernel (FIONREAD) before caching.
 *
 * The cached pipes belong to the worker, not to a connection: they are not
 * charged to a connection's memory account (pipes in use never were), and
 * an empty pipe holds no data pages, only its fds and a small ring.
 */
#include "gh_splice.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define GH_SPLICE_CHUNK (1 << 20)

/* the worker's empty pipes; a worker is one process and one thread */
static int    gh_splice_free[GH_SPLICE_PIPE_CACHE][2];
static size_t gh_splice_nfree;

void
gh_splice_init(gh_splice_t *sp)
{
    sp->pipe[0] = sp->pipe[1] = -1;
    sp->in_pipe = 0;
}

static gh_int_t
gh_splice_acquire(gh_splice_t *sp)
{
    if (gh_splice_nfree > 0) {
        gh_splice_nfree--;
        sp->pipe[0] = gh_splice_free[gh_splice_nfree][0];
        sp->pipe[1] = gh_splice_free[gh_splice_nfree][1];
        return GH_OK;
    }
    if (pipe2(sp->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
        sp->pipe[0] = sp->pipe[1] = -1;
        return GH_ERROR;
    }
    return GH_OK;
}

#ifdef GH_DEBUG
static bool
gh_splice_pipe_empty(int fd)
{
    int n = -1;
    return ioctl(fd, FIONREAD, &n) == 0 && n == 0;
}
#endif

void
gh_splice_release(gh_splice_t *sp)
{
    if (sp->pipe[0] >= 0) {
        if (sp->in_pipe == 0 && gh_splice_nfree < GH_SPLICE_PIPE_CACHE) {
            GH_ASSERT(gh_splice_pipe_empty(sp->pipe[0]));
            gh_splice_free[gh_splice_nfree][0] = sp->pipe[0];
            gh_splice_free[gh_splice_nfree][1] = sp->pipe[1];
            gh_splice_nfree++;
        } else {
            close(sp->pipe[0]);
            close(sp->pipe[1]);
        }
    }
    sp->pipe[0] = sp->pipe[1] = -1;
    sp->in_pipe = 0;
}

void
gh_splice_cache_drop(void)
{
    while (gh_splice_nfree > 0) {
        gh_splice_nfree--;
        close(gh_splice_free[gh_splice_nfree][0]);
        close(gh_splice_free[gh_splice_nfree][1]);
    }
}

size_t
gh_splice_cached(void)
{
    return gh_splice_nfree;
}

gh_int_t
gh_splice_pump(gh_splice_t *sp, gh_conn_t *src, gh_conn_t *dst, off_t *rest,
    off_t *moved)
{
    if (sp->pipe[0] < 0 && gh_splice_acquire(sp) != GH_OK) {
        return GH_ERROR;
    }
    for (;;) {
        while (sp->in_pipe) {
            if (!dst->write.ready) {
                return GH_AGAIN;
            }
            ssize_t n = splice(sp->pipe[0], NULL, dst->fd, NULL, sp->in_pipe,
                SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0) {
                if (errno == EAGAIN) {
                    dst->write.ready = 0;
                    return GH_AGAIN;
                }
                if (errno == EINTR) {
                    continue;
                }
                dst->write.error = 1;
                return GH_ERROR;
            }
            sp->in_pipe -= (size_t) n;
            dst->sent += n;
            *moved += n;
        }
        if (*rest == 0) {
            return GH_OK;
        }
        if (!src->read.ready) {
            return GH_AGAIN;
        }
        size_t want = (size_t) gh_min(*rest, (off_t) GH_SPLICE_CHUNK);
        ssize_t n = splice(src->fd, NULL, sp->pipe[1], NULL, want,
            SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EAGAIN) {
                /* the socket is empty -- or the pipe is full, which the
                 * loop above cannot leave us with */
                src->read.ready = 0;
                return GH_AGAIN;
            }
            if (errno == EINTR) {
                continue;
            }
            src->read.error = 1;
            return GH_ERROR;
        }
        if (n == 0) {
            src->read.eof = 1;
            return GH_DONE;
        }
        sp->in_pipe += (size_t) n;
        *rest -= n;
    }
}
