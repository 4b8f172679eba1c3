/*
 * gh_http_map_module.c: `map $source $dest { key value; ... }`.
 *
 * As nginx: the source is a complex value; keys are exact strings
 * (compared case-insensitively), hostnames ("*.x", ".x", "x.*" after
 * `hostnames;`) or regexes ("~re", "~*re" caseless) tried in order after
 * the exact and wildcard keys; a leading '\' escapes a key that would
 * start with '~' or spell a keyword.  Values may hold variables and, for
 * regex keys, captures ("$1").  `default` is the value when nothing
 * matches (empty if absent); `volatile;` stops the per-request caching of
 * the result.
 *
 * map_hash_bucket_size and map_hash_max_size are accepted (and checked)
 * but do nothing: the key table grows to fit by itself.
 */
#include "gh_http.h"
#include "gh_http_modules.h"
#include "gh_http_names.h"

typedef struct {
    gh_http_complex_value_t  value;
} gh_http_map_value_t;

typedef struct {
    gh_http_regex_t      *regex;
    gh_http_map_value_t  *value;
} gh_http_map_regex_t;

typedef struct {
    gh_http_complex_value_t  source;
    gh_http_names_t         *keys;
    gh_array_t               regex;          /* gh_http_map_regex_t */
    gh_http_map_value_t     *default_value;
    bool                     hostnames;
    bool                     volatile_;
} gh_http_map_t;

static const char *gh_http_map_block(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_http_map_hash_param(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);

static const gh_command_t gh_http_map_commands[] = {
    { "map", GH_HTTP_MAIN_CONF, GH_CONF_BLOCK | GH_CONF_RAW | GH_CONF_TAKE2,
      gh_http_map_block, GH_CONF_MAIN_OFFSET, 0, NULL },
    { "map_hash_bucket_size", GH_HTTP_MAIN_CONF, GH_CONF_TAKE1,
      gh_http_map_hash_param, GH_CONF_MAIN_OFFSET, 0, NULL },
    { "map_hash_max_size", GH_HTTP_MAIN_CONF, GH_CONF_TAKE1,
      gh_http_map_hash_param, GH_CONF_MAIN_OFFSET, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_map_module = {
    .name = "http_map",
    .commands = gh_http_map_commands,
};


static gh_int_t
gh_http_map_variable(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const gh_http_map_t       *map = (const gh_http_map_t *) data;
    const gh_http_map_value_t *value;
    gh_str_t                   src;

    if (gh_http_complex_value(r, &map->source, &src) != GH_OK) {
        return GH_ERROR;
    }
    if (map->hostnames && src.len && src.data[src.len - 1] == '.') {
        src.len--;
    }

    value = gh_http_names_find(map->keys, src.data, src.len);

    /* as nginx, regexes never see an empty source */
    if (value == NULL && src.len) {
        const gh_http_map_regex_t *re = map->regex.elts;

        for (size_t i = 0; i < map->regex.nelts; i++) {
            gh_int_t rc = gh_http_regex_exec(r, re[i].regex, &src);

            if (rc == GH_OK) {
                value = re[i].value;
                break;
            }
            if (rc != GH_DECLINED) {
                return GH_ERROR;
            }
        }
    }

    if (value == NULL) {
        value = map->default_value;
    }
    if (value == NULL) {
        gh_str_set(v, "");
        return GH_OK;
    }
    return gh_http_complex_value(r, &value->value, v);
}


/* one `key value;` line of the block; cf->node is that line */
static const char *
gh_http_map_entry(gh_conf_t *cf, gh_http_map_t *map)
{
    gh_conf_node_t      *n = cf->node;
    gh_str_t             key = n->args[0];
    gh_http_map_value_t *value;
    const char          *rv;
    gh_int_t             rc;

    if (n->nargs == 1 && gh_str_eq_c(&key, "hostnames")) {
        map->hostnames = true;
        return NULL;
    }
    if (n->nargs == 1 && gh_str_eq_c(&key, "volatile")) {
        map->volatile_ = true;
        return NULL;
    }
    if (n->nargs != 2 || n->block) {
        gh_conf_error(cf, "invalid number of the map parameters");
        return GH_CONF_ERROR;
    }

    value = gh_calloc(cf->arena, sizeof(*value));
    if (value == NULL) {
        return "out of memory";
    }
    rv = gh_http_compile_complex_value(cf, &n->args[1], &value->value);
    if (rv != NULL) {
        if (rv != GH_CONF_ERROR) {
            gh_conf_error(cf, "%s", rv);
        }
        return GH_CONF_ERROR;
    }

    if (gh_str_eq_c(&key, "default")) {
        if (map->default_value != NULL) {
            gh_conf_error(cf, "duplicate default map parameter");
            return GH_CONF_ERROR;
        }
        map->default_value = value;
        return NULL;
    }

    if (key.len && key.data[0] == '~') {
        gh_http_map_regex_t *re = gh_array_push(&map->regex);
        bool                 caseless = key.len > 1 && key.data[1] == '*';
        const char          *err = NULL;
        gh_str_t             pattern;

        if (re == NULL) {
            return "out of memory";
        }
        pattern.data = key.data + (caseless ? 2 : 1);
        pattern.len = key.len - (caseless ? 2 : 1);
        re->value = value;
        re->regex = gh_http_regex_compile(cf, &pattern, caseless, &err);
        if (re->regex == NULL) {
            gh_conf_error(cf, "%s", err ? err : "invalid regex");
            return GH_CONF_ERROR;
        }
        return NULL;
    }

    if (key.len && key.data[0] == '\\') {
        key.data++;
        key.len--;
    }

    rc = gh_http_names_add(map->keys, &key, value, map->hostnames);
    if (rc == GH_BUSY) {
        gh_conf_error(cf, "conflicting parameter \"%.*s\"", (int) key.len,
            (const char *) key.data);
        return GH_CONF_ERROR;
    }
    if (rc == GH_DECLINED) {
        gh_conf_error(cf, "invalid hostname or wildcard \"%.*s\"",
            (int) key.len, (const char *) key.data);
        return GH_CONF_ERROR;
    }
    return rc == GH_OK ? NULL : "out of memory";
}


static const char *
gh_http_map_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_conf_node_t     *node = cf->node;
    gh_str_t           *args = node->args;
    gh_http_map_t      *map;
    gh_http_variable_t *var;
    gh_str_t            name;
    const char         *rv;

    map = gh_calloc(cf->arena, sizeof(*map));
    if (map == NULL
        || gh_array_init(&map->regex, cf->arena, 4,
               sizeof(gh_http_map_regex_t)) != GH_OK
        || (map->keys = gh_http_names_create(cf->arena)) == NULL)
    {
        return "out of memory";
    }

    rv = gh_http_compile_complex_value(cf, &args[1], &map->source);
    if (rv != NULL) {
        return rv;
    }

    if (args[2].len < 2 || args[2].data[0] != '$') {
        gh_conf_error(cf, "invalid variable name \"%.*s\"",
            (int) args[2].len, (const char *) args[2].data);
        return GH_CONF_ERROR;
    }
    name.data = args[2].data + 1;
    name.len = args[2].len - 1;

    for (gh_conf_node_t *c = node->children; c != NULL; c = c->next) {
        cf->node = c;
        rv = gh_http_map_entry(cf, map);
        cf->node = node;
        if (rv != NULL) {
            return rv;
        }
    }

    /* declared after the entries: a regex with named groups declares
     * variables too, which may move the registry under a kept pointer */
    var = gh_http_add_variable(cf, &name, GH_HTTP_VAR_CHANGEABLE
        | (map->volatile_ ? GH_HTTP_VAR_NOCACHEABLE : 0));
    if (var == NULL) {
        gh_conf_error(cf, "the duplicate \"%.*s\" variable", (int) name.len,
            (const char *) name.data);
        return GH_CONF_ERROR;
    }
    var->get = gh_http_map_variable;
    var->data = (uintptr_t) map;
    return NULL;
}


static const char *
gh_http_map_hash_param(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *arg = &cf->node->args[1];

    if (gh_parse_size(arg) <= 0) {
        gh_conf_error(cf, "invalid value \"%.*s\"", (int) arg->len,
            (const char *) arg->data);
        return GH_CONF_ERROR;
    }
    return NULL;
}
