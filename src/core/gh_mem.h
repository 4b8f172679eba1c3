/*
 * gh_mem.h: fixed-size object slabs and per-connection memory accounts.
 *
 * A slab hands out objects of one size from large anonymous mappings,
 * carved on first use, so an object costs exactly its size (no malloc
 * header, no rounding) and objects that live long (idle keep-alive
 * connections) do not sit among short-lived request memory in the malloc
 * heap, where they would pin its freed pages.  Freed objects go on a free
 * list; mappings are kept for the worker's life (a worker's peak of
 * connections stays mapped, as nginx's connection array).  Under
 * AddressSanitizer every object is its own malloc, so use-after-free and
 * leaks are still seen.
 *
 * An account counts the bytes one connection holds (its objects, arenas,
 * head buffer, request and response buffers).  Every charge also goes to
 * the worker's total, whose peak is kept: gh_mem_conns.  A charge past the
 * account's max fails and is counted in gh_mem_conns.refused; the caller
 * turns that into an error response or a close.
 */
#ifndef GH_MEM_H
#define GH_MEM_H

typedef struct gh_slab_chunk_s gh_slab_chunk_t;

typedef struct {
    size_t           size;       /* object size, a multiple of 16 */
    void            *free;       /* free list, linked through the objects */
    uint8_t         *pos, *end;  /* not yet carved part of the last chunk */
    size_t           used;       /* objects handed out */
    size_t           mapped;     /* bytes mapped */
} gh_slab_t;

/* size is rounded up to 16 */
void gh_slab_init(gh_slab_t *s, size_t size);
/* aborts on system OOM as gh_xmalloc; the object is not zeroed */
void *gh_slab_alloc(gh_slab_t *s);
void gh_slab_free(gh_slab_t *s, void *p);

typedef struct {
    size_t   used;               /* bytes charged now */
    uint32_t max;                /* 0: no cap */
    uint32_t refused;            /* charges refused, for the owner to log */
} gh_mem_account_t;

typedef struct {
    size_t   current;            /* all accounts of the worker */
    size_t   peak;
    uint64_t refused;            /* charges refused by a cap */
} gh_mem_stats_t;

extern gh_mem_stats_t gh_mem_conns;

/* charge whatever the cap says: memory already taken */
static inline void
gh_mem_charge_force(gh_mem_account_t *acct, size_t n)
{
    if (acct == NULL) {
        return;
    }
    acct->used += n;
    gh_mem_conns.current += n;
    if (gh_mem_conns.current > gh_mem_conns.peak) {
        gh_mem_conns.peak = gh_mem_conns.current;
    }
}

/* GH_OK, or GH_ERROR (nothing charged, the refusal counted) when the
 * account would pass its max; acct may be NULL (nothing to do).  Inline:
 * a request makes a few of these. */
static inline gh_int_t
gh_mem_charge(gh_mem_account_t *acct, size_t n)
{
    if (acct == NULL) {
        return GH_OK;
    }
    if (acct->max && (n > acct->max || acct->used > acct->max - n)) {
        gh_mem_conns.refused++;
        acct->refused++;
        return GH_ERROR;
    }
    gh_mem_charge_force(acct, n);
    return GH_OK;
}

static inline void
gh_mem_uncharge(gh_mem_account_t *acct, size_t n)
{
    if (acct == NULL) {
        return;
    }
    GH_ASSERT(acct->used >= n && gh_mem_conns.current >= n);
    acct->used -= n;
    gh_mem_conns.current -= n;
}

#endif
