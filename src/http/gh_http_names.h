/*
 * gh_http_names.h: a table of host names with nginx's wildcards, shared
 * by server_name and `map { hostnames; }`.  Internal to src/http.
 *
 *   "example.com"    exact
 *   "*.example.com"  any name ending in ".example.com" (not example.com)
 *   ".example.com"   example.com itself and every name below it
 *   "www.example.*"  any name starting with "www.example."
 *
 * find() tries exact, then the longest leading wildcard, then the longest
 * trailing wildcard.  Names compare case-insensitively.  Lookups never
 * allocate: suffix and prefix hashes are computed in one pass over the
 * name, so a host with many dots costs O(length), not O(length^2).
 */
#ifndef GH_HTTP_NAMES_H
#define GH_HTTP_NAMES_H

#include "gh_http.h"

typedef struct gh_http_names_s gh_http_names_t;

gh_http_names_t *gh_http_names_create(gh_arena_t *a);

/* wildcards: parse "*.x", ".x", "x.*" as wildcards (else every name is
 * exact).  Returns GH_OK; GH_BUSY if the name is already there (the
 * first value is kept); GH_DECLINED if it is not a valid name or
 * wildcard; GH_ERROR on memory. */
gh_int_t gh_http_names_add(gh_http_names_t *t, const gh_str_t *name,
    void *value, bool wildcards);

/* value for a name, NULL if none matches */
void *gh_http_names_find(const gh_http_names_t *t, const uint8_t *name,
    size_t len);

/* number of names added (exact and wildcard) */
size_t gh_http_names_count(const gh_http_names_t *t);

#endif
