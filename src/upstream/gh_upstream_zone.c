/*
 * gh_upstream_zone.c: `zone NAME [SIZE]` in an upstream{} block: the
 * group's run-time state in shared memory, so that every worker sees the
 * failures, connection counts, weights and health the others see.
 *
 * The zone is laid out once per configuration, by the master, before the
 * workers fork (so plain pointers into it are the same in every process):
 *
 *   root -> group (one per upstream{} naming the zone; several groups
 *           may share one zone, as in nginx)
 *             -> peer entry: address, gh_upstream_peer_st_t, one
 *                gh_upstream_hc_st_t per health check of the group
 *
 * Each configured peer gets its entry there and peer->st / peer->hc point
 * at it.  Peers made later by `resolve` find theirs by address
 * (gh_upstream_peer_attach), so that every worker resolving the same
 * name shares one entry per address.
 *
 * A reload lays out a fresh zone (noreuse): the old workers keep the old
 * one until they exit, so the two configurations never mix.  The state
 * therefore starts over at a reload, as nginx's does.
 *
 * All reads and writes of the state happen under the zone's lock
 * (gh_upstream_lock), which is a robust process-shared mutex: a worker
 * dying inside does not wedge the others.
 */
#include "gh_upstream_int.h"

#include <stdio.h>

#define GH_UPSTREAM_ZONE_MAGIC 0x67687570u      /* "ghup" */

typedef struct gh_upstream_zone_peer_s  gh_upstream_zone_peer_t;
typedef struct gh_upstream_zone_group_s gh_upstream_zone_group_t;

struct gh_upstream_zone_peer_s {
    gh_upstream_zone_peer_t *next;          /* the group's, any order */
    struct sockaddr_storage  sockaddr;
    socklen_t                socklen;
    gh_upstream_peer_st_t    st;
    gh_upstream_hc_st_t      hc[];          /* group's nchecks */
};

struct gh_upstream_zone_group_s {
    gh_upstream_zone_group_t *next;
    gh_uint_t                 nchecks;
    gh_upstream_zone_peer_t  *peers;
};

typedef struct {
    uint32_t                  magic;
    gh_upstream_zone_group_t *groups;
} gh_upstream_zone_root_t;

static gh_int_t gh_upstream_zone_init(gh_shm_zone_t *zone, void *old_data);


const char *
gh_upstream_zone(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_upstream_srv_conf_t *us = cf->handler_data;
    gh_str_t               *args = gh_conf_args(cf);
    gh_shm_zone_t          *z;
    const char             *err = NULL;
    char                    name[64];
    ssize_t                 size = 0;

    if (us->zone != NULL) {
        return "is duplicate";
    }
    if (cf->node->nargs == 3) {
        size = gh_parse_size(&args[2]);
        if (size <= 0) {
            gh_conf_error(cf, "invalid zone size \"%.*s\"", (int) args[2].len,
                (const char *) args[2].data);
            return GH_CONF_ERROR;
        }
    }
    if (args[1].len == 0 || args[1].len >= sizeof(name)
        || memchr(args[1].data, '\0', args[1].len) != NULL)
    {
        gh_conf_error(cf, "invalid zone name \"%.*s\"", (int) args[1].len,
            (const char *) args[1].data);
        return GH_CONF_ERROR;
    }
    memcpy(name, args[1].data, args[1].len);
    name[args[1].len] = '\0';

    z = gh_shm_zone_add(&cf->cycle->shm_zones, cf->arena, name,
        (size_t) size, &gh_http_upstream_module, &err);
    if (z == NULL) {
        gh_conf_error(cf, "zone \"%s\" %s", name, err);
        return GH_CONF_ERROR;
    }
    z->init = gh_upstream_zone_init;
    z->noreuse = 1;
    /* init finds the groups to lay out through the main conf */
    z->data = cf->ctx->main_conf[gh_http_upstream_module.index];
    us->zone = z;
    return NULL;
}


static gh_upstream_zone_peer_t *
gh_upstream_zone_new_peer(gh_shm_zone_t *zone, gh_upstream_zone_group_t *g,
    const gh_upstream_srv_conf_t *us, const gh_upstream_peer_t *peer)
{
    gh_upstream_zone_peer_t *zp;
    size_t                   size;

    size = sizeof(*zp) + g->nchecks * sizeof(gh_upstream_hc_st_t);
    zp = gh_shm_alloc_locked(zone, size);
    if (zp == NULL) {
        return NULL;
    }
    memset(zp, 0, size);
    memcpy(&zp->sockaddr, &peer->sockaddr, peer->socklen);
    zp->socklen = peer->socklen;
    gh_upstream_st_reset(peer, &zp->st);
    for (gh_uint_t i = 0; i < g->nchecks; i++) {
        /* `mandatory`: out of service until its first probe passes */
        if (gh_upstream_hc_mandatory(us, i)) {
            zp->hc[i].checking = true;
            zp->st.hc_down |= (uint32_t) 1 << i;
            zp->st.hc_checking |= (uint32_t) 1 << i;
        }
    }
    zp->next = g->peers;
    g->peers = zp;
    return zp;
}


static gh_int_t
gh_upstream_zone_group(gh_shm_zone_t *zone, gh_upstream_zone_root_t *root,
    gh_upstream_srv_conf_t *us)
{
    gh_upstream_zone_group_t *g;
    gh_upstream_zone_peer_t  *zp;
    gh_upstream_peer_t       *peer;

    g = gh_shm_alloc_locked(zone, sizeof(*g));
    if (g == NULL) {
        return GH_ERROR;
    }
    memset(g, 0, sizeof(*g));
    g->nchecks = us->checks ? us->checks->nelts : 0;
    g->next = root->groups;
    root->groups = g;
    us->zone_group = g;

    for (int l = 0; l < 2; l++) {
        for (peer = l ? us->backup : us->peers; peer; peer = peer->next) {
            zp = gh_upstream_zone_new_peer(zone, g, us, peer);
            if (zp == NULL) {
                return GH_ERROR;
            }
            peer->st = &zp->st;
            peer->hc = zp->hc;
        }
    }
    return GH_OK;
}


static gh_int_t
gh_upstream_zone_init(gh_shm_zone_t *zone, void *old_data)
{
    gh_upstream_main_conf_t *umcf = zone->data;
    gh_upstream_zone_root_t *root;
    gh_upstream_srv_conf_t  *us;
    gh_int_t                 rc = GH_OK;

    gh_shm_lock(zone);
    root = gh_shm_alloc_locked(zone, sizeof(*root));
    if (root == NULL) {
        gh_shm_unlock(zone);
        return GH_ERROR;
    }
    root->magic = GH_UPSTREAM_ZONE_MAGIC;
    root->groups = NULL;
    for (size_t i = 0; i < umcf->upstreams.nelts && rc == GH_OK; i++) {
        us = *gh_array_at(&umcf->upstreams, gh_upstream_srv_conf_t *, i);
        if (us->zone == zone) {
            rc = gh_upstream_zone_group(zone, root, us);
        }
    }
    gh_shm_unlock(zone);
    if (rc != GH_OK) {
        gh_log_error(GH_LOG_EMERG, &gh_log_stderr, 0, "upstream zone \"%s\" "
            "is too small for its servers", zone->name);
        return GH_ERROR;
    }
    zone->data = root;
    return GH_OK;
}


void
gh_upstream_peer_attach(gh_upstream_srv_conf_t *us, gh_upstream_peer_t *peer)
{
    gh_upstream_zone_group_t *g = us->zone_group;
    gh_upstream_zone_peer_t  *zp;

    if (us->zone == NULL || g == NULL) {
        peer->st = NULL;
        peer->hc = NULL;
        gh_upstream_st_reset(peer, &peer->local);
        return;
    }
    gh_shm_lock(us->zone);
    for (zp = g->peers; zp; zp = zp->next) {
        if (zp->socklen == peer->socklen
            && memcmp(&zp->sockaddr, &peer->sockaddr, peer->socklen) == 0)
        {
            break;
        }
    }
    if (zp == NULL) {
        zp = gh_upstream_zone_new_peer(us->zone, g, us, peer);
    }
    gh_shm_unlock(us->zone);
    if (zp == NULL) {
        /* the zone is full: this worker keeps the peer's state alone */
        gh_log_error(GH_LOG_WARN, gh_cycle && gh_cycle->log ? gh_cycle->log
            : &gh_log_stderr, 0, "upstream zone \"%s\" is full, server %s "
            "keeps its state per worker", us->zone->name, peer->name);
        peer->st = NULL;
        peer->hc = NULL;
        gh_upstream_st_reset(peer, &peer->local);
        return;
    }
    peer->st = &zp->st;
    peer->hc = zp->hc;
    if (peer->sticky_id[0] == '\0' && us->sticky != NULL) {
        gh_upstream_sticky_id(peer);
    }
}
