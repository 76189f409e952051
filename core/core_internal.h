/* core internals: the configuration table. Not included outside core/. */
#ifndef DS_CORE_INTERNAL_H
#define DS_CORE_INTERNAL_H

#include "core/core.h"

enum ds_cfg_type {
    DS_CFG_OBJECT,   /* a section; its keys are the entries below it */
    DS_CFG_STRING,   /* char * */
    DS_CFG_INT,      /* int64_t, bounds inclusive */
    DS_CFG_DOUBLE,   /* double, bounds inclusive */
    DS_CFG_BOOL,     /* bool */
    DS_CFG_DURATION, /* int64_t seconds; JSON integer or "90d"-style string */
    DS_CFG_CIDRS,    /* struct ds_prefixset */
    DS_CFG_STRINGS,  /* char *[max] with an unsigned count */
};

/* Extra validation of a string value: returns NULL when fine, or what was expected. */
typedef const char *(*ds_cfg_check_fn)(const char *value);

struct ds_cfg_key {
    const char *path;
    enum ds_cfg_type type;
    size_t offset;       /* of the value in struct ds_config */
    size_t count_offset; /* DS_CFG_STRINGS: of the unsigned count */
    unsigned max_items;  /* DS_CFG_STRINGS */
    double min, max;     /* DS_CFG_INT, DS_CFG_DOUBLE, DS_CFG_DURATION */
    const char *def;     /* default as text; NULL = none (or computed, see help) */
    ds_cfg_check_fn check;
    const char *help;
};

extern const struct ds_cfg_key ds_cfg_keys[];
extern const size_t ds_cfg_nkeys;

#endif
