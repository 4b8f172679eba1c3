/*
 * gh_conf_parse.c: tokenizer and tree builder.
 *
 * The tokenizer follows nginx's rules so that an nginx configuration reads
 * the same here:
 *
 *   - words are separated by space, tab, CR and LF;
 *   - ';' ends a directive, '{' opens a block, '}' closes one; only a
 *     word boundary makes them special, so `a}` is one word;
 *   - '#' starts a comment only where a word could start;
 *   - a word may be quoted with "..." or '...'; a quoted word must be
 *     followed by whitespace, ';', '{' or ')';
 *   - backslash escapes: \" \' \\ \t \r \n are replaced, any other pair is
 *     kept as is (regexes need their backslashes);
 *   - `$var` and `${var}` stay in the word untouched: the '{' right after
 *     a '$' does not open a block.  Variables are compiled later.
 *
 * The parser is a small recursive descent over blocks.  Nesting is bounded
 * (GH_CONF_MAX_DEPTH blocks, GH_CONF_MAX_INCLUDE include levels) because
 * configuration text can come from anywhere, including a fuzzer.
 *
 * `include` is expanded here, not by the dispatcher: the tree handed to
 * gh_conf_dispatch() is complete, so gh_conf_check_unknown() can report
 * every unknown directive of every file in one run.  Included nodes are
 * spliced where the include was and keep their own file:line.
 *
 * Memory: nodes, words and file contents live in cf->arena for as long as
 * the configuration; only the per-file argument scratch vector is on the
 * heap, and freed before returning.
 */
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gh_conf.h"

/* nginx stops at 4096 bytes, which long inline scripts and regexes hit;
 * 64 KiB is still small enough to catch a runaway quote early */
#define GH_CONF_MAX_PARAM    65536
#define GH_CONF_MAX_DEPTH    64
#define GH_CONF_MAX_INCLUDE  32

/* how many bytes of a parameter a "too long parameter" message shows */
#define GH_CONF_PARAM_SHOWN  16

typedef enum {
    GH_TOK_WORD,
    GH_TOK_SEMI,
    GH_TOK_OPEN,
    GH_TOK_CLOSE,
    GH_TOK_EOF,
    GH_TOK_ERROR
} gh_conf_tok_t;

typedef struct {
    gh_conf_t     *cf;
    const char    *file;       /* interned; nodes point at it */
    const uint8_t *pos;
    const uint8_t *end;
    unsigned       line;
    unsigned       depth;      /* open blocks, counting enclosing files */
    bool           need_space; /* the previous word was quoted */
    bool           string;     /* parsing -g text, not a file */

    /* arguments of the directive being read; grown on the heap because
     * the count is unbounded (server_name a b c ...) and only the final
     * vector is worth keeping in the arena */
    gh_str_t      *args;
    unsigned      *lines;
    size_t         nargs;
    size_t         nalloc;
} gh_conf_parser_t;

static gh_int_t gh_conf_parse_list(gh_conf_parser_t *p,
    gh_conf_node_t ***tail, bool in_block);
static gh_int_t gh_conf_parse_path(gh_conf_t *cf, const char *path,
    const gh_conf_node_t *from, unsigned depth, gh_conf_node_t ***tail);


/* an error at the tokenizer's position (or at `line`, when a word started
 * earlier than where the problem was found) */
static void gh_conf_parse_error(gh_conf_parser_t *p, unsigned line,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
gh_conf_parse_error(gh_conf_parser_t *p, unsigned line, const char *fmt, ...)
{
    gh_conf_node_t at;
    va_list        ap;
    char           msg[512];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    memset(&at, 0, sizeof(at));
    at.file = p->file;
    at.line = line;
    gh_conf_error_at(p->cf, GH_LOG_EMERG, &at, "%s", msg);
}


static void
gh_conf_parse_nomem(gh_conf_parser_t *p)
{
    gh_conf_parse_error(p, p->line, "%s",
        "not enough memory for the configuration");
}


static bool
gh_conf_is_space(uint8_t ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}


/* copy [start, end) into the arena, replacing the escapes nginx replaces;
 * the result is NUL-terminated so handlers may pass it to libc */
static bool
gh_conf_unescape(gh_conf_parser_t *p, const uint8_t *start,
    const uint8_t *end, gh_str_t *word)
{
    const uint8_t *s;
    uint8_t       *d;

    d = gh_alloc_unaligned(p->cf->arena, (size_t) (end - start) + 1);
    if (d == NULL) {
        gh_conf_parse_nomem(p);
        return false;
    }
    word->data = d;

    for (s = start; s < end; ) {
        if (*s == '\\' && s + 1 < end) {
            switch (s[1]) {
            case '"':
            case '\'':
            case '\\':
                *d++ = s[1];
                s += 2;
                continue;
            case 't':
                *d++ = '\t';
                s += 2;
                continue;
            case 'r':
                *d++ = '\r';
                s += 2;
                continue;
            case 'n':
                *d++ = '\n';
                s += 2;
                continue;
            default:
                /* kept whole, so that "\d" reaches PCRE intact and an
                 * escaped space or ';' is not re-scanned */
                *d++ = *s++;
                *d++ = *s++;
                continue;
            }
        }
        *d++ = *s++;
    }

    *d = '\0';
    word->len = (size_t) (d - word->data);
    return true;
}


static bool
gh_conf_word_fits(gh_conf_parser_t *p, const uint8_t *start, unsigned line)
{
    char shown[GH_CONF_PARAM_SHOWN + 1];

    if (p->pos - start <= GH_CONF_MAX_PARAM) {
        return true;
    }

    memcpy(shown, start, GH_CONF_PARAM_SHOWN);
    shown[GH_CONF_PARAM_SHOWN] = '\0';
    gh_conf_parse_error(p, line, "too long parameter \"%s...\" started",
        shown);
    return false;
}


/* a quoted word: p->pos is just past the opening quote */
static gh_conf_tok_t
gh_conf_quoted(gh_conf_parser_t *p, uint8_t quote, gh_str_t *word,
    unsigned line)
{
    const uint8_t *start = p->pos;

    while (p->pos < p->end && *p->pos != quote) {
        if (*p->pos == '\\' && p->pos + 1 < p->end) {
            p->pos++;
        }
        if (*p->pos == '\n') {
            p->line++;
        }
        p->pos++;
    }

    if (p->pos == p->end) {
        gh_conf_parse_error(p, p->line, "%s", p->string
            ? "unexpected end of parameter, expecting \";\""
            : "unexpected end of file, expecting \";\" or \"}\"");
        return GH_TOK_ERROR;
    }

    if (!gh_conf_word_fits(p, start, line)
        || !gh_conf_unescape(p, start, p->pos, word))
    {
        return GH_TOK_ERROR;
    }

    p->pos++;
    p->need_space = true;
    return GH_TOK_WORD;
}


/* an unquoted word: ends at whitespace, ';', '{' (unless the '{' follows
 * a '$', as in ${var}) or at the end of input; the terminator is left for
 * the next call */
static gh_conf_tok_t
gh_conf_bare(gh_conf_parser_t *p, gh_str_t *word, unsigned line)
{
    const uint8_t *start = p->pos;
    bool           variable = false;
    uint8_t        ch;

    while (p->pos < p->end) {
        ch = *p->pos;

        if (ch == '{' && variable) {
            /* like nginx, the flag stays set: `${{` is one word too */
            p->pos++;
            continue;
        }
        variable = false;

        if (ch == '\\') {
            p->pos++;
            if (p->pos < p->end) {
                if (*p->pos == '\n') {
                    p->line++;
                }
                p->pos++;
            }
            continue;
        }

        if (ch == '$') {
            variable = true;
            p->pos++;
            continue;
        }

        if (gh_conf_is_space(ch) || ch == ';' || ch == '{') {
            break;
        }

        p->pos++;
    }

    if (!gh_conf_word_fits(p, start, line)
        || !gh_conf_unescape(p, start, p->pos, word))
    {
        return GH_TOK_ERROR;
    }

    return GH_TOK_WORD;
}


static gh_conf_tok_t
gh_conf_token(gh_conf_parser_t *p, gh_str_t *word, unsigned *line)
{
    char    bad[2];
    uint8_t ch;

    if (p->need_space) {
        p->need_space = false;
        if (p->pos < p->end) {
            ch = *p->pos;
            /* ')' is allowed so that `if ($a = "b")` reads as in nginx */
            if (!gh_conf_is_space(ch) && ch != ';' && ch != '{'
                && ch != ')')
            {
                bad[0] = (char) ch;
                bad[1] = '\0';
                gh_conf_parse_error(p, p->line, "unexpected \"%s\"", bad);
                return GH_TOK_ERROR;
            }
        }
    }

    for (;;) {
        if (p->pos == p->end) {
            return GH_TOK_EOF;
        }
        ch = *p->pos;
        if (ch == '\n') {
            p->line++;
            p->pos++;
        } else if (gh_conf_is_space(ch)) {
            p->pos++;
        } else if (ch == '#') {
            /* the LF stays, so the loop above counts it */
            while (p->pos < p->end && *p->pos != '\n') {
                p->pos++;
            }
        } else {
            break;
        }
    }

    switch (ch) {
    case ';':
        p->pos++;
        return GH_TOK_SEMI;
    case '{':
        p->pos++;
        return GH_TOK_OPEN;
    case '}':
        p->pos++;
        return GH_TOK_CLOSE;
    }

    *line = p->line;
    if (ch == '"' || ch == '\'') {
        p->pos++;
        return gh_conf_quoted(p, ch, word, *line);
    }
    return gh_conf_bare(p, word, *line);
}


static void
gh_conf_push_arg(gh_conf_parser_t *p, const gh_str_t *word, unsigned line)
{
    size_t n;

    if (p->nargs == p->nalloc) {
        n = p->nalloc ? p->nalloc * 2 : 16;
        p->args = gh_xrealloc(p->args, n * sizeof(gh_str_t));
        p->lines = gh_xrealloc(p->lines, n * sizeof(unsigned));
        p->nalloc = n;
    }
    p->args[p->nargs] = *word;
    p->lines[p->nargs] = line;
    p->nargs++;
}


static gh_conf_node_t *
gh_conf_new_node(gh_conf_parser_t *p, bool block)
{
    gh_conf_node_t *n;

    n = gh_calloc(p->cf->arena, sizeof(gh_conf_node_t));
    if (n == NULL) {
        gh_conf_parse_nomem(p);
        return NULL;
    }
    n->args = gh_alloc(p->cf->arena, p->nargs * sizeof(gh_str_t));
    if (n->args == NULL) {
        gh_conf_parse_nomem(p);
        return NULL;
    }
    memcpy(n->args, p->args, p->nargs * sizeof(gh_str_t));
    n->nargs = p->nargs;
    n->file = p->file;
    n->line = p->lines[0];
    n->block = block;
    return n;
}


static bool
gh_conf_is_include(const gh_conf_node_t *n)
{
    return gh_str_eq_c(&n->args[0], "include");
}


static bool
gh_conf_has_glob(const char *path)
{
    return strpbrk(path, "*?[") != NULL;
}


/* `include PATTERN;`: a plain path must exist, a glob may match nothing
 * (an empty conf.d on a fresh install); matches are read in sorted order
 * so that the result does not depend on the directory layout */
static gh_int_t
gh_conf_include(gh_conf_parser_t *p, const gh_conf_node_t *n,
    gh_conf_node_t ***tail)
{
    gh_conf_t *cf = p->cf;
    glob_t     g;
    char      *path;
    gh_int_t   rc;
    size_t     i;
    int        grc;

    if (n->nargs != 2) {
        gh_conf_error_at(cf, GH_LOG_EMERG, n,
            "invalid number of arguments in \"include\" directive");
        return GH_ERROR;
    }

    if (cf->include_depth >= GH_CONF_MAX_INCLUDE) {
        gh_conf_error_at(cf, GH_LOG_EMERG, n,
            "too many nested includes (more than %d), recursive include?",
            GH_CONF_MAX_INCLUDE);
        return GH_ERROR;
    }

    path = gh_conf_full_name(cf, &n->args[1], true);
    if (path == NULL) {
        gh_conf_parse_nomem(p);
        return GH_ERROR;
    }

    if (!gh_conf_has_glob(path)) {
        return gh_conf_parse_path(cf, path, n, p->depth, tail);
    }

    memset(&g, 0, sizeof(g));
    grc = glob(path, 0, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        globfree(&g);
        return GH_OK;
    }
    if (grc != 0) {
        /* without GLOB_ERR only GLOB_NOSPACE gets here */
        gh_conf_error_at(cf, GH_LOG_EMERG, n, "glob() \"%s\" failed", path);
        globfree(&g);
        return GH_ERROR;
    }

    rc = GH_OK;
    for (i = 0; i < g.gl_pathc && rc == GH_OK; i++) {
        rc = gh_conf_parse_path(cf, g.gl_pathv[i], n, p->depth, tail);
    }
    globfree(&g);
    return rc;
}


/* one directive whose words are in p->args, ended by `tok` */
static gh_int_t
gh_conf_directive(gh_conf_parser_t *p, gh_conf_tok_t tok,
    gh_conf_node_t ***tail)
{
    gh_conf_node_t  *n, **children;
    bool             block = tok == GH_TOK_OPEN;
    gh_int_t         rc;

    n = gh_conf_new_node(p, block);
    if (n == NULL) {
        return GH_ERROR;
    }
    p->nargs = 0;

    if (!block && gh_conf_is_include(n)) {
        return gh_conf_include(p, n, tail);
    }

    if (block && gh_conf_is_include(n)) {
        gh_conf_error_at(p->cf, GH_LOG_EMERG, n, "unexpected \"{\"");
        return GH_ERROR;
    }

    **tail = n;
    *tail = &n->next;

    if (!block) {
        return GH_OK;
    }

    if (p->depth >= GH_CONF_MAX_DEPTH) {
        gh_conf_error_at(p->cf, GH_LOG_EMERG, n,
            "too deeply nested blocks (more than %d)", GH_CONF_MAX_DEPTH);
        return GH_ERROR;
    }

    children = &n->children;
    p->depth++;
    rc = gh_conf_parse_list(p, &children, true);
    p->depth--;
    return rc;
}


/* read directives until the end of input (in_block false) or the '}'
 * closing the current block */
static gh_int_t
gh_conf_parse_list(gh_conf_parser_t *p, gh_conf_node_t ***tail,
    bool in_block)
{
    gh_conf_tok_t tok;
    gh_str_t      word;
    unsigned      line = 0;

    for (;;) {
        tok = gh_conf_token(p, &word, &line);

        switch (tok) {
        case GH_TOK_WORD:
            gh_conf_push_arg(p, &word, line);
            continue;

        case GH_TOK_ERROR:
            return GH_ERROR;

        case GH_TOK_EOF:
            if (p->nargs > 0) {
                gh_conf_parse_error(p, p->line, "%s", p->string
                    ? "unexpected end of parameter, expecting \";\""
                    : "unexpected end of file, expecting \";\" or \"}\"");
                return GH_ERROR;
            }
            if (in_block) {
                gh_conf_parse_error(p, p->line, "%s",
                    "unexpected end of file, expecting \"}\"");
                return GH_ERROR;
            }
            return GH_OK;

        case GH_TOK_CLOSE:
            if (p->nargs > 0 || !in_block) {
                gh_conf_parse_error(p, p->line, "%s", "unexpected \"}\"");
                return GH_ERROR;
            }
            return GH_OK;

        case GH_TOK_SEMI:
        case GH_TOK_OPEN:
            if (p->nargs == 0) {
                gh_conf_parse_error(p, p->line, "unexpected \"%s\"",
                    tok == GH_TOK_SEMI ? ";" : "{");
                return GH_ERROR;
            }
            if (gh_conf_directive(p, tok, tail) != GH_OK) {
                return GH_ERROR;
            }
            continue;
        }
    }
}


static gh_int_t
gh_conf_parse_text(gh_conf_t *cf, const char *file, const uint8_t *data,
    size_t len, bool string, unsigned depth, gh_conf_node_t ***tail)
{
    gh_conf_parser_t p;
    gh_int_t         rc;

    memset(&p, 0, sizeof(p));
    p.cf = cf;
    p.file = file;
    p.pos = data;
    p.end = data + len;
    p.line = 1;
    p.depth = depth;
    p.string = string;

    rc = gh_conf_parse_list(&p, tail, false);

    free(p.args);
    free(p.lines);
    return rc;
}


/* the interned name of a file already read, so that every node of a file
 * shares one string; NULL if the file was not read yet */
static const char *
gh_conf_known_file(gh_conf_t *cf, const char *path)
{
    gh_conf_file_t *f;
    size_t          i;

    for (i = 0; i < cf->files.nelts; i++) {
        f = gh_array_at(&cf->files, gh_conf_file_t, i);
        if (strcmp(f->path, path) == 0) {
            return f->path;
        }
    }
    return NULL;
}


static const char *
gh_conf_record_file(gh_conf_t *cf, const char *path, const gh_str_t *content)
{
    gh_conf_file_t *f;
    const char     *name;
    size_t          n;

    name = gh_conf_known_file(cf, path);
    if (name != NULL) {
        /* included twice: -T shows it once, as nginx does */
        return name;
    }

    if (cf->files.elts == NULL
        && gh_array_init(&cf->files, cf->arena, 8, sizeof(gh_conf_file_t))
           != GH_OK)
    {
        return NULL;
    }

    n = strlen(path);
    name = (const char *) gh_strdup_arena(cf->arena, (const uint8_t *) path,
        n);
    if (name == NULL) {
        return NULL;
    }

    f = gh_array_push(&cf->files);
    if (f == NULL) {
        return NULL;
    }
    f->path = name;
    f->content = *content;
    return name;
}


static void
gh_conf_io_error(gh_conf_t *cf, const gh_conf_node_t *from, const char *op,
    const char *path, int err)
{
    gh_conf_error_at(cf, GH_LOG_EMERG, from, "%s() \"%s\" failed (%d: %s)",
        op, path, err, strerror(err));
}


/*
 * Whole file into the arena, sized by fstat.  Only regular files: a
 * device (`include /dev/zero;`) would never end and a FIFO would block
 * open(), hence O_NONBLOCK, which regular files ignore.  A file growing
 * while we read is cut at its size when we looked, as nginx does.
 */
static gh_int_t
gh_conf_read_file(gh_conf_t *cf, const char *path,
    const gh_conf_node_t *from, gh_str_t *content)
{
    struct stat st;
    uint8_t    *buf;
    size_t      len = 0, size;
    ssize_t     n;
    int         fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd == -1) {
        gh_conf_io_error(cf, from, "open", path, errno);
        return GH_ERROR;
    }

    if (fstat(fd, &st) == -1) {
        gh_conf_io_error(cf, from, "fstat", path, errno);
        goto failed;
    }
    if (S_ISDIR(st.st_mode)) {
        /* nginx's wording for this case: its read() fails */
        gh_conf_io_error(cf, from, "read", path, EISDIR);
        goto failed;
    }
    if (!S_ISREG(st.st_mode)) {
        gh_conf_error_at(cf, GH_LOG_EMERG, from,
            "\"%s\" is not a regular file", path);
        goto failed;
    }

    size = (size_t) st.st_size;
    buf = gh_alloc_unaligned(cf->arena, size + 1);
    if (buf == NULL) {
        gh_conf_error_at(cf, GH_LOG_EMERG, from,
            "not enough memory for the configuration");
        goto failed;
    }

    while (len < size) {
        n = read(fd, buf + len, size - len);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            gh_conf_io_error(cf, from, "read", path, errno);
            goto failed;
        }
        if (n == 0) {
            break;
        }
        len += (size_t) n;
    }

    buf[len] = '\0';
    content->data = buf;
    content->len = len;
    close(fd);
    return GH_OK;

failed:
    close(fd);
    return GH_ERROR;
}


static gh_int_t
gh_conf_parse_path(gh_conf_t *cf, const char *path,
    const gh_conf_node_t *from, unsigned depth, gh_conf_node_t ***tail)
{
    gh_str_t    content;
    const char *name;
    gh_int_t    rc;

    if (gh_conf_read_file(cf, path, from, &content) != GH_OK) {
        return GH_ERROR;
    }

    name = gh_conf_record_file(cf, path, &content);
    if (name == NULL) {
        gh_conf_error_at(cf, GH_LOG_EMERG, from,
            "not enough memory for the configuration");
        return GH_ERROR;
    }

    cf->include_depth++;
    rc = gh_conf_parse_text(cf, name, content.data, content.len, false,
        depth, tail);
    cf->include_depth--;
    return rc;
}


void
gh_conf_init(gh_conf_t *cf, gh_cycle_t *cycle, gh_arena_t *arena,
    gh_log_t *log)
{
    memset(cf, 0, sizeof(*cf));
    cf->cycle = cycle;
    cf->arena = arena;
    cf->log = log;
    cf->ctx_type = GH_MAIN_CONF;
    /* cf->files is set up on the first file read: gh_array_init can fail
     * on the arena budget, and this function has no way to say so */
}


/* messages and include patterns want an absolute name; a relative main
 * config is taken relative to the working directory, as open() would */
static char *
gh_conf_absolute(gh_conf_t *cf, const char *path)
{
    char   cwd[PATH_MAX];
    char  *out;
    size_t cl, pl;

    pl = strlen(path);
    if (path[0] == '/') {
        return (char *) gh_strdup_arena(cf->arena, (const uint8_t *) path,
            pl);
    }
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        return (char *) gh_strdup_arena(cf->arena, (const uint8_t *) path,
            pl);
    }

    cl = strlen(cwd);
    out = gh_alloc_unaligned(cf->arena, cl + 1 + pl + 1);
    if (out == NULL) {
        return NULL;
    }
    memcpy(out, cwd, cl);
    out[cl] = '/';
    memcpy(out + cl + 1, path, pl + 1);
    return out;
}


gh_int_t
gh_conf_parse_file(gh_conf_t *cf, const char *path, gh_conf_node_t **out)
{
    gh_conf_node_t  *head = NULL, **tail = &head;
    char            *abs, *slash;
    gh_int_t         rc;

    *out = NULL;

    abs = gh_conf_absolute(cf, path);
    if (abs == NULL) {
        gh_conf_error_at(cf, GH_LOG_EMERG, NULL,
            "not enough memory for the configuration");
        return GH_ERROR;
    }

    if (cf->conf_prefix == NULL) {
        /* includes of the main config are relative to its directory */
        slash = strrchr(abs, '/');
        cf->conf_prefix = (char *) gh_strdup_arena(cf->arena,
            (const uint8_t *) abs, (size_t) (slash - abs) + 1);
        if (cf->conf_prefix == NULL) {
            gh_conf_error_at(cf, GH_LOG_EMERG, NULL,
                "not enough memory for the configuration");
            return GH_ERROR;
        }
    }

    rc = gh_conf_parse_path(cf, abs, NULL, 0, &tail);
    if (rc != GH_OK) {
        return rc;
    }
    *out = head;
    return GH_OK;
}


gh_int_t
gh_conf_parse_string(gh_conf_t *cf, const char *name, const uint8_t *data,
    size_t len, gh_conf_node_t **out)
{
    gh_conf_node_t  *head = NULL, **tail = &head;
    const char      *file;
    gh_int_t         rc;

    *out = NULL;

    file = (const char *) gh_strdup_arena(cf->arena, (const uint8_t *) name,
        strlen(name));
    if (file == NULL) {
        gh_conf_error_at(cf, GH_LOG_EMERG, NULL,
            "not enough memory for the configuration");
        return GH_ERROR;
    }

    rc = gh_conf_parse_text(cf, file, data, len, true, 0, &tail);
    if (rc != GH_OK) {
        return rc;
    }
    *out = head;
    return GH_OK;
}
