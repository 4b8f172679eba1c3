/*
 * gh_core.h: the base every gatehouse file includes.
 *
 * Return codes, integer types, forward declarations of the main types and
 * small macros.  Includes point down only: core <- event <- http.
 */
#ifndef GH_CORE_H
#define GH_CORE_H

#define _GNU_SOURCE 1

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/types.h>

#define GH_VERSION "0.1.0"
#define GH_NAME    "gatehouse"

typedef intptr_t  gh_int_t;
typedef uintptr_t gh_uint_t;
typedef int64_t   gh_msec_t;     /* milliseconds */

#define GH_OK        0
#define GH_ERROR    -1
#define GH_AGAIN    -2
#define GH_DECLINED -3
#define GH_DONE     -4
#define GH_BUSY     -5

#define GH_UNSET      (-1)
#define GH_UNSET_SIZE ((size_t) -1)
#define GH_UNSET_MSEC ((gh_msec_t) -1)
#define GH_UNSET_PTR  ((void *) -1)

#define GH_CONF_UNSET_INT(x, def) do { if ((x) == GH_UNSET) (x) = (def); } while (0)

#define gh_min(a, b) ((a) < (b) ? (a) : (b))
#define gh_max(a, b) ((a) > (b) ? (a) : (b))
#define gh_nelems(a) (sizeof(a) / sizeof((a)[0]))
#define gh_align(n, a) (((n) + ((a) - 1)) & ~((size_t) (a) - 1))

#define gh_likely(x)   __builtin_expect(!!(x), 1)
#define gh_unlikely(x) __builtin_expect(!!(x), 0)

#define GH_UNUSED(x) ((void) (x))

#ifdef GH_DEBUG
#include <assert.h>
#define GH_ASSERT(x) assert(x)
#else
#define GH_ASSERT(x) ((void) 0)
#endif

/* forward declarations */
typedef struct gh_arena_s      gh_arena_t;
typedef struct gh_log_s        gh_log_t;
typedef struct gh_buf_s        gh_buf_t;
typedef struct gh_chain_s      gh_chain_t;
typedef struct gh_array_s      gh_array_t;
typedef struct gh_cycle_s      gh_cycle_t;
typedef struct gh_conf_s       gh_conf_t;
typedef struct gh_command_s    gh_command_t;
typedef struct gh_module_s     gh_module_t;
typedef struct gh_event_s      gh_event_t;
typedef struct gh_loop_s       gh_loop_t;
typedef struct gh_conn_s       gh_conn_t;
typedef struct gh_listening_s  gh_listening_t;
typedef struct gh_shm_zone_s   gh_shm_zone_t;

#include "gh_str.h"
#include "gh_mem.h"
#include "gh_arena.h"
#include "gh_array.h"
#include "gh_buf.h"
#include "gh_log.h"

/* allocation that aborts on system OOM: memory exhaustion of the whole
 * process is not something a worker can answer with a 5xx. */
void *gh_xmalloc(size_t n);
void *gh_xcalloc(size_t n, size_t size);
void *gh_xrealloc(void *p, size_t n);
char *gh_xstrdup(const char *s);
/* the message gh_xmalloc writes, then abort() */
void gh_oom(size_t n) __attribute__((noreturn));

#endif /* GH_CORE_H */
