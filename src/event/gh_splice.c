/*
 * gh_splice.c: socket -> pipe -> socket with splice(2).  The pipe is made
 * lazily per relay (64 KiB of kernel buffer); memory in user space stays
 * zero whatever the body size.
 */
#include "gh_splice.h"
#include <fcntl.h>
#include <unistd.h>

#define GH_SPLICE_CHUNK (1 << 20)

void
gh_splice_init(gh_splice_t *sp)
{
    sp->pipe[0] = sp->pipe[1] = -1;
    sp->in_pipe = 0;
}

void
gh_splice_close(gh_splice_t *sp)
{
    if (sp->pipe[0] >= 0) {
        close(sp->pipe[0]);
        close(sp->pipe[1]);
    }
    sp->pipe[0] = sp->pipe[1] = -1;
    sp->in_pipe = 0;
}

gh_int_t
gh_splice_pump(gh_splice_t *sp, gh_conn_t *src, gh_conn_t *dst, off_t *rest,
    off_t *moved)
{
    if (sp->pipe[0] < 0 && pipe2(sp->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
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
