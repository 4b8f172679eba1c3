/*
 * gh_array.c: growable arrays in an arena.
 *
 * Growth doubles the capacity into a new arena allocation; the old
 * storage is given back only when it was a large block, since bump memory
 * cannot be returned.  Arrays that grow much belong on the large list
 * anyway (they quickly exceed block_size / 2).
 */
#include "gh_core.h"

int
gh_array_init(gh_array_t *arr, gh_arena_t *a, size_t n, size_t size)
{
    n = gh_max(n, 1);
    arr->nelts = 0;
    arr->size = size;
    arr->nalloc = n;
    arr->arena = a;
    if (size != 0 && n > SIZE_MAX / size) {
        arr->elts = NULL;
        return GH_ERROR;
    }
    arr->elts = gh_alloc(a, n * size);
    return arr->elts ? GH_OK : GH_ERROR;
}

gh_array_t *
gh_array_create(gh_arena_t *a, size_t n, size_t size)
{
    gh_array_t *arr = gh_alloc(a, sizeof(gh_array_t));

    if (arr == NULL || gh_array_init(arr, a, n, size) != GH_OK) {
        return NULL;
    }
    return arr;
}

void *
gh_array_push(gh_array_t *arr)
{
    void *elts;

    if (arr->nelts == arr->nalloc) {
        if (arr->nalloc > SIZE_MAX / 2 / gh_max(arr->size, 1)) {
            return NULL;
        }
        elts = gh_alloc(arr->arena, 2 * arr->nalloc * arr->size);
        if (elts == NULL) {
            return NULL;
        }
        memcpy(elts, arr->elts, arr->nelts * arr->size);
        gh_arena_free_large(arr->arena, arr->elts);
        arr->elts = elts;
        arr->nalloc *= 2;
    }
    return (uint8_t *) arr->elts + arr->size * arr->nelts++;
}
