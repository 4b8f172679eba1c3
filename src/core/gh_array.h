/*
 * gh_array.h: a growable array of fixed-size elements living in an arena.
 */
#ifndef GH_ARRAY_H
#define GH_ARRAY_H

struct gh_array_s {
    void       *elts;
    size_t      nelts;
    size_t      size;
    size_t      nalloc;
    gh_arena_t *arena;
};

gh_array_t *gh_array_create(gh_arena_t *a, size_t n, size_t size);
int gh_array_init(gh_array_t *arr, gh_arena_t *a, size_t n, size_t size);
/* returns a pointer to the new (uninitialised) element, NULL on budget */
void *gh_array_push(gh_array_t *arr);

#define gh_array_at(arr, type, i) (&((type *) (arr)->elts)[i])

#endif
