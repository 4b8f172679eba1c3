/*
 * gh_arena.c: bump allocator with a large-block list and cleanups.
 *
 * Layout of the first block:
 *
 *   [gh_arena_block_t][gh_arena_t][ data ... ]
 *
 * so that creating a connection's arena costs one malloc.  Further blocks
 * are [gh_arena_block_t][ data ... ], each block_size bytes in total.
 * Requests bigger than block_size / 2 would waste most of a block, so they
 * get their own malloc on the large list and can be freed early.
 */
#include "gh_core.h"

#include <assert.h>

#define GH_ARENA_ALIGN      16
#define GH_ARENA_MIN_BLOCK  256
/* a block that could not serve this many requests is skipped from then
 * on: it is nearly full, and walking it again costs for nothing */
#define GH_ARENA_MAX_FAILED 4

/* the block and large headers are rounded to 16 and the data follows, so
 * malloc's own alignment must be at least that */
static_assert(_Alignof(max_align_t) >= GH_ARENA_ALIGN,
    "malloc alignment below arena alignment");

struct gh_arena_block_s {
    uint8_t          *pos;
    uint8_t          *end;
    gh_arena_block_t *next;
    unsigned          failed;
};

struct gh_arena_large_s {
    gh_arena_large_t *next;
    size_t            size;      /* bytes taken from the system */
};

#define GH_BLOCK_HDR gh_align(sizeof(gh_arena_block_t), GH_ARENA_ALIGN)
#define GH_LARGE_HDR gh_align(sizeof(gh_arena_large_t), GH_ARENA_ALIGN)
#define GH_ARENA_HDR gh_align(sizeof(gh_arena_t), GH_ARENA_ALIGN)

static inline uint8_t *
gh_align_ptr(uint8_t *p)
{
    return (uint8_t *) gh_align((uintptr_t) p, GH_ARENA_ALIGN);
}

/* n more bytes: within the budget, and charged to the account */
static bool
gh_arena_over_budget(gh_arena_t *a, size_t n)
{
    if (a->budget != 0 && (n > a->budget || a->used > a->budget - n)) {
        return true;
    }
    return gh_mem_charge(a->account, n) != GH_OK;
}

gh_arena_t *
gh_arena_create(size_t block_size, size_t budget)
{
    gh_arena_block_t *b;
    gh_arena_t       *a;

    block_size = gh_align(gh_max(block_size, GH_ARENA_MIN_BLOCK),
        GH_ARENA_ALIGN);
    b = gh_xmalloc(block_size);
    a = (gh_arena_t *) ((uint8_t *) b + GH_BLOCK_HDR);

    b->pos = (uint8_t *) a + GH_ARENA_HDR;
    b->end = (uint8_t *) b + block_size;
    b->next = NULL;
    b->failed = 0;

    a->current = b;
    a->first = b;
    a->large = NULL;
    a->cleanup = NULL;
    a->block_size = block_size;
    a->budget = budget;
    a->used = block_size;
    a->account = NULL;
    return a;
}

static void
gh_arena_run_cleanups(gh_arena_t *a)
{
    /* the list is built by prepending, so this is reverse registration
     * order: later resources may depend on earlier ones */
    for (gh_cleanup_t *c = a->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }
    a->cleanup = NULL;
}

static void
gh_arena_free_all_large(gh_arena_t *a)
{
    gh_arena_large_t *l, *next;

    for (l = a->large; l; l = next) {
        next = l->next;
        a->used -= l->size;
        gh_mem_uncharge(a->account, l->size);
        free(l);
    }
    a->large = NULL;
}

static void
gh_arena_free_blocks(gh_arena_t *a, gh_arena_block_t *b)
{
    gh_arena_block_t *next;

    for (; b; b = next) {
        next = b->next;
        a->used -= a->block_size;
        gh_mem_uncharge(a->account, a->block_size);
        free(b);
    }
}

void
gh_arena_destroy(gh_arena_t *a)
{
    if (a == NULL) {
        return;
    }
    gh_arena_run_cleanups(a);
    gh_arena_free_all_large(a);
    gh_arena_free_blocks(a, a->first->next);
    gh_mem_uncharge(a->account, a->used);
    /* the arena itself lives in the first block */
    free(a->first);
}

void
gh_arena_reset(gh_arena_t *a)
{
    gh_arena_block_t *first = a->first;

    gh_arena_run_cleanups(a);
    gh_arena_free_all_large(a);
    gh_arena_free_blocks(a, first->next);

    first->next = NULL;
    first->pos = (uint8_t *) a + GH_ARENA_HDR;
    first->failed = 0;
    a->current = first;
    GH_ASSERT(a->used == a->block_size);
}

static void *
gh_arena_large(gh_arena_t *a, size_t n)
{
    gh_arena_large_t *l;
    size_t            size;

    if (n > SIZE_MAX - GH_LARGE_HDR) {
        return NULL;
    }
    size = GH_LARGE_HDR + n;
    if (gh_arena_over_budget(a, size)) {
        return NULL;
    }
    /* plain malloc: a huge request is the client's problem (an error
     * response), not a reason to abort the worker */
    l = malloc(size);
    if (l == NULL) {
        gh_mem_uncharge(a->account, size);
        return NULL;
    }
    l->size = size;
    l->next = a->large;
    a->large = l;
    a->used += size;
    return (uint8_t *) l + GH_LARGE_HDR;
}

static uint8_t *
gh_block_take(gh_arena_block_t *b, size_t n, bool align)
{
    uint8_t *p = align ? gh_align_ptr(b->pos) : b->pos;

    if (p > b->end || (size_t) (b->end - p) < n) {
        return NULL;
    }
    b->pos = p + n;
    return p;
}

static void *
gh_arena_new_block(gh_arena_t *a, size_t n, bool align)
{
    gh_arena_block_t *b, *tail;

    if (gh_arena_over_budget(a, a->block_size)) {
        return NULL;
    }
    b = gh_xmalloc(a->block_size);
    b->pos = (uint8_t *) b + GH_BLOCK_HDR;
    b->end = (uint8_t *) b + a->block_size;
    b->next = NULL;
    b->failed = 0;
    a->used += a->block_size;

    for (tail = a->current; tail->next; tail = tail->next) {
        if (tail->failed++ > GH_ARENA_MAX_FAILED) {
            a->current = tail->next;
        }
    }
    tail->next = b;
    /* n <= block_size / 2 and the data start is aligned: it always fits */
    return gh_block_take(b, n, align);
}

static void *
gh_arena_alloc(gh_arena_t *a, size_t n, bool align)
{
    uint8_t *p;

    if (n > a->block_size / 2) {
        return gh_arena_large(a, n);
    }
    for (gh_arena_block_t *b = a->current; b; b = b->next) {
        p = gh_block_take(b, n, align);
        if (p) {
            return p;
        }
    }
    return gh_arena_new_block(a, n, align);
}

/* the common case, the current block has room, without the walk: the
 * hot path makes a few dozen allocations per request */
static inline void *
gh_arena_take(gh_arena_t *a, size_t n, bool align)
{
    void *p;

    if (n <= a->block_size / 2) {
        p = gh_block_take(a->current, n, align);
        if (p) {
            return p;
        }
    }
    return gh_arena_alloc(a, n, align);
}

void *
gh_alloc(gh_arena_t *a, size_t n)
{
    return gh_arena_take(a, n, true);
}

void *
gh_alloc_unaligned(gh_arena_t *a, size_t n)
{
    return gh_arena_take(a, n, false);
}

void *
gh_calloc(gh_arena_t *a, size_t n)
{
    void *p = gh_arena_take(a, n, true);

    if (p) {
        memset(p, 0, n);
    }
    return p;
}

void
gh_arena_free_large(gh_arena_t *a, void *p)
{
    gh_arena_large_t **lp, *l;

    /* a walk rather than pointer arithmetic: the list is short, and a
     * pointer that is not a large block is then harmlessly ignored */
    for (lp = &a->large; (l = *lp) != NULL; lp = &l->next) {
        if ((uint8_t *) l + GH_LARGE_HDR == p) {
            *lp = l->next;
            a->used -= l->size;
            gh_mem_uncharge(a->account, l->size);
            free(l);
            return;
        }
    }
}

uint8_t *
gh_strdup_arena(gh_arena_t *a, const uint8_t *s, size_t n)
{
    uint8_t *p;

    if (n == SIZE_MAX) {
        return NULL;
    }
    p = gh_alloc_unaligned(a, n + 1);
    if (p == NULL) {
        return NULL;
    }
    if (n) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

char *
gh_cstr(gh_arena_t *a, const gh_str_t *s)
{
    return (char *) gh_strdup_arena(a, s->data, s->len);
}

gh_str_t
gh_str_dup(gh_arena_t *a, const gh_str_t *s)
{
    gh_str_t r;

    /* NUL-terminated as a convenience; data == NULL signals failure */
    r.data = gh_strdup_arena(a, s->data, s->len);
    r.len = r.data ? s->len : 0;
    return r;
}

gh_cleanup_t *
gh_cleanup_add(gh_arena_t *a, gh_cleanup_pt h, void *data)
{
    gh_cleanup_t *c = gh_alloc(a, sizeof(gh_cleanup_t));

    if (c == NULL) {
        return NULL;
    }
    c->handler = h;
    c->data = data;
    c->next = a->cleanup;
    a->cleanup = c;
    return c;
}
