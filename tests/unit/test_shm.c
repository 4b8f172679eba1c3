/*
 * test_shm.c: zone declaration, mapping, the allocator (first fit,
 * coalescing), sharing with a forked child, the robust lock and reuse of
 * a zone across a reload.
 */
#include "core/gh_shm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define ZONE_SIZE (64 * 1024)

typedef struct {
    int   generation;
    char *child_msg;      /* allocated by the child, in the zone */
} root_t;

static int   tag_a, tag_b;
static void *gh_init_old;
static int   gh_init_calls;

static gh_int_t
zone_init(gh_shm_zone_t *zone, void *old_data)
{
    root_t *root;

    gh_init_calls++;
    gh_init_old = old_data;
    if (old_data) {
        root = old_data;
        root->generation++;
        zone->data = root;
        return GH_OK;
    }
    root = gh_shm_alloc(zone, sizeof(root_t));
    if (root == NULL) {
        return GH_ERROR;
    }
    memset(root, 0, sizeof(*root));
    zone->data = root;
    return GH_OK;
}

static gh_shm_zone_t *
make_zone(gh_arena_t *a, gh_shm_zone_t **list, const char *name, size_t size)
{
    const char    *err = NULL;
    gh_shm_zone_t *z = gh_shm_zone_add(list, a, name, size, &tag_a, &err);

    assert_non_null(z);
    assert_null(err);
    z->init = zone_init;
    return z;
}

static void
test_zone_add(void **state)
{
    gh_arena_t    *a = gh_arena_create(4096, 0);
    gh_shm_zone_t *list = NULL, *z;
    const char    *err;

    z = make_zone(a, &list, "one", ZONE_SIZE);
    /* size 0 refers to it, the same size is fine too */
    assert_ptr_equal(gh_shm_zone_add(&list, a, "one", 0, &tag_a, &err), z);
    assert_ptr_equal(gh_shm_zone_add(&list, a, "one", ZONE_SIZE, &tag_a,
        &err), z);
    err = NULL;
    assert_null(gh_shm_zone_add(&list, a, "one", 2 * ZONE_SIZE, &tag_a, &err));
    assert_non_null(err);
    err = NULL;
    assert_null(gh_shm_zone_add(&list, a, "one", ZONE_SIZE, &tag_b, &err));
    assert_string_equal(err, "is already declared for a different use");
    assert_null(gh_shm_zone_add(&list, a, "tiny", 100, &tag_a, &err));
    assert_string_equal(err, "is too small");
    assert_null(gh_shm_zone_add(&list, a,
        "0123456789012345678901234567890123456789012345678901234567890123",
        ZONE_SIZE, &tag_a, &err));
    assert_null(gh_shm_zone_add(&list, a, "", ZONE_SIZE, &tag_a, &err));

    /* declared by reference only: mapping it is an error, and the zones
     * mapped before it ("one", the list is newest first) are unmapped */
    list = NULL;
    assert_non_null(gh_shm_zone_add(&list, a, "later", 0, &tag_a, &err));
    z = make_zone(a, &list, "one", ZONE_SIZE);
    assert_ptr_equal(list, z);
    assert_int_equal(gh_shm_zones_init(list, NULL, &gh_log_stderr),
        GH_ERROR);
    assert_null(z->addr);
    gh_arena_destroy(a);
}

static void
test_alloc_coalesce(void **state)
{
    gh_arena_t    *a = gh_arena_create(4096, 0);
    gh_shm_zone_t *list = NULL, *z;
    size_t         initial;
    void          *p[64], *big;
    int            n = 0;

    z = make_zone(a, &list, "pool", ZONE_SIZE);
    z->init = NULL;
    assert_int_equal(gh_shm_zones_init(list, NULL, &gh_log_stderr), GH_OK);
    assert_non_null(z->addr);
    initial = gh_shm_free_bytes(z);
    assert_true(initial > ZONE_SIZE - 256 && initial <= ZONE_SIZE);

    p[0] = gh_shm_alloc(z, 100);
    p[1] = gh_shm_alloc(z, 1);
    p[2] = gh_shm_alloc(z, 1000);
    for (int i = 0; i < 3; i++) {
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t) p[i] % 16, 0);
    }
    memset(p[0], 1, 100);
    memset(p[2], 3, 1000);
    assert_true(gh_shm_free_bytes(z) < initial);
    assert_null(gh_shm_alloc(z, ZONE_SIZE));

    /* free the middle, then its neighbours: everything merges back */
    gh_shm_free(z, p[1]);
    gh_shm_free(z, p[0]);
    gh_shm_free(z, p[2]);
    assert_int_equal(gh_shm_free_bytes(z), initial);
    big = gh_shm_alloc(z, initial - 64);
    assert_non_null(big);
    gh_shm_free(z, big);

    /* exhaust, then free in a scrambled order */
    while (n < 64 && (p[n] = gh_shm_alloc(z, 1500)) != NULL) {
        n++;
    }
    assert_true(n > 30 && n < 64);
    for (int step = 0; step < 7; step++) {
        for (int i = step; i < n; i += 7) {
            gh_shm_free(z, p[i]);
        }
    }
    assert_int_equal(gh_shm_free_bytes(z), initial);
    assert_non_null(big = gh_shm_alloc(z, initial - 64));

    /* a foreign pointer and NULL are ignored */
    gh_shm_free(z, NULL);
    gh_shm_free(z, &n);
    gh_shm_zones_release(list, NULL);
    assert_null(z->addr);
    gh_arena_destroy(a);
}

static void
test_fork_shares(void **state)
{
    gh_arena_t    *a = gh_arena_create(4096, 0);
    gh_shm_zone_t *list = NULL, *z;
    root_t        *root;
    size_t         before;
    pid_t          pid;
    int            status;

    z = make_zone(a, &list, "shared", ZONE_SIZE);
    assert_int_equal(gh_shm_zones_init(list, NULL, &gh_log_stderr), GH_OK);
    root = z->data;
    assert_non_null(root);
    before = gh_shm_free_bytes(z);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *msg = gh_shm_alloc(z, 64);

        if (msg == NULL) {
            _exit(1);
        }
        strcpy(msg, "hello from the child");
        root->child_msg = msg;
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(root->child_msg);
    assert_string_equal(root->child_msg, "hello from the child");
    assert_true(gh_shm_free_bytes(z) < before);
    gh_shm_free(z, root->child_msg);
    assert_int_equal(gh_shm_free_bytes(z), before);
    gh_shm_zones_release(list, NULL);
    gh_arena_destroy(a);
}

static void
test_robust_lock(void **state)
{
    gh_arena_t    *a = gh_arena_create(4096, 0);
    gh_shm_zone_t *list = NULL, *z;
    pid_t          pid;
    int            status;

    z = make_zone(a, &list, "robust", ZONE_SIZE);
    assert_int_equal(gh_shm_zones_init(list, NULL, &gh_log_stderr), GH_OK);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        gh_shm_lock(z);
        _exit(0);               /* dies holding the lock */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* would hang forever without the robust mutex */
    gh_shm_lock(z);
    gh_shm_unlock(z);
    assert_non_null(gh_shm_alloc(z, 10));
    gh_shm_zones_release(list, NULL);
    gh_arena_destroy(a);
}

static void
test_reload_reuse(void **state)
{
    gh_arena_t    *a = gh_arena_create(4096, 0);
    gh_shm_zone_t *old = NULL, *new = NULL, *keep, *gone, *kept, *resized;
    gh_shm_zone_t *old_resize;
    root_t        *root;

    keep = make_zone(a, &old, "keep", ZONE_SIZE);
    gone = make_zone(a, &old, "gone", ZONE_SIZE);
    old_resize = make_zone(a, &old, "resize", ZONE_SIZE);
    gh_init_calls = 0;
    assert_int_equal(gh_shm_zones_init(old, NULL, &gh_log_stderr), GH_OK);
    assert_int_equal(gh_init_calls, 3);
    root = keep->data;
    assert_int_equal(root->generation, 0);

    kept = make_zone(a, &new, "keep", ZONE_SIZE);
    resized = make_zone(a, &new, "resize", 2 * ZONE_SIZE);
    gh_init_calls = 0;
    assert_int_equal(gh_shm_zones_init(new, old, &gh_log_stderr), GH_OK);
    assert_int_equal(gh_init_calls, 2);

    /* same name and size: same memory, init saw the old data */
    assert_ptr_equal(kept->addr, keep->addr);
    assert_ptr_equal(kept->data, root);
    assert_int_equal(root->generation, 1);
    /* a new size means a new zone */
    assert_non_null(resized->addr);
    assert_ptr_not_equal(resized->addr, old_resize->addr);

    gh_shm_zones_release(old, new);
    assert_null(gone->addr);
    assert_non_null(keep->addr);          /* carried over, not unmapped */
    assert_int_equal(((root_t *) kept->data)->generation, 1);
    gh_shm_zones_release(new, NULL);
    gh_arena_destroy(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zone_add),
        cmocka_unit_test(test_alloc_coalesce),
        cmocka_unit_test(test_fork_shares),
        cmocka_unit_test(test_robust_lock),
        cmocka_unit_test(test_reload_reuse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
