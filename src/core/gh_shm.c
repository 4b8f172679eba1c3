/*
 * gh_shm.c: shared-memory zones.
 *
 * Each zone is its own anonymous shared mapping, created by the master
 * before fork so every worker sees it at the same address (plain pointers
 * inside a zone are therefore fine).  The mapping starts with the pool:
 *
 *   [gh_shm_pool_t][chunk][chunk]...
 *
 * A chunk is a 16-byte header {size, magic} followed by the payload; a
 * free chunk keeps the free-list link in its payload.  The free list is
 * ordered by address so that freeing can merge a chunk with both
 * neighbours in one pass; allocation is first fit.  That is slower than
 * nginx's slab allocator for many tiny objects, but simple and without
 * per-size waste, which suits the few, mid-sized objects zones hold.
 */
#include "gh_shm.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#define GH_SHM_ALIGN     16
#define GH_SHM_MIN_SIZE  8192
#define GH_SHM_USED      ((size_t) 0x6768736875736564)   /* "ghshused" */
#define GH_SHM_FREE      ((size_t) 0x6768736866726565)   /* "ghshfree" */

typedef struct gh_shm_chunk_s gh_shm_chunk_t;
struct gh_shm_chunk_s {
    size_t          size;     /* whole chunk, header included */
    size_t          magic;
    gh_shm_chunk_t *next;     /* free chunks only: lives in the payload */
};

#define GH_SHM_CHUNK_HDR  gh_align(offsetof(gh_shm_chunk_t, next), GH_SHM_ALIGN)
#define GH_SHM_CHUNK_MIN  gh_align(sizeof(gh_shm_chunk_t), GH_SHM_ALIGN)

struct gh_shm_pool_s {
    pthread_mutex_t  mutex;
    size_t           size;        /* of the mapping */
    size_t           free_bytes;  /* sum of free chunk sizes */
    gh_shm_chunk_t  *free;        /* address order */
    uint8_t         *start;       /* chunk area */
    uint8_t         *end;
};

#define GH_SHM_POOL_HDR gh_align(sizeof(gh_shm_pool_t), GH_SHM_ALIGN)

/* --- zone declaration ---------------------------------------------------- */

static gh_shm_zone_t *
gh_shm_zone_find(gh_shm_zone_t *list, const char *name)
{
    for (; list; list = list->next) {
        if (strcmp(list->name, name) == 0) {
            return list;
        }
    }
    return NULL;
}

/* size 0 refers to a zone declared (with a size) elsewhere, as in nginx's
 * "proxy_cache name" before or after "proxy_cache_path ... keys_zone=" */
static const char *
gh_shm_zone_merge(gh_shm_zone_t *z, size_t size, void *tag)
{
    if (z->tag != tag) {
        return "is already declared for a different use";
    }
    if (size && z->size && size != z->size) {
        return "size conflicts with already declared size";
    }
    if (size) {
        z->size = size;
    }
    return NULL;
}

gh_shm_zone_t *
gh_shm_zone_add(gh_shm_zone_t **list, gh_arena_t *a, const char *name,
    size_t size, void *tag, const char **err)
{
    gh_shm_zone_t *z;

    if (strlen(name) >= sizeof(z->name) || name[0] == '\0') {
        *err = "has an invalid name length";
        return NULL;
    }
    if (size && size < GH_SHM_MIN_SIZE) {
        *err = "is too small";
        return NULL;
    }
    z = gh_shm_zone_find(*list, name);
    if (z) {
        *err = gh_shm_zone_merge(z, size, tag);
        return *err ? NULL : z;
    }
    z = gh_calloc(a, sizeof(gh_shm_zone_t));
    if (z == NULL) {
        *err = "cannot be allocated";
        return NULL;
    }
    strcpy(z->name, name);
    z->size = size;
    z->tag = tag;
    z->next = *list;
    *list = z;
    return z;
}

/* --- mapping and reuse --------------------------------------------------- */

static gh_int_t
gh_shm_pool_init(gh_shm_pool_t *pool, size_t size)
{
    pthread_mutexattr_t attr;
    gh_shm_chunk_t     *c;
    int                 rc;

    pthread_mutexattr_init(&attr);
    /* shared by all workers; robust so that a worker killed while holding
     * the lock does not hang every other one */
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    rc = pthread_mutex_init(&pool->mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return GH_ERROR;
    }
    pool->size = size;
    pool->start = (uint8_t *) pool + GH_SHM_POOL_HDR;
    pool->end = (uint8_t *) pool + size;

    c = (gh_shm_chunk_t *) pool->start;
    c->size = (size_t) (pool->end - pool->start) & ~(size_t) (GH_SHM_ALIGN - 1);
    c->magic = GH_SHM_FREE;
    c->next = NULL;
    pool->free = c;
    pool->free_bytes = c->size;
    return GH_OK;
}

static gh_int_t
gh_shm_map(gh_shm_zone_t *z, gh_log_t *log)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    size_t size = gh_align(z->size, page);
    void  *p;

    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
        -1, 0);
    if (p == MAP_FAILED) {
        gh_log_error(GH_LOG_EMERG, log, errno,
            "mmap(MAP_ANON|MAP_SHARED, %zu) failed for zone \"%s\"",
            size, z->name);
        return GH_ERROR;
    }
    z->addr = p;
    z->pool = p;
    if (gh_shm_pool_init(z->pool, size) != GH_OK) {
        gh_log_error(GH_LOG_EMERG, log, errno,
            "pthread_mutex_init() failed for zone \"%s\"", z->name);
        munmap(p, size);
        z->addr = NULL;
        z->pool = NULL;
        return GH_ERROR;
    }
    return GH_OK;
}

static void
gh_shm_unmap(gh_shm_zone_t *z)
{
    if (z->addr) {
        munmap(z->addr, z->pool->size);
    }
    z->addr = NULL;
    z->pool = NULL;
    z->data = NULL;
}

static gh_shm_zone_t *
gh_shm_zone_reusable(gh_shm_zone_t *z, gh_shm_zone_t *old_list)
{
    gh_shm_zone_t *old = gh_shm_zone_find(old_list, z->name);

    if (z->noreuse) {
        return NULL;
    }
    if (old && old->addr && old->size == z->size && old->tag == z->tag) {
        return old;
    }
    return NULL;
}

static bool
gh_shm_zone_is_in(const gh_shm_zone_t *z, const gh_shm_zone_t *list)
{
    for (; list; list = list->next) {
        if (list->addr && list->addr == z->addr) {
            return true;
        }
    }
    return false;
}

static gh_int_t
gh_shm_zone_init_one(gh_shm_zone_t *z, gh_shm_zone_t *old_list,
    gh_log_t *log)
{
    gh_shm_zone_t *old;
    void          *old_data = NULL;

    if (z->size == 0) {
        gh_log_error(GH_LOG_EMERG, log, 0,
            "zero size shared memory zone \"%s\"", z->name);
        return GH_ERROR;
    }
    old = gh_shm_zone_reusable(z, old_list);
    if (old) {
        z->addr = old->addr;
        z->pool = old->pool;
        z->data = old->data;
        old_data = old->data;
    } else if (gh_shm_map(z, log) != GH_OK) {
        return GH_ERROR;
    }
    if (z->init && z->init(z, old_data) != GH_OK) {
        gh_log_error(GH_LOG_EMERG, log, 0,
            "cannot initialize shared memory zone \"%s\"", z->name);
        return GH_ERROR;
    }
    return GH_OK;
}

gh_int_t
gh_shm_zones_init(gh_shm_zone_t *list, gh_shm_zone_t *old_list,
    gh_log_t *log)
{
    for (gh_shm_zone_t *z = list; z; z = z->next) {
        if (gh_shm_zone_init_one(z, old_list, log) == GH_OK) {
            continue;
        }
        /* the old cycle keeps running on a failed reload: drop only what
         * this call mapped, never the old cycle's zones */
        for (gh_shm_zone_t *u = list; u; u = u->next) {
            if (u->addr && !gh_shm_zone_is_in(u, old_list)) {
                gh_shm_unmap(u);
            }
            u->addr = NULL;
            u->pool = NULL;
        }
        return GH_ERROR;
    }
    return GH_OK;
}

void
gh_shm_zones_release(gh_shm_zone_t *old_list, gh_shm_zone_t *list)
{
    for (gh_shm_zone_t *z = old_list; z; z = z->next) {
        if (z->addr && !gh_shm_zone_is_in(z, list)) {
            gh_shm_unmap(z);
        }
    }
}

/* --- locking ------------------------------------------------------------- */

void
gh_shm_lock(gh_shm_zone_t *zone)
{
    int rc = pthread_mutex_lock(&zone->pool->mutex);

    if (rc == EOWNERDEAD) {
        /* the holder died inside its critical section.  Allocator
         * updates are a handful of stores, so a torn list is unlikely;
         * refusing the lock forever would take the whole zone down. */
        pthread_mutex_consistent(&zone->pool->mutex);
    }
}

void
gh_shm_unlock(gh_shm_zone_t *zone)
{
    pthread_mutex_unlock(&zone->pool->mutex);
}

/* --- allocator ----------------------------------------------------------- */

void *
gh_shm_alloc_locked(gh_shm_zone_t *zone, size_t size)
{
    gh_shm_pool_t   *pool = zone->pool;
    gh_shm_chunk_t **cp, *c, *rest;
    size_t           need;

    if (size > pool->size) {
        return NULL;
    }
    need = gh_max(gh_align(size + GH_SHM_CHUNK_HDR, GH_SHM_ALIGN),
        GH_SHM_CHUNK_MIN);

    for (cp = &pool->free; (c = *cp) != NULL; cp = &c->next) {
        if (c->size < need) {
            continue;
        }
        if (c->size - need >= GH_SHM_CHUNK_MIN) {
            /* split: the tail stays in the list at the same position,
             * which keeps the address order */
            rest = (gh_shm_chunk_t *) ((uint8_t *) c + need);
            rest->size = c->size - need;
            rest->magic = GH_SHM_FREE;
            rest->next = c->next;
            *cp = rest;
            c->size = need;
        } else {
            *cp = c->next;
        }
        c->magic = GH_SHM_USED;
        pool->free_bytes -= c->size;
        return (uint8_t *) c + GH_SHM_CHUNK_HDR;
    }
    return NULL;
}

void *
gh_shm_alloc(gh_shm_zone_t *zone, size_t size)
{
    void *p;

    gh_shm_lock(zone);
    p = gh_shm_alloc_locked(zone, size);
    gh_shm_unlock(zone);
    return p;
}

static bool
gh_shm_adjacent(const gh_shm_chunk_t *a, const gh_shm_chunk_t *b)
{
    return (const uint8_t *) a + a->size == (const uint8_t *) b;
}

void
gh_shm_free_locked(gh_shm_zone_t *zone, void *p)
{
    gh_shm_pool_t  *pool = zone->pool;
    gh_shm_chunk_t *c, *prev = NULL, *next;

    if (p == NULL || (uint8_t *) p < pool->start + GH_SHM_CHUNK_HDR
        || (uint8_t *) p >= pool->end)
    {
        return;
    }
    c = (gh_shm_chunk_t *) ((uint8_t *) p - GH_SHM_CHUNK_HDR);
    /* a double free or a foreign pointer must not corrupt the list */
    GH_ASSERT(c->magic == GH_SHM_USED);
    if (c->magic != GH_SHM_USED) {
        return;
    }
    for (next = pool->free; next && next < c; next = next->next) {
        prev = next;
    }
    c->magic = GH_SHM_FREE;
    c->next = next;
    pool->free_bytes += c->size;

    if (next && gh_shm_adjacent(c, next)) {
        c->size += next->size;
        c->next = next->next;
        next->magic = 0;
    }
    if (prev && gh_shm_adjacent(prev, c)) {
        prev->size += c->size;
        prev->next = c->next;
        c->magic = 0;
    } else if (prev) {
        prev->next = c;
    } else {
        pool->free = c;
    }
}

void
gh_shm_free(gh_shm_zone_t *zone, void *p)
{
    gh_shm_lock(zone);
    gh_shm_free_locked(zone, p);
    gh_shm_unlock(zone);
}

size_t
gh_shm_free_bytes(gh_shm_zone_t *zone)
{
    /* unlocked on purpose: a statistic, and callers may hold the lock */
    return zone->pool->free_bytes;
}
