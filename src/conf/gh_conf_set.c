/*
 * gh_conf_set.c: generic directive setters.
 *
 * Each writes args[1] into the field at cmd->offset of the conf structure
 * it is given.  The field must still hold its UNSET value (see gh_core.h),
 * which `create` put there: a second occurrence of the directive at the
 * same level is a mistake nginx reports as "is duplicate", and so do we.
 * gh_conf_set_str_array is the exception: repeating it appends.
 *
 * A setter returns NULL or a message; the dispatcher prints it as
 *   "<name>" directive <message> in file:line
 * Messages quoting the value are formatted into the conf arena.
 */
#include <stdio.h>

#include "gh_conf.h"

/* the bad value is quoted up to this length */
#define GH_CONF_VALUE_SHOWN 256

#define gh_conf_field(conf, cmd, type) \
    ((type *) (void *) ((uint8_t *) (conf) + (cmd)->offset))


/* `invalid value "X"` plus an optional explanation; falls back to a
 * static text when the arena budget is exhausted */
static const char *
gh_conf_invalid(gh_conf_t *cf, const gh_str_t *value, const char *why)
{
    char   *msg;
    size_t  n;
    int     len;

    len = (int) gh_min(value->len, (size_t) GH_CONF_VALUE_SHOWN);
    n = sizeof("invalid value \"\", ") + (size_t) len + strlen(why);
    msg = gh_alloc_unaligned(cf->arena, n);
    if (msg == NULL) {
        return "invalid value";
    }
    snprintf(msg, n, "invalid value \"%.*s\"%s%s", len,
        (const char *) value->data, why[0] ? ", " : "", why);
    return msg;
}


/* a setter reached without a conf structure is a bug in a module table
 * (wrong .conf level); say so instead of writing through NULL */
#define GH_CONF_CHECK_CONF(conf) \
    do { if ((conf) == NULL) return "has no configuration at this level"; } \
    while (0)


const char *
gh_conf_set_flag(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *value = &gh_conf_args(cf)[1];
    int      *fp;

    GH_CONF_CHECK_CONF(conf);
    fp = gh_conf_field(conf, cmd, int);
    if (*fp != GH_UNSET) {
        return "is duplicate";
    }

    if (gh_str_caseeq_c(value, "on")) {
        *fp = 1;
    } else if (gh_str_caseeq_c(value, "off")) {
        *fp = 0;
    } else {
        return gh_conf_invalid(cf, value, "it must be \"on\" or \"off\"");
    }
    return NULL;
}


const char *
gh_conf_set_num(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *value = &gh_conf_args(cf)[1];
    gh_int_t *np, n;

    GH_CONF_CHECK_CONF(conf);
    np = gh_conf_field(conf, cmd, gh_int_t);
    if (*np != GH_UNSET) {
        return "is duplicate";
    }

    n = gh_atoi(value->data, value->len);
    if (n < 0) {
        return gh_conf_invalid(cf, value, "");
    }
    *np = n;
    return NULL;
}


const char *
gh_conf_set_size(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *value = &gh_conf_args(cf)[1];
    size_t   *sp;
    ssize_t   n;

    GH_CONF_CHECK_CONF(conf);
    sp = gh_conf_field(conf, cmd, size_t);
    if (*sp != GH_UNSET_SIZE) {
        return "is duplicate";
    }

    n = gh_parse_size(value);
    if (n < 0) {
        return gh_conf_invalid(cf, value, "");
    }
    *sp = (size_t) n;
    return NULL;
}


const char *
gh_conf_set_off(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *value = &gh_conf_args(cf)[1];
    off_t    *op;
    ssize_t   n;

    GH_CONF_CHECK_CONF(conf);
    op = gh_conf_field(conf, cmd, off_t);
    if (*op != (off_t) GH_UNSET) {
        return "is duplicate";
    }

    n = gh_parse_size(value);
    if (n < 0) {
        return gh_conf_invalid(cf, value, "");
    }
    *op = (off_t) n;
    return NULL;
}


const char *
gh_conf_set_msec(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t  *value = &gh_conf_args(cf)[1];
    gh_msec_t *mp, n;

    GH_CONF_CHECK_CONF(conf);
    mp = gh_conf_field(conf, cmd, gh_msec_t);
    if (*mp != GH_UNSET_MSEC) {
        return "is duplicate";
    }

    n = gh_parse_time(value);
    if (n < 0) {
        return gh_conf_invalid(cf, value, "");
    }
    *mp = n;
    return NULL;
}


const char *
gh_conf_set_sec(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t  *value = &gh_conf_args(cf)[1];
    gh_int_t  *sp;
    gh_msec_t  n;

    GH_CONF_CHECK_CONF(conf);
    sp = gh_conf_field(conf, cmd, gh_int_t);
    if (*sp != GH_UNSET) {
        return "is duplicate";
    }

    /* nginx refuses "ms" where it wants seconds; a time that is not a
     * whole number of seconds is refused here for the same reason */
    n = gh_parse_time(value);
    if (n < 0 || n % 1000 != 0) {
        return gh_conf_invalid(cf, value, "");
    }
    *sp = (gh_int_t) (n / 1000);
    return NULL;
}


const char *
gh_conf_set_str(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *sp;

    GH_CONF_CHECK_CONF(conf);
    sp = gh_conf_field(conf, cmd, gh_str_t);
    if (sp->data != NULL) {
        return "is duplicate";
    }

    /* words live in cf->arena as long as the configuration: no copy */
    *sp = gh_conf_args(cf)[1];
    return NULL;
}


const char *
gh_conf_set_str_array(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_array_t **ap;
    gh_str_t    *s;
    size_t       i;

    GH_CONF_CHECK_CONF(conf);
    ap = gh_conf_field(conf, cmd, gh_array_t *);
    if (*ap == NULL || *ap == GH_UNSET_PTR) {
        *ap = gh_array_create(cf->arena, 4, sizeof(gh_str_t));
        if (*ap == NULL) {
            return "cannot be stored: not enough memory";
        }
    }

    /* every argument, so the setter serves TAKE1 and 1MORE alike */
    for (i = 1; i < cf->node->nargs; i++) {
        s = gh_array_push(*ap);
        if (s == NULL) {
            return "cannot be stored: not enough memory";
        }
        *s = gh_conf_args(cf)[i];
    }
    return NULL;
}


const char *
gh_conf_set_enum(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    const gh_conf_enum_t *e;
    gh_str_t             *value = &gh_conf_args(cf)[1];
    gh_uint_t            *up;

    GH_CONF_CHECK_CONF(conf);
    up = gh_conf_field(conf, cmd, gh_uint_t);
    if (*up != (gh_uint_t) -1) {
        return "is duplicate";
    }

    for (e = cmd->post; e != NULL && e->name != NULL; e++) {
        if (gh_str_caseeq_c(value, e->name)) {
            *up = e->value;
            return NULL;
        }
    }
    return gh_conf_invalid(cf, value, "");
}


const char *
gh_conf_set_path(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *value = &gh_conf_args(cf)[1];
    char    **pp;

    GH_CONF_CHECK_CONF(conf);
    pp = gh_conf_field(conf, cmd, char *);
    if (*pp != NULL && *pp != GH_UNSET_PTR) {
        return "is duplicate";
    }
    if (value->len == 0) {
        return gh_conf_invalid(cf, value, "");
    }

    *pp = gh_conf_full_name(cf, value, false);
    if (*pp == NULL) {
        return "cannot be stored: not enough memory";
    }
    return NULL;
}
