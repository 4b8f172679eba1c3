/*
 * gh_splice.h: zero-copy relay of a byte range from one socket to another
 * through a pipe (splice(2)).  Used by the proxy for large bodies that no
 * filter needs to see: the bytes never enter user space.
 *
 * Pipes come from a small per-worker cache of empty pipes: a relay that
 * ends with its pipe empty gives the pipe back instead of closing it, and
 * the next relay takes it instead of calling pipe2() (saving pipe2 and two
 * closes per response).  A pipe that may hold bytes is always closed:
 * they would otherwise reach the next response.
 */
#ifndef GH_SPLICE_H
#define GH_SPLICE_H

#include "gh_conn.h"

/* empty pipes kept per worker (two fds each); past this, released pipes
 * are closed.  Roughly the number of spliced responses a worker runs at
 * once in steady state: more only holds fds. */
#define GH_SPLICE_PIPE_CACHE 16

typedef struct {
    int     pipe[2];       /* -1 until first use */
    size_t  in_pipe;       /* bytes in the pipe, not yet written */
} gh_splice_t;

void gh_splice_init(gh_splice_t *sp);

/*
 * Done with the relay: its pipe goes back to the worker's cache when it
 * is empty (in_pipe == 0) and the cache has room, else it is closed.
 * Idempotent; sp is as after gh_splice_init.
 */
void gh_splice_release(gh_splice_t *sp);

/* close every cached pipe: worker exit, or fds running out */
void gh_splice_cache_drop(void);

/* pipes in the cache now */
size_t gh_splice_cached(void);

/*
 * Move up to *rest bytes from src to dst.  *rest and *moved (bytes
 * written to dst) are updated.  Returns
 *   GH_OK      *rest == 0 and everything written
 *   GH_AGAIN   src has nothing now (src->read.ready cleared) or dst is
 *              full (dst->write.ready cleared): wait for that event
 *   GH_DONE    src closed before *rest bytes came (premature end)
 *   GH_ERROR   errno kept
 */
gh_int_t gh_splice_pump(gh_splice_t *sp, gh_conn_t *src, gh_conn_t *dst,
    off_t *rest, off_t *moved);

/*
 * Move up to *rest bytes from the socket src into the file fd at *off,
 * through the worker's spool pipe (one per worker, up to 1 MiB, emptied
 * into the file before returning, so it never holds bytes between calls):
 * the bytes are copied once, into the page cache, where recv() and
 * pwrite() copied them twice.  *rest and *off advance.  Returns
 *   GH_OK      *rest == 0
 *   GH_AGAIN   src has nothing now (src->read.ready cleared)
 *   GH_DONE    src closed before *rest bytes came
 *   GH_ERROR   errno kept; *file_failed says whether writing fd failed
 *              (else reading src did)
 */
gh_int_t gh_splice_to_file(gh_conn_t *src, int fd, off_t *off, off_t *rest,
    bool *file_failed);

#endif
