/*
 * Small shared helpers: URL parameters, the token, fetch with the bearer
 * header and a time-out, number and time formatting in the viewer's locale and
 * time zone, DOM construction (text only: nothing from the network is ever
 * parsed as HTML).
 */
(function (DS) {
    'use strict';

    DS.params = new URLSearchParams(location.search);
    /* canvas text (map labels, timeline axes): the same stack as style.css */
    DS.FONT = '"Inter", "Noto Sans JP", "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic UI", "Lato", "DejaVu Sans", sans-serif';
    DS.token = DS.params.get('token') || null;

    /* The palettes used by the map, the legend, the lists and the timeline. */
    /* Class and protocol names as the server uses them (docs/classification.md, core/names.c);
     * a filter with any other value would get the connection closed (1008). */
    DS.CLASSES = ['scan', 'backscatter', 'udp_probe', 'icmp_probe', 'other'];
    DS.CLASS_COLOURS = {
        scan: '#ff4f6a',
        backscatter: '#3fb6ff',
        udp_probe: '#ffc23d',
        icmp_probe: '#3ee0a0',
        other: '#b68cff',
    };
    DS.PROTOS = ['tcp', 'udp', 'icmp', 'other'];
    DS.TOOL_COLOURS = {
        mirai: '#ff3d8b',
        zmap: '#2fe0c8',
        masscan: '#ff9a3d',
        nmap: '#9cff57',
    };
    /* Further tools get these in order of appearance (at most DS.MAX_TOOLS are remembered). */
    DS.TOOL_SPARE = ['#5ab0ff', '#ffe14d', '#d07bff', '#4dffa6', '#ff6b4d', '#6bd0ff', '#f7a8ff'];
    DS.TOOL_NONE = '#7d8ea8';
    DS.MAX_TOOLS = 16;

    const toolColours = new Map(Object.entries(DS.TOOL_COLOURS));
    let spare = 0;
    /* Colour of a tool fingerprint; null or an overflowing set gives the neutral colour. */
    DS.toolColour = function (tool) {
        if (!tool) return DS.TOOL_NONE;
        let c = toolColours.get(tool);
        if (c) return c;
        if (toolColours.size >= DS.MAX_TOOLS) return DS.TOOL_NONE;
        c = DS.TOOL_SPARE[spare++ % DS.TOOL_SPARE.length];
        toolColours.set(tool, c);
        return c;
    };

    /* fetch() with the bearer token (when the page has one), no caching, a 15 s time-out. */
    DS.apiFetch = function (path, opts) {
        const o = Object.assign({ cache: 'no-store', credentials: 'same-origin' }, opts || {});
        const headers = new Headers(o.headers || {});
        if (DS.token) headers.set('Authorization', 'Bearer ' + DS.token);
        o.headers = headers;
        if (!o.signal && typeof AbortSignal !== 'undefined' && AbortSignal.timeout) {
            o.signal = AbortSignal.timeout(15000);
        }
        return fetch(path, o);
    };

    /* RFC 3339 (microseconds allowed) or Unix seconds to milliseconds; NaN when unreadable. */
    DS.parseTime = function (v) {
        if (typeof v === 'number') return v * 1000;
        if (typeof v !== 'string') return NaN;
        return Date.parse(v);
    };

    const fmtCache = new Map();
    function cached(key, make) {
        let f = fmtCache.get(key);
        if (!f) {
            if (fmtCache.size > 32) fmtCache.clear();
            f = make();
            fmtCache.set(key, f);
        }
        return f;
    }

    /* 10342.5 -> "10.3K" (en) / "1.03万" (ja): three significant digits, legible at a distance. */
    DS.fmtCompact = function (n) {
        if (!Number.isFinite(n)) return '—';
        const lang = DS.i18n.lang;
        return cached('c' + lang, () =>
            new Intl.NumberFormat(lang, { notation: 'compact', maximumSignificantDigits: 3 })
        ).format(n);
    };

    DS.fmtInt = function (n) {
        if (!Number.isFinite(n)) return '—';
        const lang = DS.i18n.lang;
        return cached('i' + lang, () => new Intl.NumberFormat(lang, { maximumFractionDigits: 0 })).format(n);
    };

    DS.fmtPct = function (x, digits) {
        if (!Number.isFinite(x)) return '—';
        const lang = DS.i18n.lang;
        const d = digits === undefined ? 1 : digits;
        return cached('p' + lang + d, () =>
            new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: d, minimumFractionDigits: d })
        ).format(x);
    };

    /* Local wall-clock time, 24 h, in the viewer's time zone. */
    DS.fmtTime = function (ms, withSeconds) {
        const lang = DS.i18n.lang;
        const s = withSeconds !== false;
        return cached('t' + lang + s, () =>
            new Intl.DateTimeFormat(lang, {
                hour: '2-digit', minute: '2-digit', second: s ? '2-digit' : undefined, hourCycle: 'h23',
            })
        ).format(ms);
    };

    DS.fmtDate = function (ms) {
        const lang = DS.i18n.lang;
        return cached('d' + lang, () =>
            new Intl.DateTimeFormat(lang, { year: 'numeric', month: 'short', day: 'numeric', weekday: 'short' })
        ).format(ms);
    };

    /* The short name of the viewer's time zone ("JST", "GMT+9", "UTC"). */
    DS.tzName = function (ms) {
        const lang = DS.i18n.lang;
        const f = cached('z' + lang, () => new Intl.DateTimeFormat(lang, { timeZoneName: 'short' }));
        const p = f.formatToParts(ms).find((x) => x.type === 'timeZoneName');
        return p ? p.value : '';
    };

    DS.fmtAge = function (seconds) {
        if (!Number.isFinite(seconds)) return '—';
        if (seconds < 120) return DS.i18n.t('seconds_ago', { s: Math.round(seconds) });
        return DS.i18n.t('minutes_ago', { m: Math.round(seconds / 60) });
    };

    /* Element with a class and text content. */
    DS.el = function (tag, cls, text) {
        const e = document.createElement(tag);
        if (cls) e.className = cls;
        if (text !== undefined && text !== null) e.textContent = String(text);
        return e;
    };

    DS.isCc = function (cc) {
        return typeof cc === 'string' && /^[A-Z]{2}$/.test(cc);
    };

    /* Well-known darknet ports, shown next to the number in the top-ports list. */
    DS.SERVICES = {
        'tcp/21': 'ftp', 'tcp/22': 'ssh', 'tcp/23': 'telnet', 'tcp/25': 'smtp', 'tcp/53': 'dns',
        'udp/53': 'dns', 'tcp/80': 'http', 'tcp/81': 'http', 'udp/123': 'ntp', 'tcp/110': 'pop3',
        'tcp/135': 'msrpc', 'udp/137': 'netbios', 'tcp/139': 'netbios', 'tcp/143': 'imap',
        'udp/161': 'snmp', 'tcp/443': 'https', 'tcp/445': 'smb', 'udp/500': 'ike',
        'tcp/1433': 'mssql', 'udp/1900': 'ssdp', 'tcp/2323': 'telnet', 'tcp/3306': 'mysql',
        'tcp/3389': 'rdp', 'udp/5060': 'sip', 'tcp/5060': 'sip', 'tcp/5555': 'adb',
        'tcp/5900': 'vnc', 'tcp/6379': 'redis', 'tcp/7547': 'tr-069', 'tcp/8080': 'http-alt',
        'tcp/8443': 'https-alt', 'tcp/8728': 'mikrotik', 'tcp/9200': 'elastic',
        'tcp/11211': 'memcached', 'udp/11211': 'memcached', 'tcp/27017': 'mongodb',
        'tcp/37215': 'huawei', 'tcp/52869': 'upnp', 'udp/19': 'chargen', 'udp/389': 'cldap',
    };
})((window.DS = window.DS || {}));
