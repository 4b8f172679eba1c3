/*
 * gh_alloc.c: allocation from the system that aborts on failure.
 *
 * Used for long-lived or fixed-size objects (loops, connection objects,
 * arena blocks).  Per-request memory that can be attributed to a client
 * goes through an arena with a budget instead, so a greedy client gets an
 * error response while the process keeps running.
 */
#include "gh_core.h"

#include <stdio.h>
#include <unistd.h>

void
gh_oom(size_t n)
{
    char msg[96];
    int  len;

    /* no gh_log here: formatting may itself need memory we do not have */
    len = snprintf(msg, sizeof(msg),
        GH_NAME ": [emerg] out of memory allocating %zu bytes\n", n);
    if (len > 0) {
        ssize_t rc = write(STDERR_FILENO, msg, (size_t) gh_min(len, 95));
        GH_UNUSED(rc);
    }
    abort();
}

void *
gh_xmalloc(size_t n)
{
    /* malloc(0) may return NULL, which must not look like OOM */
    void *p = malloc(n ? n : 1);

    if (gh_unlikely(p == NULL)) {
        gh_oom(n);
    }
    return p;
}

void *
gh_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (gh_unlikely(p == NULL)) {
        gh_oom(n * size);
    }
    return p;
}

void *
gh_xrealloc(void *p, size_t n)
{
    void *np = realloc(p, n ? n : 1);

    if (gh_unlikely(np == NULL)) {
        gh_oom(n);
    }
    return np;
}

char *
gh_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;

    return memcpy(gh_xmalloc(n), s, n);
}
