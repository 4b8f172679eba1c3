/*
 * gh_buf.h: buffers and chains.
 *
 *   start <= pos <= last <= end
 *   [start, pos) consumed, [pos, last) data, [last, end) free space.
 *
 * A buffer can instead describe a file range (in_file, fd, file_pos,
 * file_last) for sendfile.  Chains link buffers for writev.
 */
#ifndef GH_BUF_H
#define GH_BUF_H

struct gh_buf_s {
    uint8_t *start;
    uint8_t *pos;
    uint8_t *last;
    uint8_t *end;

    int      fd;            /* in_file */
    off_t    file_pos;
    off_t    file_last;

    unsigned in_file:1;
    unsigned last_buf:1;    /* end of the response body */
    unsigned flush:1;
    unsigned recycled:1;
    unsigned coalesce:1;    /* [last, end) is this buffer's own free space:
                               send_chain may copy a small buffer that
                               follows it in there (one send, not two
                               iovecs) */
};

struct gh_chain_s {
    gh_buf_t   *buf;
    gh_chain_t *next;
};

#define gh_buf_size(b) \
    ((b)->in_file ? (off_t) ((b)->file_last - (b)->file_pos) \
                  : (off_t) ((b)->last - (b)->pos))

gh_buf_t *gh_buf_create(gh_arena_t *a, size_t size);
gh_chain_t *gh_chain_link(gh_arena_t *a, gh_buf_t *b);

#endif
