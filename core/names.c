/* The shared vocabulary: names of classes, protocols, tools and reasons, and tool attribution. */
#include "core/core.h"

#include <string.h>

const char *const ds_class_names[DS_CLASS_N] = {"scan", "backscatter", "udp_probe", "icmp_probe",
                                                "other"};
const char *const ds_proto_names[DS_PROTO_N] = {"tcp", "udp", "icmp", "other"};
const char *const ds_tool_names[DS_TOOL_N] = {"mirai", "zmap", "masscan", "nmap"};
const char *const ds_ignored_names[DS_IGN_N] = {"non_ip", "not_darknet", "excluded"};
const char *const ds_malformed_names[DS_MAL_N] = {"bad_timestamp", "link_truncated", "ip_truncated",
                                                  "bad_ip_version", "bad_ip_header"};
const char *const ds_trunc_names[DS_TRUNC_N] = {"tcp", "udp", "icmp"};

int ds_name_find(const char *const *table, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(table[i], name) == 0)
            return i;
    }
    return -1;
}

int ds_tool_attribute(uint64_t pure_syns, const uint64_t matches[DS_TOOL_N])
{
    /* rarest chance match first */
    static const enum ds_tool order[DS_TOOL_N] = {DS_TOOL_MIRAI, DS_TOOL_MASSCAN, DS_TOOL_ZMAP,
                                                  DS_TOOL_NMAP};

    for (int i = 0; i < DS_TOOL_N; i++) {
        uint64_t m = matches[order[i]];
        if (m >= 3 && m * 10 >= pure_syns * 9)
            return (int)order[i];
    }
    return -1;
}
