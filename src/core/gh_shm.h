/*
 * gh_shm.h: named shared-memory zones shared by all workers.
 *
 * A module declares a zone while the configuration is read
 * (gh_shm_zone_add); the master maps every zone before forking workers.
 * On reload a zone with the same name and size keeps its memory and its
 * data (init is called with the old data pointer).  Each zone holds a
 * simple allocator (first-fit free list with coalescing) and a
 * process-shared lock.
 */
#ifndef GH_SHM_H
#define GH_SHM_H

#include "gh_core.h"

typedef gh_int_t (*gh_shm_zone_init_pt)(gh_shm_zone_t *zone, void *old_data);

typedef struct gh_shm_pool_s gh_shm_pool_t;

struct gh_shm_zone_s {
    char                 name[64];
    size_t               size;
    void                *tag;       /* owning module; a name used by two
                                       different modules is an error */
    void                *addr;      /* mapping */
    gh_shm_pool_t       *pool;      /* allocator header at addr */
    void                *data;      /* module's root object; before
                                       init, whatever the module left
                                       there for init to find */
    gh_shm_zone_init_pt  init;
    unsigned             noreuse:1; /* a reload maps a fresh zone (the
                                       old cycle keeps its own): for
                                       state laid out after one
                                       configuration (upstream zones) */
    gh_shm_zone_t       *next;
};

/* returns the zone (existing one with the same name if tag matches), or
 * NULL with *err set to a message to follow the zone name, e.g.
 * 'zone "x" is too small'.  size 0 refers to a zone whose size is given
 * by another declaration; sizes below 8k are refused.  The zone object is
 * allocated in a (the configuration's arena). */
gh_shm_zone_t *gh_shm_zone_add(gh_shm_zone_t **list, gh_arena_t *a,
    const char *name, size_t size, void *tag, const char **err);

/* map every zone of the list, reusing mappings from old_list where name
 * and size match; call init */
gh_int_t gh_shm_zones_init(gh_shm_zone_t *list, gh_shm_zone_t *old_list,
    gh_log_t *log);
/* unmap zones of old_list not carried over into list */
void gh_shm_zones_release(gh_shm_zone_t *old_list, gh_shm_zone_t *list);

void *gh_shm_alloc(gh_shm_zone_t *zone, size_t size);        /* locks */
void *gh_shm_alloc_locked(gh_shm_zone_t *zone, size_t size); /* caller holds lock */
void gh_shm_free(gh_shm_zone_t *zone, void *p);
void gh_shm_free_locked(gh_shm_zone_t *zone, void *p);
void gh_shm_lock(gh_shm_zone_t *zone);
void gh_shm_unlock(gh_shm_zone_t *zone);
/* bytes in free chunks (headers included), read without the lock */
size_t gh_shm_free_bytes(gh_shm_zone_t *zone);

#endif
