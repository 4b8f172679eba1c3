/*
 * gh_module_table.c: lookups over the module list.
 *
 * Kept apart from gh_modules.c, which only defines the ordered array, so
 * that unit tests can link these functions against a module list of
 * their own.
 *
 * Lookup is a linear scan: it runs once per directive at configuration
 * time, over a few hundred commands, and a hash would have to be built
 * (and kept in sync with the list) for no measurable gain.
 */
#include "gh_core.h"
#include "gh_module.h"

/* set by gh_modules_init(); defined here rather than next to the array
 * because it is derived from it */
gh_uint_t gh_modules_n;


void
gh_modules_init(void)
{
    gh_uint_t i;

    for (i = 0; gh_modules[i] != NULL; i++) {
        gh_modules[i]->index = i;
    }
    gh_modules_n = i;
}


static bool
gh_command_is(const gh_command_t *cmd, const gh_str_t *name)
{
    size_t len = strlen(cmd->name);

    return len == name->len && memcmp(cmd->name, name->data, len) == 0;
}


const gh_command_t *
gh_modules_find_command(const gh_str_t *name, unsigned ctx_type,
    gh_module_t **module)
{
    const gh_command_t *cmd, *any = NULL;
    gh_module_t        *any_module = NULL;
    gh_uint_t           i;

    /* a name can be declared by several modules for different contexts
     * (e.g. a core and an http `error_log`): the one valid here wins, and
     * the first declared one stands for "known, but not allowed here" */
    for (i = 0; gh_modules[i] != NULL; i++) {
        for (cmd = gh_modules[i]->commands; cmd && cmd->name; cmd++) {
            if (!gh_command_is(cmd, name)) {
                continue;
            }
            if (cmd->ctx & ctx_type) {
                if (module != NULL) {
                    *module = gh_modules[i];
                }
                return cmd;
            }
            if (any == NULL) {
                any = cmd;
                any_module = gh_modules[i];
            }
        }
    }

    if (module != NULL) {
        *module = any_module;
    }
    return any;
}
