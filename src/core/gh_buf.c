/*
 * gh_buf.c: buffers and chain links, both allocated in an arena so that
 * they die with the request or connection that made them.
 */
#include "gh_core.h"

gh_buf_t *
gh_buf_create(gh_arena_t *a, size_t size)
{
    gh_buf_t *b = gh_calloc(a, sizeof(gh_buf_t));

    if (b == NULL) {
        return NULL;
    }
    /* unaligned: byte data, and this keeps small buffers packed */
    b->start = gh_alloc_unaligned(a, size);
    if (b->start == NULL) {
        return NULL;
    }
    b->pos = b->start;
    b->last = b->start;
    b->end = b->start + size;
    b->fd = -1;
    return b;
}

gh_chain_t *
gh_chain_link(gh_arena_t *a, gh_buf_t *b)
{
    gh_chain_t *cl = gh_alloc(a, sizeof(gh_chain_t));

    if (cl == NULL) {
        return NULL;
    }
    cl->buf = b;
    cl->next = NULL;
    return cl;
}
