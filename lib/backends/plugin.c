/* plugin.c - finding and loading backend plug-ins (libdeissn-NAME.so.DEISSN_ABI) at run time.
 *
 * Where: $DEISSN_PLUGIN_DIR when set (tests, relocated installs), the directory that holds
 * libdeissn.so itself (build/lib in the tree, LIBDIR once installed), then the dynamic
 * loader's own search path. A loaded plug-in stays loaded for the life of the process:
 * libtorch, like most large C++ libraries, does not survive being unloaded. */
#define _GNU_SOURCE /* dladdr */
#include "backends/model.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLUGINS 8

static struct {
    char name[32];
    const dsn_backend *backend;
} loaded[MAX_PLUGINS];
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

static int32_t open_plugin(const char *name, const dsn_backend **out, const char *fn)
{
    char file[64], path[4096], why[2048] = "", dir[4096];
    snprintf(file, sizeof file, "libdeissn-%s.so.%d", name, DEISSN_ABI);
    void *h = NULL;
    const char *env = getenv("DEISSN_PLUGIN_DIR");
    if (env && *env) {
        snprintf(path, sizeof path, "%s/%s", env, file);
        h = try_open(path, why, sizeof why);
    }
    own_directory(dir, sizeof dir);
    if (!h && dir[0]) {
        snprintf(path, sizeof path, "%s/%s", dir, file);
        h = try_open(path, why, sizeof why);
    }
    if (!h) h = try_open(file, why, sizeof why);
    if (!h)
        return dsn_error(DEISSN_E_UNSUPPORTED, "%s: the %s backend plug-in (%s) cannot be loaded "
                         "(looked in %s%s%sthe system's library path): %s", fn, name, file,
                         env && *env ? "$DEISSN_PLUGIN_DIR, " : "", dir[0] ? dir : "",
                         dir[0] ? ", " : "", why);
    dsn_backend_entry_fn entry;
    void *sym = dlsym(h, DSN_BACKEND_ENTRY);
    memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer, as POSIX allows */
    if (!entry)
        return dsn_error(DEISSN_E_UNSUPPORTED, "%s: %s has no %s(): not a libdeissn plug-in", fn,
                         file, DSN_BACKEND_ENTRY);
    const dsn_backend *b = NULL;
    int32_t rc = entry(DSN_BACKEND_ABI, &host, &b);
    if (rc != DEISSN_OK) return rc;
    if (!b || b->abi != DSN_BACKEND_ABI || !b->load || !b->destroy || !b->alloc || !b->release ||
        !b->upload || !b->download || !b->copy || !b->forward || !b->update ||
        !b->first_nonfinite || !b->max_abs || !b->fixed_sum)
        return dsn_error(DEISSN_E_UNSUPPORTED, "%s: %s implements backend interface %u, this "
                         "libdeissn (%s) needs %u with every operation: rebuild the plug-in", fn,
                         file, b ? b->abi : 0, DEISSN_VERSION_STRING, DSN_BACKEND_ABI);
    *out = b;
    return DEISSN_OK;
}

int32_t dsn_plugin_backend(const char *name, const dsn_backend **out, const char *fn)
{
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof loaded[0].name || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: backend '%.40s' is not a plug-in name "
                         "(lower-case letters, digits, '_')", fn, name);
    pthread_mutex_lock(&lock);
    int32_t rc = DEISSN_OK;
    int i = 0;
    for (; i < MAX_PLUGINS && loaded[i].backend; i++)
        if (strcmp(loaded[i].name, name) == 0) break;
    if (i < MAX_PLUGINS && loaded[i].backend) {
        *out = loaded[i].backend;
    } else if (i == MAX_PLUGINS) {
        rc = dsn_error(DEISSN_E_UNSUPPORTED, "%s: more than %d backend plug-ins", fn, MAX_PLUGINS);
    } else {
        rc = open_plugin(name, out, fn);
        if (rc == DEISSN_OK) {
            memcpy(loaded[i].name, name, len + 1);
            loaded[i].backend = *out;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
