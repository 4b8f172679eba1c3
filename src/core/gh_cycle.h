/*
 * gh_cycle.h: one loaded configuration and everything made from it:
 * the conf arena, core module confs, listening sockets, shared zones,
 * log files.  A reload builds a new cycle next to the old one; the old
 * one is released once its workers are gone.
 */
#ifndef GH_CYCLE_H
#define GH_CYCLE_H

#include "gh_core.h"
#include "gh_module.h"
#include "gh_shm.h"

struct gh_cycle_s {
    gh_arena_t     *arena;
    gh_log_t       *log;           /* error_log of the main context */
    gh_log_t       *new_log;       /* built while parsing */
    gh_log_file_t  *files;         /* every file opened by this cycle */
    void          **core_confs;    /* indexed by module index */
    gh_conf_ctx_t   main_ctx;      /* main_conf = core_confs */
    void           *http_ctx;      /* gh_conf_ctx_t of http{}, or NULL */
    gh_array_t      listening;     /* gh_listening_t */
    gh_shm_zone_t  *shm_zones;
    gh_conf_t      *conf;          /* kept for -T */

    const char     *conf_file;     /* absolute */
    const char     *conf_prefix;   /* dir of conf_file, ends in '/' */
    const char     *prefix;        /* ends in '/' */
    const char     *conf_param;    /* -g */
    const char     *error_log_path;/* -e, NULL = default */
    gh_loop_t      *loop;          /* in a worker */
    gh_uint_t       worker_index;
    gh_uint_t       generation;
};

/* main-context settings of the core module */
typedef struct {
    int         daemon;               /* flag */
    int         master;               /* master_process flag */
    gh_int_t    worker_processes;     /* 0 = auto resolved in init */
    gh_int_t    worker_connections;
    gh_int_t    worker_rlimit_nofile;
    gh_msec_t   shutdown_timeout;     /* worker_shutdown_timeout */
    char       *pid;
    gh_str_t    user;
    gh_str_t    group;
    gh_str_t    error_log_set;        /* marker: error_log given in main */
    int         multi_accept;         /* events {} flag */
    int         pcre_jit;             /* accepted; regexes always use JIT */
    bool        events_set;           /* events {} seen (duplicate check) */
    bool        switch_user;          /* `user` given and we are root */
    uid_t       user_uid;             /* resolved when switch_user */
    gid_t       user_gid;
} gh_core_conf_t;

extern gh_module_t gh_core_module;
extern gh_module_t gh_events_module;
extern volatile gh_cycle_t *gh_cycle;   /* current cycle of this process */

#define gh_core_conf(cycle) \
    ((gh_core_conf_t *) (cycle)->core_confs[gh_core_module.index])

/* build a cycle from conf_file (+ -g), logging errors to log; NULL on
 * failure.  conf_file and prefix resolve as gh_cycle_conf_name() says;
 * prefix NULL derives it from the conf file's location.  Neither sockets
 * nor shared zones are touched (so -t and -s can use it): the caller
 * follows with gh_shm_zones_init() and gh_cycle_open_listening(). */
gh_cycle_t *gh_cycle_load(const char *conf_file, const char *prefix,
    const char *conf_param, const char *error_log_path, gh_log_t *log,
    gh_cycle_t *old);
/* absolute name of the main config (malloc'd): conf_file as is if
 * absolute, else relative to prefix (-p) if given, else to the cwd */
char *gh_cycle_conf_name(const char *conf_file, const char *prefix);
/* close listening fds not taken over by a newer cycle, close log files,
 * destroy the arena.  Shared zones are left alone (see gh_process.c). */
void gh_cycle_free(gh_cycle_t *cycle);
/* open listening sockets, taking over matching ones from old (same
 * address, reuseport and worker: old's entry gets keep=1, ours
 * inherited=1).  On failure everything it did is undone. */
gh_int_t gh_cycle_open_listening(gh_cycle_t *cycle, gh_cycle_t *old);
/* error_log directive handler, shared by main/http/server/location */
const char *gh_conf_set_error_log(gh_conf_t *cf, gh_log_t **logp);

#endif
