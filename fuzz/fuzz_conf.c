/*
 * fuzz_conf.c: libFuzzer harness for the configuration parser.
 *
 * The input is parsed as -g text (no file), then the tree is walked by
 * the unknown-directive pass, which runs the "did you mean" distance over
 * whatever names the fuzzer made up.  The arena has a budget, so inputs
 * that would need much memory exercise the out-of-memory paths instead
 * of the machine's swap.  Everything is freed per input; LeakSanitizer
 * checks that.
 *
 * `include` would reach the real filesystem, where a glob a few levels
 * deep from the root spends seconds in glob(3) walking /proc.  So
 * includes are fuzzed only within a directory of our own: conf_prefix
 * points there, and an input naming both "include" and a '/' is skipped.
 * No escape produces a '/' or the letters of "include", so the raw bytes
 * tell.  The directory holds an ordinary file and one that includes
 * itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/gh_core.h"
#include "core/gh_module.h"
#include "conf/gh_conf.h"

#define FUZZ_ARENA_BLOCK  4096
#define FUZZ_ARENA_BUDGET (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* level 0 accepts nothing (emerg is 1): errors are formatted by the conf
 * code but the log drops them before any write */
static gh_log_file_t fuzz_log_file = { -1, NULL, NULL };
static gh_log_t      fuzz_log = { .level = 0, .file = &fuzz_log_file };
static char          fuzz_prefix[64];

static void
fuzz_write(const char *name, const char *content)
{
    char  path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s%s", fuzz_prefix, name);
    f = fopen(path, "w");
    if (f != NULL) {
        fputs(content, f);
        fclose(f);
    }
}

static void
fuzz_cleanup(void)
{
    char path[128];

    snprintf(path, sizeof(path), "%sa.conf", fuzz_prefix);
    unlink(path);
    snprintf(path, sizeof(path), "%sloop.conf", fuzz_prefix);
    unlink(path);
    rmdir(fuzz_prefix);
}

static void
fuzz_init(void)
{
    char dir[] = "/tmp/gh_fuzz_conf_XXXXXX";

    gh_modules_init();
    if (mkdtemp(dir) == NULL) {
        snprintf(fuzz_prefix, sizeof(fuzz_prefix), "/nonexistent/");
        return;
    }
    snprintf(fuzz_prefix, sizeof(fuzz_prefix), "%s/", dir);
    fuzz_write("a.conf", "a b;\nc \"d\" {\n    e;\n}\n");
    fuzz_write("loop.conf", "x;\ninclude loop.conf;\n");
    atexit(fuzz_cleanup);
}

/* every node must be well formed, whatever the input */
static void
fuzz_walk(const gh_conf_node_t *n, unsigned depth)
{
    for (; n != NULL; n = n->next) {
        if (n->nargs == 0 || n->args == NULL || n->line == 0
            || n->file == NULL || (!n->block && n->children != NULL)
            || depth > 1000)
        {
            abort();
        }
        for (size_t i = 0; i < n->nargs; i++) {
            if (n->args[i].data[n->args[i].len] != '\0') {
                abort();
            }
        }
        fuzz_walk(n->children, depth + 1);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool     initialised;
    gh_conf_node_t *nodes;
    gh_arena_t     *arena;
    gh_conf_t       cf;

    if (!initialised) {
        fuzz_init();
        initialised = true;
    }
    if (memmem(data, size, "include", 7) != NULL
        && memchr(data, '/', size) != NULL)
    {
        return 0;
    }

    arena = gh_arena_create(FUZZ_ARENA_BLOCK, FUZZ_ARENA_BUDGET);
    if (arena == NULL) {
        return 0;
    }

    gh_conf_init(&cf, NULL, arena, &fuzz_log);
    cf.conf_prefix = fuzz_prefix;
    cf.prefix = fuzz_prefix;

    if (gh_conf_parse_string(&cf, "fuzz", data, size, &nodes) == GH_OK) {
        fuzz_walk(nodes, 0);
        (void) gh_conf_check_unknown(&cf, nodes);
    }

    gh_arena_destroy(arena);
    return 0;
}
