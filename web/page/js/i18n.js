/*
 * UI text in English and Japanese, and the country names (loaded from the
 * i18n-iso-countries package under /vendor/ as plain JSON).
 *
 * Language: ?lang=en|ja wins, then navigator.language, then English. Elements
 * carry data-i18n="key" (text) or data-i18n-title="key" (tooltip) and are
 * refreshed by DS.i18n.apply() whenever the language changes.
 */
(function (DS) {
    'use strict';

    const DICT = {
        en: {
            page_title: 'darkscope — darknet live map',
            brand_sub: 'darknet live map',
            conn_connecting: 'connecting…',
            conn_connected: 'live',
            conn_reconnecting: 'reconnecting in {s} s',
            conn_offline: 'offline — retrying in {s} s',
            conn_unauthorized: 'token refused — retrying in {s} s',
            conn_nodata: 'no data for {s} s',
            pause: 'Pause',
            resume: 'Resume',
            filters: 'Filters',
            color_by: 'Colour',
            color_class: 'class',
            color_tool: 'tool',
            wall: 'Wall',
            wall_exit: 'Exit wall mode',
            lang_title: 'Language: English / 日本語 (L)',
            pause_title: 'Freeze the map (P)',
            wall_title: 'Wall mode: fullscreen, controls hidden (W)',
            pps: 'packets / s',
            sources: 'unique sources',
            since: 'this bucket, since {t}',
            sampling: 'sampling ratio',
            eps: 'events / s',
            top_countries: 'Top countries',
            top_ports: 'Top ports',
            top_tools: 'Top tools',
            sensors: 'Sensors',
            timeline: 'Last 60 minutes',
            timeline_unavailable: 'timeline unavailable ({e})',
            timeline_empty: 'no history yet',
            alerts: 'Alerts',
            no_alerts: 'No alerts',
            alerts_need_soc: 'Alerts are shown to SOC tokens only',
            kind_infected: 'Infected host',
            kind_internal: 'Internal spread',
            kind_ddos_victim: 'DDoS victim',
            kind_early_warning: 'Early warning',
            class_scan: 'scan',
            class_backscatter: 'backscatter',
            class_udp_probe: 'UDP probe',
            class_icmp_probe: 'ICMP probe',
            class_other: 'other',
            tool_none: 'no fingerprint',
            tool_other: 'other tools',
            unknown: 'unknown',
            unknown_country: 'unknown',
            legend_colour: 'Arcs by {m}',
            legend_heat: 'Recent volume',
            paused: 'PAUSED',
            filtered: 'Filtered',
            f_class: 'Class',
            f_proto: 'Protocol',
            f_port: 'Ports',
            f_port_hint: 'e.g. 23, 2323, 445',
            f_cc: 'Countries',
            f_cc_hint: 'e.g. CN, US, ?? (unknown)',
            f_sensor: 'Sensors',
            f_apply: 'Apply',
            f_clear: 'Clear',
            f_bad_port: 'bad port: {v}',
            f_bad_cc: 'bad country code: {v}',
            f_too_many: 'at most 16 values per filter',
            f_refused: 'the server refused the filters: {r}',
            s_online: 'online',
            s_offline: 'offline',
            s_age: 'last bucket',
            s_drops: 'kernel drops',
            s_pps: 'pkt/s',
            s_none: 'no sensors',
            tl_packets: 'packets / bucket',
            tl_sources: 'sources',
            per_s: '/s',
            seconds_ago: '{s} s ago',
            minutes_ago: '{m} min ago',
            footer_map: 'Map: Natural Earth',
            footer_received: 'events received {n} · skipped {k}',
            waiting: 'waiting for data…',
            as_of: 'as of {t}',
            sampling_all: 'all',
        },
        ja: {
            page_title: 'darkscope — ダークネット ライブマップ',
            brand_sub: 'ダークネット ライブマップ',
            conn_connecting: '接続中…',
            conn_connected: 'ライブ',
            conn_reconnecting: '{s} 秒後に再接続',
            conn_offline: 'オフライン — {s} 秒後に再試行',
            conn_unauthorized: 'トークン拒否 — {s} 秒後に再試行',
            conn_nodata: '{s} 秒間データなし',
            pause: '一時停止',
            resume: '再開',
            filters: 'フィルタ',
            color_by: '色分け',
            color_class: '種別',
            color_tool: 'ツール',
            wall: 'ウォール',
            wall_exit: 'ウォール表示を終了',
            lang_title: '表示言語: English / 日本語 (L)',
            pause_title: '地図を一時停止 (P)',
            wall_title: 'ウォール表示: 全画面・操作部を隠す (W)',
            pps: 'パケット / 秒',
            sources: 'ユニーク送信元',
            since: '現バケット（{t} から）',
            sampling: 'サンプリング率',
            eps: 'イベント / 秒',
            top_countries: '国・地域 上位',
            top_ports: 'ポート 上位',
            top_tools: 'ツール 上位',
            sensors: 'センサー',
            timeline: '過去 60 分',
            timeline_unavailable: '時系列を取得できません ({e})',
            timeline_empty: '履歴はまだありません',
            alerts: 'アラート',
            no_alerts: 'アラートなし',
            alerts_need_soc: 'アラートは SOC トークンでのみ表示されます',
            kind_infected: '感染ホスト',
            kind_internal: '組織内感染拡大',
            kind_ddos_victim: 'DDoS 被害',
            kind_early_warning: '早期警戒',
            class_scan: 'スキャン',
            class_backscatter: 'バックスキャッタ',
            class_udp_probe: 'UDP プローブ',
            class_icmp_probe: 'ICMP プローブ',
            class_other: 'その他',
            tool_none: 'ツール不明',
            tool_other: 'その他のツール',
            unknown: '不明',
            unknown_country: '不明',
            legend_colour: '色: {m}',
            legend_heat: '直近の観測量',
            paused: '一時停止中',
            filtered: 'フィルタ中',
            f_class: '種別',
            f_proto: 'プロトコル',
            f_port: 'ポート',
            f_port_hint: '例: 23, 2323, 445',
            f_cc: '国・地域',
            f_cc_hint: '例: CN, US, ??（不明）',
            f_sensor: 'センサー',
            f_apply: '適用',
            f_clear: 'クリア',
            f_bad_port: '不正なポート: {v}',
            f_bad_cc: '不正な国コード: {v}',
            f_too_many: '1 つのフィルタに指定できる値は 16 個までです',
            f_refused: 'サーバーがフィルタを拒否しました: {r}',
            s_online: 'オンライン',
            s_offline: 'オフライン',
            s_age: '最終バケット',
            s_drops: 'カーネル破棄',
            s_pps: 'pkt/秒',
            s_none: 'センサーなし',
            tl_packets: 'パケット / バケット',
            tl_sources: '送信元',
            per_s: '/秒',
            seconds_ago: '{s} 秒前',
            minutes_ago: '{m} 分前',
            footer_map: '地図: Natural Earth',
            footer_received: '受信イベント {n} · 欠落 {k}',
            waiting: 'データ待ち…',
            as_of: '{t} 時点',
            sampling_all: '全数',
        },
    };

    /* Short English names where the package's first choice is the long official one. */
    const EN_SHORT = {
        CN: 'China', CZ: 'Czechia', GM: 'Gambia', IR: 'Iran', KR: 'South Korea',
        MK: 'North Macedonia', PS: 'Palestine', RU: 'Russia', TW: 'Taiwan', TZ: 'Tanzania',
        US: 'United States', CD: 'DR Congo', CG: 'Congo', CI: "Côte d'Ivoire",
        TR: 'Türkiye', GB: 'United Kingdom', AE: 'United Arab Emirates', NL: 'Netherlands',
    };
    const JA_SHORT = { CN: '中国', KP: '北朝鮮', KR: '韓国', US: 'アメリカ', RU: 'ロシア', GB: 'イギリス' };

    const LANGS = ['en', 'ja'];
    const names = { en: Object.create(null), ja: Object.create(null) };
    let lang = 'en';

    function pickLang() {
        const q = (DS.params.get('lang') || '').toLowerCase();
        if (LANGS.includes(q)) return q;
        const nav = (navigator.language || 'en').toLowerCase();
        return nav.startsWith('ja') ? 'ja' : 'en';
    }

    function t(key, vars) {
        let s = DICT[lang][key];
        if (s === undefined) s = DICT.en[key];
        if (s === undefined) return key;
        if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
        return s;
    }

    function apply(root) {
        const r = root || document;
        r.querySelectorAll('[data-i18n]').forEach((el) => {
            el.textContent = t(el.dataset.i18n);
        });
        r.querySelectorAll('[data-i18n-title]').forEach((el) => {
            el.title = t(el.dataset.i18nTitle);
        });
        r.querySelectorAll('[data-i18n-placeholder]').forEach((el) => {
            el.placeholder = t(el.dataset.i18nPlaceholder);
        });
        document.documentElement.lang = lang;
        document.title = t('page_title');
    }

    async function loadCountryNames() {
        const load = async (code) => {
            const r = await DS.apiFetch('/vendor/i18n-iso-countries/langs/' + code + '.json');
            if (!r.ok) throw new Error('country names ' + code + ': HTTP ' + r.status);
            const j = await r.json();
            const out = names[code];
            for (const cc of Object.keys(j.countries || {})) {
                const v = j.countries[cc];
                out[cc] = Array.isArray(v) ? v[0] : String(v);
            }
        };
        await Promise.all(LANGS.map(load));
        Object.assign(names.en, EN_SHORT);
        Object.assign(names.ja, JA_SHORT);
    }

    /* Name of a country code in the UI language; the code itself when unknown. */
    function country(cc) {
        if (!cc || cc === '??') return t('unknown_country');
        return names[lang][cc] || names.en[cc] || cc;
    }

    DS.i18n = {
        init() {
            lang = pickLang();
        },
        get lang() {
            return lang;
        },
        set(l) {
            if (LANGS.includes(l)) lang = l;
        },
        other() {
            return lang === 'ja' ? 'en' : 'ja';
        },
        t,
        apply,
        country,
        loadCountryNames,
    };
})((window.DS = window.DS || {}));
