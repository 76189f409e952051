/* Dropping root after the sources are open: switch to an unprivileged account and keep only
 * CAP_NET_RAW (libcap), so a lost interface can be reopened but nothing else of root remains. */
#include "core/core.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

int ds_user_resolve(const char *configured, struct ds_user *out, char *err, size_t errlen)
{
    const char *name = configured && *configured ? configured : "darkscope";
    struct passwd *pw = getpwnam(name);

    if (!pw && !(configured && *configured))
        pw = getpwnam(name = "nobody");
    if (!pw) {
        snprintf(err, errlen, "user: no account named \"%s\"", name);
        return -ENOENT;
    }
    snprintf(out->name, sizeof(out->name), "%s", pw->pw_name);
    out->uid = pw->pw_uid;
    out->gid = pw->pw_gid;
    return 0;
}

int ds_privs_drop(const struct ds_user *u, bool keep_net_raw, char *err, size_t errlen)
{
    cap_value_t raw = CAP_NET_RAW;
    cap_t caps = NULL;

    if (geteuid() != 0)
        return 0;
    if (u->uid == 0) {
        ds_log(DS_LOG_WARN, "privs", "configured to keep running as root (user \"%s\")", u->name);
        return 0;
    }
    if (keep_net_raw && prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0)
        goto fail_errno;
    if (setgroups(1, (const gid_t[]){(gid_t)u->gid}) < 0 || setgid((gid_t)u->gid) < 0 ||
        setuid((uid_t)u->uid) < 0)
        goto fail_errno;
    caps = cap_init();
    if (!caps)
        goto fail_errno;
    if (keep_net_raw && (cap_set_flag(caps, CAP_PERMITTED, 1, &raw, CAP_SET) < 0 ||
                         cap_set_flag(caps, CAP_EFFECTIVE, 1, &raw, CAP_SET) < 0))
        goto fail_errno;
    if (cap_set_proc(caps) < 0)
        goto fail_errno;
    cap_free(caps);
    caps = NULL;
    prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
    prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L);
    if (setuid(0) == 0 || seteuid(0) == 0) {
        snprintf(err, errlen, "privileges: root could be regained after switching to \"%s\"",
                 u->name);
        return -EPERM;
    }
    ds_log(DS_LOG_INFO, "privs", "running as %s (uid %u)%s", u->name, u->uid,
           keep_net_raw ? " with CAP_NET_RAW only" : " without capabilities");
    return 0;
fail_errno : {
    int e = errno;
    if (caps)
        cap_free(caps);
    snprintf(err, errlen, "privileges: cannot switch to \"%s\": %s", u->name, strerror(e));
    return -e;
}
}
