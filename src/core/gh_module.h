/*
 * gh_module.h: a module is a directive table plus per-level conf hooks.
 * Every module is listed, in order, in src/core/gh_modules.c; the order is
 * also the order of phase handlers and output filters.
 */
#ifndef GH_MODULE_H
#define GH_MODULE_H

#include "gh_core.h"
#include "../conf/gh_conf.h"

struct gh_module_s {
    const char         *name;
    const gh_command_t *commands;

    /* main context (worker_processes, events {}, ...) */
    void       *(*create_core_conf)(gh_conf_t *cf);
    const char *(*init_core_conf)(gh_conf_t *cf, void *conf);

    /* http {} levels */
    void       *(*create_main_conf)(gh_conf_t *cf);
    const char *(*init_main_conf)(gh_conf_t *cf, void *conf);
    void       *(*create_srv_conf)(gh_conf_t *cf);
    const char *(*merge_srv_conf)(gh_conf_t *cf, void *prev, void *conf);
    void       *(*create_loc_conf)(gh_conf_t *cf);
    const char *(*merge_loc_conf)(gh_conf_t *cf, void *prev, void *conf);

    /* after the whole configuration is read: register phase handlers and
     * filters, compile tables */
    gh_int_t    (*postconfiguration)(gh_conf_t *cf);

    /* in each worker, after fork */
    gh_int_t    (*init_process)(gh_cycle_t *cycle);
    void        (*exit_process)(gh_cycle_t *cycle);

    gh_uint_t   index;     /* assigned by gh_modules_init() */
};

extern gh_module_t *gh_modules[];   /* NULL-terminated */
extern gh_uint_t    gh_modules_n;

void gh_modules_init(void);
/* find a command by name among all modules: the first one whose ctx
 * matches ctx_type, else (if ctx_type==0 or nothing matches) any one with
 * that name; *module is set.  NULL if the name is unknown. */
const gh_command_t *gh_modules_find_command(const gh_str_t *name,
    unsigned ctx_type, gh_module_t **module);

#endif
