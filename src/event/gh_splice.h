/*
 * gh_splice.h: zero-copy relay of a byte range from one socket to another
 * through a pipe (splice(2)).  Used by the proxy for large bodies that no
 * filter needs to see: the bytes never enter user space.
 */
#ifndef GH_SPLICE_H
#define GH_SPLICE_H

#include "gh_conn.h"

typedef struct {
    int     pipe[2];       /* -1 until first use */
    size_t  in_pipe;       /* bytes in the pipe, not yet written */
} gh_splice_t;

void gh_splice_init(gh_splice_t *sp);
void gh_splice_close(gh_splice_t *sp);

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

#endif
