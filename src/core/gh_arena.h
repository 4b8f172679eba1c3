/*
 * gh_arena.h: bump allocator with a large-block list and cleanups.
 *
 * Each connection and each request owns an arena; everything allocated in
 * it is freed in one gh_arena_destroy() call, which first runs cleanups
 * (fds, SSL, zstreams) in reverse order of registration.
 *
 * An arena has a byte budget (0 = unlimited) and may be charged to a
 * connection's memory account (gh_mem.h).  Allocation past the budget or
 * the account's max returns NULL, which callers turn into a 4xx/5xx for
 * the request, never an abort.
 */
#ifndef GH_ARENA_H
#define GH_ARENA_H

typedef void (*gh_cleanup_pt)(void *data);

typedef struct gh_cleanup_s gh_cleanup_t;
struct gh_cleanup_s {
    gh_cleanup_pt  handler;
    void          *data;
    gh_cleanup_t  *next;
};

typedef struct gh_arena_block_s gh_arena_block_t;
typedef struct gh_arena_large_s gh_arena_large_t;

struct gh_arena_s {
    gh_arena_block_t *current;
    gh_arena_block_t *first;
    gh_arena_large_t *large;
    gh_cleanup_t     *cleanup;
    size_t            block_size;
    size_t            budget;      /* 0: unlimited */
    size_t            used;        /* bytes taken from the system */
    gh_mem_account_t *account;     /* charged with used; NULL: none */
};

/* block_size is the malloc size of each block, headers included (at
 * least 256; the first block also holds the gh_arena_t).  The arena lives
 * in its first block: gh_arena_destroy() frees it too.  Blocks abort on
 * system OOM (gh_xmalloc); large allocations return NULL instead. */
gh_arena_t *gh_arena_create(size_t block_size, size_t budget);
void gh_arena_destroy(gh_arena_t *a);
/* free everything but keep the first block (for keep-alive reuse) */
void gh_arena_reset(gh_arena_t *a);
/* charge the arena's memory to acct from now on (NULL: to none), and
 * take it off the previous account.  GH_ERROR (nothing changed) when
 * acct cannot take what the arena holds; further blocks and large
 * allocations past acct's max fail (NULL) like the budget. */
static inline gh_int_t
gh_arena_set_account(gh_arena_t *a, gh_mem_account_t *acct)
{
    if (acct == a->account) {
        return GH_OK;
    }
    if (gh_mem_charge(acct, a->used) != GH_OK) {
        return GH_ERROR;
    }
    gh_mem_uncharge(a->account, a->used);
    a->account = acct;
    return GH_OK;
}

void *gh_alloc(gh_arena_t *a, size_t n);          /* aligned to 16 */
void *gh_calloc(gh_arena_t *a, size_t n);
void *gh_alloc_unaligned(gh_arena_t *a, size_t n);
/* large blocks can be released early */
void gh_arena_free_large(gh_arena_t *a, void *p);

uint8_t *gh_strdup_arena(gh_arena_t *a, const uint8_t *s, size_t n); /* NUL-terminates */
char *gh_cstr(gh_arena_t *a, const gh_str_t *s);                     /* NUL-terminated copy */
gh_str_t gh_str_dup(gh_arena_t *a, const gh_str_t *s);

/* h may be NULL and set later through the returned object; NULL on
 * budget */
gh_cleanup_t *gh_cleanup_add(gh_arena_t *a, gh_cleanup_pt h, void *data);

#endif
