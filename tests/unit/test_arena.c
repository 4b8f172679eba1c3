/*
 * test_arena.c: arena allocation, the large list, budgets, cleanups and
 * reset; arrays and buffers that live in arenas.
 */
#include "core/gh_core.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void
test_alloc_aligned(void **state)
{
    gh_arena_t *a = gh_arena_create(1024, 0);
    uint8_t    *p[200];

    for (int i = 0; i < 200; i++) {
        p[i] = gh_alloc(a, (size_t) (i % 37) + 1);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t) p[i] % 16, 0);
        memset(p[i], i, (size_t) (i % 37) + 1);
    }
    /* no allocation overwrote another */
    for (int i = 0; i < 200; i++) {
        for (int j = 0; j < i % 37 + 1; j++) {
            assert_int_equal(p[i][j], (uint8_t) i);
        }
    }
    assert_null(a->large);
    gh_arena_destroy(a);
}

static void
test_alloc_unaligned_and_calloc(void **state)
{
    gh_arena_t *a = gh_arena_create(512, 0);
    uint8_t    *u1 = gh_alloc_unaligned(a, 3);
    uint8_t    *u2 = gh_alloc_unaligned(a, 5);
    uint8_t    *z;

    /* unaligned allocations are packed */
    assert_ptr_equal(u2, u1 + 3);
    z = gh_calloc(a, 100);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(z[i], 0);
    }
    /* zero-sized requests still give a usable pointer */
    assert_non_null(gh_alloc(a, 0));
    gh_arena_destroy(a);
}

static void
test_large(void **state)
{
    gh_arena_t *a = gh_arena_create(1024, 0);
    size_t      used = a->used;
    void       *big, *small;

    big = gh_alloc(a, 600);          /* > block_size / 2 */
    assert_non_null(big);
    assert_int_equal((uintptr_t) big % 16, 0);
    assert_non_null(a->large);
    assert_true(a->used > used + 600);
    memset(big, 0xab, 600);

    small = gh_alloc(a, 16);
    gh_arena_free_large(a, small);   /* not large: ignored */
    assert_non_null(a->large);

    gh_arena_free_large(a, big);
    assert_null(a->large);
    assert_int_equal(a->used, used);

    /* exactly half stays in the blocks */
    assert_non_null(gh_alloc(a, 512));
    assert_null(a->large);
    gh_arena_destroy(a);
}

static void
test_budget(void **state)
{
    gh_arena_t *a = gh_arena_create(1024, 4096);
    int         n = 0;

    while (gh_alloc(a, 100) != NULL) {
        n++;
        assert_true(n < 1000);
    }
    assert_true(n >= 20);
    assert_true(a->used <= a->budget);
    /* large allocations respect the budget too */
    assert_null(gh_alloc(a, 3000));
    assert_null(gh_alloc(a, SIZE_MAX - 8));
    assert_null(gh_calloc(a, 100));
    gh_arena_destroy(a);

    /* a large block fits while the budget allows, then does not */
    a = gh_arena_create(1024, 1024 + 2000);
    assert_non_null(gh_alloc(a, 1500));
    assert_null(gh_alloc(a, 1500));
    gh_arena_destroy(a);
}

static int gh_order[8];
static int gh_norder;

static void
record_cleanup(void *data)
{
    gh_order[gh_norder++] = (int) (intptr_t) data;
}

static void
test_cleanup_order(void **state)
{
    gh_arena_t   *a = gh_arena_create(1024, 0);
    gh_cleanup_t *c;

    gh_norder = 0;
    for (intptr_t i = 1; i <= 3; i++) {
        assert_non_null(gh_cleanup_add(a, record_cleanup, (void *) i));
    }
    /* a handler may be filled in later */
    c = gh_cleanup_add(a, NULL, NULL);
    assert_non_null(c);
    c->handler = record_cleanup;
    c->data = (void *) (intptr_t) 4;
    assert_non_null(gh_cleanup_add(a, NULL, NULL));   /* never set: skipped */

    gh_arena_destroy(a);
    assert_int_equal(gh_norder, 4);
    assert_int_equal(gh_order[0], 4);
    assert_int_equal(gh_order[1], 3);
    assert_int_equal(gh_order[2], 2);
    assert_int_equal(gh_order[3], 1);
}

static void
test_reset(void **state)
{
    gh_arena_t *a = gh_arena_create(1024, 0);
    void       *first = gh_alloc(a, 32);

    gh_norder = 0;
    gh_cleanup_add(a, record_cleanup, (void *) 1);
    for (int i = 0; i < 100; i++) {
        assert_non_null(gh_alloc(a, 300));
    }
    assert_non_null(gh_alloc(a, 5000));
    assert_true(a->used > 10 * 1024);

    gh_arena_reset(a);
    assert_int_equal(gh_norder, 1);
    assert_null(a->large);
    assert_null(a->cleanup);
    assert_ptr_equal(a->current, a->first);
    assert_int_equal(a->used, a->block_size);
    /* the first block is reused from its start */
    assert_ptr_equal(gh_alloc(a, 32), first);

    gh_arena_reset(a);
    gh_arena_destroy(a);
    assert_int_equal(gh_norder, 1);   /* cleanups ran once only */
}

static void
test_strings(void **state)
{
    gh_arena_t *a = gh_arena_create(256, 0);
    gh_str_t    s = gh_string("hello"), d, e = gh_null_string;
    char       *c;

    c = gh_cstr(a, &s);
    assert_string_equal(c, "hello");
    d = gh_str_dup(a, &s);
    assert_int_equal(d.len, 5);
    assert_true(gh_str_eq(&d, &s));
    assert_int_equal(d.data[5], '\0');
    d = gh_str_dup(a, &e);
    assert_non_null(d.data);
    assert_int_equal(d.len, 0);
    gh_arena_destroy(a);
}

static void
test_array(void **state)
{
    gh_arena_t *a = gh_arena_create(1024, 0);
    gh_array_t *arr = gh_array_create(a, 2, sizeof(int));

    assert_non_null(arr);
    for (int i = 0; i < 1000; i++) {
        int *p = gh_array_push(arr);

        assert_non_null(p);
        *p = i;
    }
    assert_int_equal(arr->nelts, 1000);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(*gh_array_at(arr, int, i), i);
    }
    gh_arena_destroy(a);

    /* growth fails cleanly at the budget */
    a = gh_arena_create(1024, 2048);
    arr = gh_array_create(a, 1, 64);
    assert_non_null(arr);
    while (gh_array_push(arr) != NULL) {
        assert_true(arr->nelts < 100);
    }
    assert_true(arr->nelts >= 8);
    gh_arena_destroy(a);
}

static void
test_buf(void **state)
{
    gh_arena_t *a = gh_arena_create(1024, 0);
    gh_buf_t   *b = gh_buf_create(a, 100);
    gh_chain_t *cl;

    assert_non_null(b);
    assert_ptr_equal(b->pos, b->start);
    assert_ptr_equal(b->last, b->start);
    assert_int_equal(b->end - b->start, 100);
    assert_int_equal(gh_buf_size(b), 0);
    assert_int_equal(b->fd, -1);
    memcpy(b->last, "abc", 3);
    b->last += 3;
    assert_int_equal(gh_buf_size(b), 3);

    cl = gh_chain_link(a, b);
    assert_non_null(cl);
    assert_ptr_equal(cl->buf, b);
    assert_null(cl->next);
    gh_arena_destroy(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned),
        cmocka_unit_test(test_alloc_unaligned_and_calloc),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_cleanup_order),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_array),
        cmocka_unit_test(test_buf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
