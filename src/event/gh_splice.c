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

static void gh_spool_pipe_close(void);

void
gh_splice_cache_drop(void)
{
    gh_spool_pipe_close();
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

/* --- socket -> file ---------------------------------------------------- */

/* the worker's spool pipe: empty between calls, closed after an error */
static int    gh_spool_pipe[2] = { -1, -1 };
static size_t gh_spool_pipe_size;

#define GH_SPOOL_PIPE_SIZE (1 << 20)

static void
gh_spool_pipe_close(void)
{
    if (gh_spool_pipe[0] >= 0) {
        close(gh_spool_pipe[0]);
        close(gh_spool_pipe[1]);
    }
    gh_spool_pipe[0] = gh_spool_pipe[1] = -1;
}

static gh_int_t
gh_spool_pipe_open(void)
{
    if (gh_spool_pipe[0] >= 0) {
        return GH_OK;
    }
    if (pipe2(gh_spool_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
        gh_spool_pipe[0] = gh_spool_pipe[1] = -1;
        return GH_ERROR;
    }
    /* a larger pipe takes a larger piece per splice; refused (the user's
     * pipe page limit), the default 64 KiB works the same, in more calls */
    int size = fcntl(gh_spool_pipe[1], F_SETPIPE_SZ, GH_SPOOL_PIPE_SIZE);
    if (size <= 0) {
        size = fcntl(gh_spool_pipe[1], F_GETPIPE_SZ);
    }
    gh_spool_pipe_size = size > 0 ? (size_t) size : 65536;
    return GH_OK;
}

gh_int_t
gh_splice_to_file(gh_conn_t *src, int fd, off_t *off, off_t *rest,
    bool *file_failed)
{
    *file_failed = false;
    if (gh_spool_pipe_open() != GH_OK) {
        *file_failed = true;
        return GH_ERROR;
    }
    while (*rest > 0) {
        if (!src->read.ready) {
            return GH_AGAIN;
        }
        size_t want = (size_t) gh_min(*rest, (off_t) gh_spool_pipe_size);
        ssize_t n = splice(src->fd, NULL, gh_spool_pipe[1], NULL, want,
            SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* the pipe is empty here, so EAGAIN is the socket's */
            src->read.ready = 0;
            if (errno == EAGAIN) {
                return GH_AGAIN;
            }
            src->read.error = 1;
            return GH_ERROR;
        }
        if (n == 0) {
            src->read.ready = 0;
            src->read.eof = 1;
            return GH_DONE;
        }
        /* no short-read shortcut (unlike gh_unix_recv): the pipe may fill
         * its slots before its bytes, so a short splice does not prove the
         * socket drained; the next call's EAGAIN does */
        size_t left = (size_t) n;
        while (left > 0) {
            loff_t o = *off;
            ssize_t w = splice(gh_spool_pipe[0], NULL, fd, &o, left,
                SPLICE_F_MOVE);
            if (w <= 0) {
                if (w < 0 && errno == EINTR) {
                    continue;
                }
                if (w == 0) {
                    errno = EIO;
                }
                int err = errno;
                /* bytes may be left in it: never reuse it */
                gh_spool_pipe_close();
                errno = err;
                *file_failed = true;
                return GH_ERROR;
            }
            *off += w;
            left -= (size_t) w;
        }
        *rest -= n;
    }
    return GH_OK;
}
