/* plugin.c - finding and loading backend plug-ins (libdeissn-NAME.so.DEISSN_ABI) at run time.
 *
 * Where: $DEISSN_PLUGIN_DIR when set (tests, relocated installs), the directory that holds
 * libdeissn.so itself (build/lib in the tree, LIBDIR once installed), then the dynamic
 * loader's own search path. A loaded plug-in stays loaded for the life of the process:
 * libtorch, like most large C++ libraries, does not survive being unloaded. A search that
 * failed is remembered too, with its status and reasons, and answered again without a new
 * search (a dlopen of libtorch that fails can take a while, and deissn_has_torch() may be
 * asked often); only a change of $DEISSN_PLUGIN_DIR makes the library look again. */
#define _GNU_SOURCE /* dladdr */
#include "backends/model.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLUGINS 8

/* One name's outcome: loaded (backend), or failed (status, the message after "fn: ", and
 * the $DEISSN_PLUGIN_DIR it was searched with, "" for unset). Guarded by `lock`. */
static struct {
    char name[32];
    const dsn_backend *backend;
    int32_t status;
    char why[1024];
    char env[4096];
} plugins[MAX_PLUGINS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* What the library lends every plug-in. */
static const dsn_host host = {DSN_BACKEND_ABI, dsn_error};

/* The directory of the object that holds this file's code (libdeissn.so), or "" if unknown. */
static const char anchor = 0;
static void own_directory(char *dir, size_t size)
{
    Dl_info info;
    dir[0] = '\0';
    if (dladdr(&anchor, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        if (slash && (size_t)(slash - info.dli_fname) < size) {
            memcpy(dir, info.dli_fname, (size_t)(slash - info.dli_fname));
            dir[slash - info.dli_fname] = '\0';
        }
    }
}

/* Try one candidate; on failure append why to `why`. */
static void *try_open(const char *path, char *why, size_t size)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        size_t at = strlen(why);
        snprintf(why + at, size - at, "%s%.900s", at ? "; " : "", e ? e : path);
    }
    return h;
}

/* Search for and open the plug-in `name`; on failure return the status and put the reason
 * (the message without its leading "fn: ") in why[size]. */
static int32_t open_plugin(const char *name, const char *env, const dsn_backend **out,
                           char *why, size_t size)
{
    char file[64], path[4096], tried[2048] = "", dir[4096];
    snprintf(file, sizeof file, "libdeissn-%s.so.%d", name, DEISSN_ABI);
    void *h = NULL;
    if (*env) {
        snprintf(path, sizeof path, "%s/%s", env, file);
        h = try_open(path, tried, sizeof tried);
    }
    own_directory(dir, sizeof dir);
    if (!h && dir[0]) {
        snprintf(path, sizeof path, "%s/%s", dir, file);
        h = try_open(path, tried, sizeof tried);
    }
    if (!h) h = try_open(file, tried, sizeof tried);
    if (!h) {
        snprintf(why, size, "the %s backend plug-in (%s) cannot be loaded (looked in %s%s%sthe "
                 "system's library path): %s", name, file, *env ? "$DEISSN_PLUGIN_DIR, " : "",
                 dir, dir[0] ? ", " : "", tried);
        return DEISSN_E_UNSUPPORTED;
    }
    dsn_backend_entry_fn entry;
    void *sym = dlsym(h, DSN_BACKEND_ENTRY);
    memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer, as POSIX allows */
    if (!entry) {
        snprintf(why, size, "%s has no %s(): not a libdeissn plug-in", file, DSN_BACKEND_ENTRY);
        return DEISSN_E_UNSUPPORTED;
    }
    const dsn_backend *b = NULL;
    int32_t rc = entry(DSN_BACKEND_ABI, &host, &b);
    if (rc != DEISSN_OK) {
        /* The plug-in said why through host.error(), on this thread. */
        snprintf(why, size, "%s: %s", file, deissn_last_error());
        return rc < 0 ? rc : DEISSN_E_INTERNAL;
    }
    if (!b || b->abi != DSN_BACKEND_ABI || !b->load || !b->destroy || !b->alloc || !b->release ||
        !b->upload || !b->download || !b->copy || !b->forward || !b->update ||
        !b->first_nonfinite || !b->max_abs || !b->fixed_sum) {
        snprintf(why, size, "%s implements backend interface %u, this libdeissn (%s) needs %u "
                 "with every operation: rebuild the plug-in", file, b ? b->abi : 0,
                 DEISSN_VERSION_STRING, DSN_BACKEND_ABI);
        return DEISSN_E_UNSUPPORTED;
    }
    *out = b;
    return DEISSN_OK;
}

int32_t dsn_plugin_backend(const char *name, const dsn_backend **out, const char *fn)
{
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof plugins[0].name ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: backend '%.40s' is not a plug-in name "
                         "(lower-case letters, digits, '_')", fn, name);
    const char *env = getenv("DEISSN_PLUGIN_DIR");
    if (!env) env = "";
    pthread_mutex_lock(&lock);
    int i = 0, failed = -1;
    for (; i < MAX_PLUGINS && plugins[i].name[0]; i++) {
        if (strcmp(plugins[i].name, name) == 0) break;
        if (!plugins[i].backend && failed < 0) failed = i;
    }
    if (i == MAX_PLUGINS && failed >= 0) i = failed; /* forget another name's failure */
    int32_t rc;
    if (i == MAX_PLUGINS) {
        rc = dsn_error(DEISSN_E_UNSUPPORTED, "%s: more than %d backend plug-ins", fn, MAX_PLUGINS);
    } else if (strcmp(plugins[i].name, name) == 0 &&
               (plugins[i].backend || strcmp(plugins[i].env, env) == 0)) {
        rc = plugins[i].status; /* found before, or failed with this $DEISSN_PLUGIN_DIR */
    } else {
        memcpy(plugins[i].name, name, len + 1);
        snprintf(plugins[i].env, sizeof plugins[i].env, "%s", env);
        plugins[i].why[0] = '\0';
        plugins[i].status = open_plugin(name, plugins[i].env, &plugins[i].backend,
                                        plugins[i].why, sizeof plugins[i].why);
        rc = plugins[i].status;
    }
    if (rc == DEISSN_OK) *out = plugins[i].backend;
    else if (i < MAX_PLUGINS) dsn_error(rc, "%s: %s", fn, plugins[i].why);
    pthread_mutex_unlock(&lock);
    return rc;
}
