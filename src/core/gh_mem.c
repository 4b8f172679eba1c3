/*
 * gh_mem.c: fixed-size object slabs and per-connection memory accounts
 * (see gh_mem.h).
 */
#include "gh_core.h"

#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define GH_SLAB_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GH_SLAB_MALLOC 1
#endif
#endif

/* a mapping per 256 KiB: untouched pages cost nothing, and a few hundred
 * mappings cover the largest worker_connections */
#define GH_SLAB_CHUNK  (256 * 1024)

gh_mem_stats_t gh_mem_conns;

void
gh_slab_init(gh_slab_t *s, size_t size)
{
    memset(s, 0, sizeof(*s));
    s->size = gh_align(gh_max(size, sizeof(void *)), 16);
}

void *
gh_slab_alloc(gh_slab_t *s)
{
    void *p = s->free;

    s->used++;
    if (p) {
        s->free = *(void **) p;
        return p;
    }
#ifdef GH_SLAB_MALLOC
    return gh_xmalloc(s->size);
#else
    if (s->pos == NULL || (size_t) (s->end - s->pos) < s->size) {
        size_t len = gh_max(GH_SLAB_CHUNK, s->size);
        uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            gh_oom(len);
        }
        s->mapped += len;
        s->pos = m;
        s->end = m + len;
    }
    p = s->pos;
    s->pos += s->size;
    return p;
#endif
}

void
gh_slab_free(gh_slab_t *s, void *p)
{
    if (p == NULL) {
        return;
    }
    s->used--;
#ifdef GH_SLAB_MALLOC
    free(p);
#else
    *(void **) p = s->free;
    s->free = p;
#endif
}
