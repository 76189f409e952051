/*
 * darkscope live page: wires the websocket (js/live.js), the map (js/map.js),
 * the timeline (js/timeline.js) and the panels (js/panels.js) together, and
 * owns the page state, the controls and the read-only debug object
 * window.darkscope.state that the browser tests read.
 *
 * Protocol: docs/websocket-protocol.md (hello, events, stats, alert,
 * subscribed from the server; subscribe from us).
 */
(function () {
    'use strict';

    const DS = window.DS;
    const t = (k, v) => DS.i18n.t(k, v);
    const $ = (id) => document.getElementById(id);
    const NODATA_AFTER_S = 3;
    const SENSOR_REFRESH_GAP_MS = 30000;

    const state = {
        connected: false,
        framesReceived: 0,
        eventsReceived: 0,
        skippedFrames: 0, /* sum of `skipped` over events frames */
        lastStats: null,
        topCountries: [],
        scope: undefined,
        bucketSeconds: 60,
        filters: {},
        lastSubscribeAt: 0,
        paused: false,
        colourMode: DS.params.get('colour') === 'tool' ? 'tool' : 'class',
        wall: false,
        lastBatchAt: 0,
        sensorFetchAt: 0,
        liveState: null,
    };

    DS.i18n.init();
    DS.i18n.apply();

    const map = new DS.WorldMap($('map-wrap'), $('map-base'), $('map-fx'));
    const panels = new DS.Panels();
    const timeline = new DS.Timeline($('timeline'), $('timeline-status'));

    /* ---- debug object for tests (read-only snapshot on every read) ---- */
    const debug = Object.freeze({
        get state() {
            return Object.freeze({
                connected: state.connected,
                framesReceived: state.framesReceived,
                eventsReceived: state.eventsReceived,
                arcsDrawn: map.arcsStarted,
                arcsAlive: map.arcsAlive,
                lastStats: state.lastStats,
                topCountries: state.topCountries.slice(),
                timelinePoints: timeline.points,
            });
        },
    });
    Object.defineProperty(window, 'darkscope', { value: debug, writable: false, configurable: false });

    /* ---- static data: world outlines, ISO codes, country names ---- */
    async function loadJson(path) {
        const r = await DS.apiFetch(path);
        if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
        return r.json();
    }

    Promise.all([
        loadJson('/vendor/world-atlas/countries-50m.json'),
        loadJson('/vendor/i18n-iso-countries/codes.json'),
        DS.i18n.loadCountryNames(),
    ]).then(([topo, codes]) => {
        map.setWorld(topo, codes);
        panels.renderStats();
    }).catch((e) => {
        /* The map still shows arcs on the ocean; say why the land is missing. */
        console.warn('darkscope: map data unavailable:', e && e.message ? e.message : e);
    });

    /* ---- the websocket ---- */
    const live = new DS.Live({
        onMessage,
        onState: (s) => {
            state.liveState = s;
            state.connected = live ? live.connected : false;
            renderConn();
        },
        onOpen: () => {
            state.connected = true;
        },
    });

    function onMessage(m) {
        if (m.v !== undefined && m.v !== 1) return;
        state.framesReceived++;
        switch (m.type) {
        case 'hello':
            onHello(m);
            break;
        case 'events':
            onEvents(m);
            break;
        case 'stats':
            onStats(m);
            break;
        case 'alert':
            panels.addAlert(m.alert);
            break;
        case 'subscribed':
            setFilters(m.filters && typeof m.filters === 'object' ? m.filters : {});
            break;
        default:
            break; /* fields and types may be added to version 1 */
        }
    }

    function onHello(m) {
        state.scope = m.scope === undefined ? null : m.scope;
        const bs = Number(m.bucket_seconds);
        if (Number.isFinite(bs) && bs > 0) state.bucketSeconds = bs;
        panels.bucketSeconds = state.bucketSeconds;
        map.setSensors(m.sensors);
        panels.setSensors(m.sensors);
        panels.setScope(state.scope);
        panels.renderAttribution(m.attribution, m.server);
        timeline.setBucketSeconds(state.bucketSeconds);
        timeline.start();
        if (Object.keys(state.filters).length > 0) {
            subscribe(state.filters);
        } else if (m.filters && typeof m.filters === 'object') {
            setFilters(m.filters);
        }
    }

    function onEvents(m) {
        const evs = Array.isArray(m.events) ? m.events : [];
        state.eventsReceived += evs.length;
        const sk = Number(m.skipped);
        if (Number.isFinite(sk) && sk > 0) state.skippedFrames += sk;
        const now = performance.now();
        const spread = state.lastBatchAt ? now - state.lastBatchAt : 200;
        state.lastBatchAt = now;
        map.addEvents(evs, spread);
        let unknownSensor = false;
        for (let i = 0; i < evs.length; i += Math.max(1, Math.floor(evs.length / 20))) {
            const ev = evs[i];
            if (!ev) continue;
            panels.noteTool(typeof ev.tool === 'string' ? ev.tool : null);
            if (typeof ev.sensor === 'string' && !map.hasSensor(ev.sensor)) unknownSensor = true;
        }
        if (unknownSensor) refreshSensors();
    }

    function onStats(m) {
        state.lastStats = Object.freeze(m);
        const top = m.top && Array.isArray(m.top.countries) ? m.top.countries : [];
        state.topCountries = top.slice(0, 10).map((x) => (x && DS.isCc(x.cc) ? x.cc : '??'));
        map.updateSensorStatus(m.sensors);
        panels.renderStats(m);
        const skipped = m.client && Number.isFinite(Number(m.client.skipped)) ? Number(m.client.skipped) : state.skippedFrames;
        panels.renderReceived(state.eventsReceived, skipped);
        if (Array.isArray(m.sensors) && m.sensors.some((s) => s && typeof s.name === 'string' && !map.hasSensor(s.name))) {
            refreshSensors();
        }
    }

    /* A sensor we have no location for: ask the REST API, at most every 30 s. */
    async function refreshSensors() {
        const now = Date.now();
        if (now - state.sensorFetchAt < SENSOR_REFRESH_GAP_MS) return;
        state.sensorFetchAt = now;
        try {
            const r = await DS.apiFetch('/api/v1/sensors');
            if (!r.ok) return;
            const j = await r.json();
            if (j && Array.isArray(j.sensors)) {
                map.setSensors(j.sensors);
                panels.setSensors(j.sensors);
            }
        } catch (e) {
            /* keep what we have; the next unknown sensor retries */
        }
    }

    /* ---- connection indicator ---- */
    function renderConn() {
        const s = state.liveState;
        const box = $('conn');
        const text = $('conn-text');
        if (!s) return;
        const now = Date.now();
        let st;
        let msg;
        if (s.phase === 'open') {
            const quiet = Math.floor((now - s.lastFrameAt) / 1000);
            if (quiet >= NODATA_AFTER_S) {
                st = 'stale';
                msg = t('conn_nodata', { s: quiet });
            } else {
                st = 'live';
                msg = t('conn_connected');
            }
        } else if (s.phase === 'connecting') {
            st = 'connecting';
            msg = t('conn_connecting');
        } else {
            const secs = Math.max(0, Math.ceil((s.retryAt - now) / 1000));
            if (s.unauthorized) {
                st = 'offline';
                msg = t('conn_unauthorized', { s: secs });
            } else if (s.failures >= 4 || navigator.onLine === false) {
                st = 'offline';
                msg = t('conn_offline', { s: secs });
            } else {
                st = 'reconnecting';
                msg = t('conn_reconnecting', { s: secs });
            }
        }
        box.dataset.state = st;
        /* numbers that stopped updating are dimmed and dated, never shown as if live */
        const stale = st !== 'live' && st !== 'connecting' ? 'stale' : 'fresh';
        if (document.body.dataset.data !== stale) document.body.dataset.data = stale;
        const asof = $('stats-asof');
        const last = state.lastStats ? DS.parseTime(state.lastStats.t) : NaN;
        asof.textContent = stale === 'stale' && Number.isFinite(last) ? t('as_of', { t: DS.fmtTime(last) }) : '';
        if (text.textContent !== msg) text.textContent = msg;
        box.title = s.closeCode ? 'close ' + s.closeCode + (s.closeReason ? ': ' + s.closeReason : '') : '';
        /* a close right after our subscribe means the server refused those filters */
        if (s.phase === 'waiting' && s.closeCode === 1008 && now - state.lastSubscribeAt < 5000 &&
            Object.keys(state.filters).length > 0) {
            setFilters({});
            $('f-error').textContent = t('f_refused', { r: s.closeReason || '1008' });
            $('filter-panel').hidden = false;
        }
    }

    /* ---- filters ---- */
    function subscribe(f) {
        state.lastSubscribeAt = Date.now();
        live.send({ type: 'subscribe', filters: f });
    }

    function setFilters(f) {
        const clean = {};
        for (const k of ['class', 'proto', 'port', 'cc', 'sensor']) {
            if (Array.isArray(f[k]) && f[k].length) clean[k] = f[k].slice(0, 16);
        }
        state.filters = clean;
        panels.fillFilterForm(clean);
        renderFilterBadge();
    }

    function renderFilterBadge() {
        const desc = DS.Panels.describeFilters(state.filters);
        const badge = $('badge-filtered');
        badge.textContent = desc ? t('filtered') + ': ' + desc : '';
        badge.hidden = !desc;
        const n = Object.keys(state.filters).length;
        $('filter-count').textContent = String(n);
        $('filter-count').hidden = n === 0;
    }

    $('filter-panel').addEventListener('submit', (e) => {
        e.preventDefault();
        const r = panels.readFilterForm();
        if (r.error) {
            $('f-error').textContent = r.error;
            return;
        }
        $('f-error').textContent = '';
        state.filters = r.filters;
        renderFilterBadge();
        subscribe(r.filters);
        toggleFilters(false);
    });
    $('f-clear').addEventListener('click', () => {
        $('f-error').textContent = '';
        setFilters({});
        subscribe({});
    });

    function toggleFilters(open) {
        const p = $('filter-panel');
        const show = open === undefined ? p.hidden : open;
        p.hidden = !show;
        $('btn-filters').setAttribute('aria-expanded', String(show));
        $('btn-filters').classList.toggle('on', show);
    }
    $('btn-filters').addEventListener('click', () => toggleFilters());

    /* ---- pause, colour mode ---- */
    function setPaused(p) {
        state.paused = p;
        map.setPaused(p);
        $('badge-paused').hidden = !p;
        $('btn-pause').classList.toggle('on', p);
        $('btn-pause-text').dataset.i18n = p ? 'resume' : 'pause';
        $('btn-pause-text').textContent = t(p ? 'resume' : 'pause');
    }
    $('btn-pause').addEventListener('click', () => setPaused(!state.paused));

    function setColourMode(m) {
        state.colourMode = m;
        map.setColourMode(m);
        panels.setColourMode(m);
        $('btn-colour-class').classList.toggle('on', m === 'class');
        $('btn-colour-tool').classList.toggle('on', m === 'tool');
    }
    $('btn-colour-class').addEventListener('click', () => setColourMode('class'));
    $('btn-colour-tool').addEventListener('click', () => setColourMode('tool'));

    /* ---- language ---- */
    function setUrlParam(k, v) {
        const p = new URLSearchParams(location.search);
        if (v === null) p.delete(k);
        else p.set(k, v);
        const q = p.toString();
        history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
    }

    function applyLanguage() {
        DS.i18n.apply();
        $('btn-lang-en').classList.toggle('on', DS.i18n.lang === 'en');
        $('btn-lang-ja').classList.toggle('on', DS.i18n.lang === 'ja');
        renderTimelineLegend();
        map.setLabels({ unknown: t('unknown') });
        panels.buildFilterChecks();
        panels.renderStats();
        panels.renderSensors();
        panels.renderTicker();
        panels.renderLegend();
        panels.renderReceived(state.eventsReceived, state.skippedFrames);
        setPaused(state.paused);
        renderFilterBadge();
        renderConn();
        timeline.redraw();
        tickClock();
    }
    function setLanguage(l) {
        DS.i18n.set(l);
        setUrlParam('lang', DS.i18n.lang);
        applyLanguage();
    }
    $('btn-lang-en').addEventListener('click', () => setLanguage('en'));
    $('btn-lang-ja').addEventListener('click', () => setLanguage('ja'));

    function renderTimelineLegend() {
        const box = $('tl-legend');
        box.replaceChildren();
        for (const c of DS.CLASSES) {
            const s = DS.el('span');
            const sw = DS.el('span', 'swatch');
            sw.style.backgroundColor = DS.CLASS_COLOURS[c];
            s.appendChild(sw);
            s.appendChild(document.createTextNode(t('class_' + c)));
            box.appendChild(s);
        }
        const s = DS.el('span');
        s.appendChild(DS.el('span', 'dash'));
        s.appendChild(document.createTextNode(t('tl_sources')));
        box.appendChild(s);
    }

    /* ---- wall mode ---- */
    let hideTimer = 0;
    function requestFs() {
        const el = document.documentElement;
        if (document.fullscreenElement || !document.fullscreenEnabled || !el.requestFullscreen) return;
        el.requestFullscreen({ navigationUI: 'hide' }).catch(() => {
            /* not allowed without a user gesture: the next click or key tries again */
        });
    }
    function setWall(on, gesture) {
        state.wall = on;
        document.body.classList.toggle('wall', on);
        $('btn-wall').classList.toggle('on', on);
        $('btn-wall-exit').hidden = true;
        if (on) {
            toggleFilters(false);
            if (gesture) requestFs();
        } else if (document.fullscreenElement && document.exitFullscreen) {
            document.exitFullscreen().catch(() => {});
        }
        setUrlParam('wall', on ? '1' : null);
    }
    $('btn-wall').addEventListener('click', () => setWall(!state.wall, true));
    $('btn-wall-exit').addEventListener('click', () => setWall(false, true));
    /* ?wall=1 cannot go fullscreen by itself: the first click or key on the screen does it. */
    const wallGesture = () => {
        if (state.wall) requestFs();
    };
    document.addEventListener('pointerdown', wallGesture);
    document.addEventListener('pointermove', () => {
        if (!state.wall) return;
        document.body.classList.remove('idle');
        $('btn-wall-exit').hidden = false;
        clearTimeout(hideTimer);
        hideTimer = setTimeout(() => {
            $('btn-wall-exit').hidden = true;
            document.body.classList.add('idle');
        }, 3000);
    });

    document.addEventListener('keydown', (e) => {
        if (e.target && (e.target.tagName === 'INPUT' || e.target.tagName === 'TEXTAREA')) {
            if (e.key === 'Escape') toggleFilters(false);
            return;
        }
        if (e.ctrlKey || e.metaKey || e.altKey) return;
        wallGesture();
        switch (e.key) {
        case 'p': case 'P': case ' ':
            setPaused(!state.paused);
            e.preventDefault();
            break;
        case 'w': case 'W':
            setWall(!state.wall, true);
            break;
        case 'l': case 'L':
            setLanguage(DS.i18n.other());
            break;
        case 'c': case 'C':
            setColourMode(state.colourMode === 'class' ? 'tool' : 'class');
            break;
        case 'f': case 'F':
            if (!state.wall) toggleFilters();
            break;
        case 'Escape':
            if (!$('filter-panel').hidden) toggleFilters(false);
            else if (state.wall) setWall(false, true);
            break;
        default:
            break;
        }
    });

    /* ---- once a second: clock, shading decay, "no data" indicator ---- */
    function tickClock() {
        const now = Date.now();
        $('clock').textContent = DS.fmtTime(now);
        $('clock').dateTime = new Date(now).toISOString();
        $('clock-date').textContent = DS.fmtDate(now);
        $('clock-tz').textContent = DS.tzName(now);
    }
    setInterval(() => {
        tickClock();
        map.tick();
        renderConn();
    }, 1000);

    /* ---- start ---- */
    setColourMode(state.colourMode);
    applyLanguage();
    panels.setScope(undefined);
    panels.renderStats();
    if (DS.params.get('wall') === '1') setWall(true, false);
    live.start();
})();
