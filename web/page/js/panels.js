/*
 * Everything around the map that is plain DOM: counters, top lists, sensor
 * health, the alert ticker, the legend, the footer, the filter form.
 *
 * Render functions take the latest protocol message and rebuild their small
 * lists (at most 10 rows each); text goes in through textContent only. The
 * last message of each kind is kept so a language switch can re-render.
 */
(function (DS) {
    'use strict';

    const MAX_ALERTS = 50;
    const MAX_FILTER_VALUES = 16;
    const t = (k, v) => DS.i18n.t(k, v);
    const $ = (id) => document.getElementById(id);

    function num(v) {
        const n = Number(v);
        return v !== null && v !== undefined && Number.isFinite(n) ? n : NaN;
    }

    function setCounter(id, value, text) {
        const e = $(id);
        e.dataset.value = Number.isFinite(value) ? String(value) : '';
        e.textContent = text;
    }

    function rate(n) {
        if (!Number.isFinite(n)) return '—';
        return (n < 10 ? DS.fmtCompact(Math.round(n * 10) / 10) : DS.fmtCompact(n)) + t('per_s');
    }

    function bar(share, colour) {
        const b = DS.el('span', 'bar');
        const f = DS.el('span', 'bar-fill');
        f.style.width = Math.max(0, Math.min(100, share * 100)).toFixed(1) + '%';
        if (colour) f.style.backgroundColor = colour;
        b.appendChild(f);
        return b;
    }

    /* An alert as the aggregator writes it (docs/alerting.md): kind, host (or port for early
     * warnings), org_name, severity, t; other shapes are read heuristically. */
    function alertParts(a) {
        if (typeof a.kind === 'string' && ['infected', 'internal', 'ddos_victim', 'early_warning'].includes(a.kind)) {
            const time = DS.parseTime(a.t || a.bucket);
            const what = a.kind === 'early_warning'
                ? `${a.port || ''} ×${Number.isFinite(a.ratio) ? a.ratio.toFixed(1) : '?'}`
                : [a.host, a.org_name || a.org, a.tool].filter(Boolean).join(' · ');
            return {
                time,
                severity: String(a.severity || '').toLowerCase(),
                title: t('kind_' + a.kind),
                subject: String(what).slice(0, 80),
            };
        }
        const pick = (...keys) => {
            for (const k of keys) {
                const v = a[k];
                if (typeof v === 'string' && v) return v;
                if (typeof v === 'number' && Number.isFinite(v)) return String(v);
            }
            return '';
        };
        let time = NaN;
        for (const k of ['t', 'time', 'ts', 'at', 'created', 'first_seen', 'start']) {
            if (a[k] !== undefined) {
                time = DS.parseTime(a[k]);
                if (Number.isFinite(time)) break;
            }
        }
        const severity = pick('severity', 'level', 'priority').toLowerCase();
        let title = pick('title', 'summary', 'message', 'msg', 'rule', 'kind', 'type', 'name');
        const subject = pick('subscriber', 'victim', 'target', 'prefix', 'network', 'src', 'source', 'ip', 'cc');
        if (!title) {
            try {
                title = JSON.stringify(a);
            } catch (e) {
                title = String(a);
            }
        }
        return { time, severity, title: title.slice(0, 200), subject: subject.slice(0, 80) };
    }

    class Panels {
        constructor() {
            this.stats = null;
            this.sensorsHello = []; /* from hello or /api/v1/sensors */
            this.sensorDrops = new Map(); /* name -> kernel_dropped last seen (bounded by sensors) */
            this.alerts = [];
            this.scope = undefined;
            this.colourMode = 'class';
            this.toolsSeen = []; /* most recent first, at most 8 */
            this._buildHeatBar();
        }

        _buildHeatBar() {
            const c = document.createElement('canvas');
            c.width = 120;
            c.height = 8;
            const ctx = c.getContext('2d');
            const lut = DS.HEAT_LUT;
            for (let x = 0; x < c.width; x++) {
                ctx.fillStyle = lut[Math.floor((x / c.width) * lut.length)];
                ctx.fillRect(x, 0, 1, c.height);
            }
            $('heat-bar').appendChild(c);
        }

        /* ---- counters and top lists (stats) ---- */

        renderStats(s) {
            if (s) this.stats = s;
            s = this.stats;
            if (!s) {
                this._topCountries(null);
                this._topPorts(null);
                this._topTools(null);
                this.renderLegend();
                return;
            }
            const pps = num(s.packets_per_second);
            setCounter('c-pps', pps, Number.isFinite(pps) ? DS.fmtCompact(pps) : '—');
            const src = num(s.bucket && s.bucket.sources);
            setCounter('c-sources', src, Number.isFinite(src) ? (src < 100000 ? DS.fmtInt(src) : DS.fmtCompact(src)) : '—');
            const bstart = DS.parseTime(s.bucket && s.bucket.start);
            $('c-sources-since').textContent = Number.isFinite(bstart) ? t('since', { t: DS.fmtTime(bstart, false) }) : '';
            const eps = num(s.events_per_second);
            setCounter('c-eps', eps, Number.isFinite(eps) ? (eps < 100 ? DS.fmtCompact(Math.round(eps * 10) / 10) : DS.fmtCompact(eps)) : '—');
            const sr = num(s.sampling_ratio);
            const srEl = $('c-sampling');
            srEl.dataset.value = Number.isFinite(sr) ? String(sr) : '';
            srEl.replaceChildren();
            if (Number.isFinite(sr) && sr > 0) {
                srEl.appendChild(document.createTextNode(sr >= 0.9995 ? '100%' : DS.fmtPct(sr, sr < 0.1 ? 2 : 1)));
                if (sr < 0.9995) srEl.appendChild(DS.el('span', 'c-sub', '1 : ' + DS.fmtInt(1 / sr)));
                else srEl.appendChild(DS.el('span', 'c-sub', t('sampling_all')));
            } else {
                srEl.textContent = '—';
            }
            this._classBar(s.by_class, pps);
            this._topCountries(s.top && s.top.countries, pps);
            this._topPorts(s.top && s.top.ports, pps);
            this._topTools(s.top && s.top.tools, pps);
            this.renderSensors();
            this.renderLegend();
        }

        _classBar(bc, pps) {
            const el = $('c-classbar');
            el.replaceChildren();
            if (!bc || typeof bc !== 'object') return;
            let total = 0;
            for (const c of DS.CLASSES) total += Math.max(0, num(bc[c]) || 0);
            if (!(total > 0)) return;
            for (const c of DS.CLASSES) {
                const v = Math.max(0, num(bc[c]) || 0);
                if (!v) continue;
                const seg = DS.el('span', 'classbar-seg');
                seg.style.flexGrow = String(v / total);
                seg.style.backgroundColor = DS.CLASS_COLOURS[c];
                seg.title = t('class_' + c) + ' ' + rate(v);
                el.appendChild(seg);
            }
        }

        _topCountries(list, pps) {
            const ol = $('top-countries');
            ol.replaceChildren();
            if (!Array.isArray(list) || list.length === 0) {
                ol.appendChild(DS.el('li', 'empty', t('waiting')));
                return;
            }
            const max = Math.max(...list.slice(0, 10).map((x) => num(x && x.share) || 0), 0.0001);
            list.slice(0, 10).forEach((x, i) => {
                if (!x) return;
                const cc = DS.isCc(x.cc) ? x.cc : '??';
                const share = num(x.share);
                const li = DS.el('li', 'row');
                li.dataset.cc = cc;
                li.appendChild(DS.el('span', 'rank', i + 1));
                const name = DS.el('span', 'name');
                name.appendChild(DS.el('span', 'cc', cc));
                name.appendChild(DS.el('span', 'label', DS.i18n.country(cc)));
                li.appendChild(name);
                li.appendChild(bar((share || 0) / max));
                li.appendChild(DS.el('span', 'share', DS.fmtPct(share)));
                li.appendChild(DS.el('span', 'rate', rate(share * pps)));
                ol.appendChild(li);
            });
        }

        _topPorts(list, pps) {
            const ol = $('top-ports');
            ol.replaceChildren();
            if (!Array.isArray(list) || list.length === 0) {
                ol.appendChild(DS.el('li', 'empty', t('waiting')));
                return;
            }
            list.slice(0, 10).forEach((x, i) => {
                if (!x) return;
                const proto = typeof x.proto === 'string' ? x.proto : '';
                const port = num(x.port);
                const li = DS.el('li', 'row');
                li.dataset.port = proto + '/' + port;
                li.appendChild(DS.el('span', 'rank', i + 1));
                const name = DS.el('span', 'name');
                const isIcmp = proto === 'icmp' || proto === 'icmp6';
                name.appendChild(DS.el('span', 'port', isIcmp ? proto.toUpperCase() : String(port)));
                if (!isIcmp) name.appendChild(DS.el('span', 'proto', proto));
                const svc = DS.SERVICES[proto + '/' + port];
                if (svc) name.appendChild(DS.el('span', 'svc', svc));
                li.appendChild(name);
                li.appendChild(DS.el('span', 'share', DS.fmtPct(num(x.share))));
                ol.appendChild(li);
            });
        }

        _topTools(list, pps) {
            const ol = $('top-tools');
            ol.replaceChildren();
            if (!Array.isArray(list) || list.length === 0) {
                ol.appendChild(DS.el('li', 'empty', t('waiting')));
                return;
            }
            list.slice(0, 10).forEach((x, i) => {
                if (!x) return;
                const tool = typeof x.tool === 'string' && x.tool ? x.tool : null;
                const li = DS.el('li', 'row');
                li.dataset.tool = tool || '';
                li.appendChild(DS.el('span', 'rank', i + 1));
                const name = DS.el('span', 'name');
                const sw = DS.el('span', 'swatch');
                sw.style.backgroundColor = DS.toolColour(tool);
                name.appendChild(sw);
                name.appendChild(DS.el('span', 'label', tool || t('tool_none')));
                li.appendChild(name);
                li.appendChild(DS.el('span', 'share', DS.fmtPct(num(x.share))));
                ol.appendChild(li);
            });
        }

        /* ---- sensors ---- */

        setSensors(list) {
            this.sensorsHello = Array.isArray(list) ? list.slice(0, 64) : [];
            this.renderSensors();
            this._buildSensorChecks();
        }

        renderSensors() {
            const tb = $('sensors');
            const labels = new Map(this.sensorsHello.map((s) => [s.name, s.label || s.name]));
            let rows = this.stats && Array.isArray(this.stats.sensors) ? this.stats.sensors : this.sensorsHello;
            rows = rows.slice(0, 64);
            tb.replaceChildren();
            if (rows.length === 0) {
                const tr = DS.el('tr', 'empty');
                const td = DS.el('td', null, t('s_none'));
                td.colSpan = 5;
                tr.appendChild(td);
                tb.appendChild(tr);
                return;
            }
            const bucket = this.bucketSeconds || 60;
            for (const s of rows) {
                if (!s || typeof s.name !== 'string') continue;
                const tr = DS.el('tr', s.online ? 'on' : 'off');
                tr.dataset.sensor = s.name;
                const dot = DS.el('td', 'dotcell');
                const d = DS.el('span', 'dot');
                d.title = s.online ? t('s_online') : t('s_offline');
                dot.appendChild(d);
                tr.appendChild(dot);
                const nameTd = DS.el('td', 'sname');
                nameTd.appendChild(DS.el('span', 'slabel', labels.get(s.name) || s.name));
                if ((labels.get(s.name) || s.name) !== s.name) nameTd.appendChild(DS.el('span', 'sid', s.name));
                tr.appendChild(nameTd);
                const pps = num(s.packets_per_second);
                tr.appendChild(DS.el('td', 'num', Number.isFinite(pps) ? DS.fmtCompact(pps) : '—'));
                const age = num(s.last_bucket_age);
                const ageTd = DS.el('td', 'num', DS.fmtAge(age));
                if (Number.isFinite(age) && age > 3 * bucket) ageTd.classList.add('warn');
                tr.appendChild(ageTd);
                const drops = num(s.kernel_dropped);
                const dropTd = DS.el('td', 'num', Number.isFinite(drops) ? DS.fmtCompact(drops) : '—');
                const prev = this.sensorDrops.get(s.name);
                if (drops > 0) dropTd.classList.add('warn');
                if (prev !== undefined && drops > prev) dropTd.classList.add('rising');
                if (Number.isFinite(drops) && (this.sensorDrops.has(s.name) || this.sensorDrops.size < 64)) {
                    this.sensorDrops.set(s.name, drops);
                }
                tr.appendChild(dropTd);
                tb.appendChild(tr);
            }
        }

        /* ---- legend ---- */

        setColourMode(m) {
            this.colourMode = m;
            this.renderLegend();
        }

        noteTool(tool) {
            const k = tool || '';
            const i = this.toolsSeen.indexOf(k);
            if (i === 0) return;
            if (i > 0) this.toolsSeen.splice(i, 1);
            this.toolsSeen.unshift(k);
            if (this.toolsSeen.length > 8) this.toolsSeen.length = 8;
        }

        renderLegend() {
            const ul = $('legend-items');
            ul.replaceChildren();
            const item = (colour, label, value) => {
                const li = DS.el('li');
                const sw = DS.el('span', 'swatch');
                sw.style.backgroundColor = colour;
                li.appendChild(sw);
                li.appendChild(DS.el('span', 'l-label', label));
                if (value) li.appendChild(DS.el('span', 'l-value', value));
                ul.appendChild(li);
            };
            if (this.colourMode === 'tool') {
                $('legend-title').textContent = t('legend_colour', { m: t('color_tool') });
                const tools = new Set(Object.keys(DS.TOOL_COLOURS));
                for (const x of this.toolsSeen) tools.add(x);
                const top = this.stats && this.stats.top && Array.isArray(this.stats.top.tools) ? this.stats.top.tools : [];
                const shares = new Map(top.map((x) => [x && x.tool ? x.tool : '', num(x && x.share)]));
                const list = [...tools].filter((x) => x !== '').slice(0, 8);
                for (const x of list) item(DS.toolColour(x), x, shares.has(x) ? DS.fmtPct(shares.get(x)) : '');
                item(DS.TOOL_NONE, t('tool_none'), shares.has('') ? DS.fmtPct(shares.get('')) : '');
            } else {
                $('legend-title').textContent = t('legend_colour', { m: t('color_class') });
                const bc = this.stats && this.stats.by_class ? this.stats.by_class : {};
                for (const c of DS.CLASSES) {
                    const v = num(bc[c]);
                    item(DS.CLASS_COLOURS[c], t('class_' + c), Number.isFinite(v) ? rate(v) : '');
                }
            }
        }

        /* ---- alert ticker ---- */

        setScope(scope) {
            this.scope = scope;
            this.renderTicker();
        }

        addAlert(a) {
            if (!a || typeof a !== 'object') return;
            const p = alertParts(a);
            p.receivedAt = Date.now();
            this.alerts.unshift(p);
            if (this.alerts.length > MAX_ALERTS) this.alerts.length = MAX_ALERTS;
            this.renderTicker();
        }

        renderTicker() {
            const box = $('ticker');
            box.replaceChildren();
            if (this.alerts.length === 0) {
                box.dataset.state = 'quiet';
                const soc = this.scope === 'soc' || this.scope === 'admin';
                const q = DS.el('span', 'quiet');
                q.appendChild(DS.el('span', 'quiet-dot'));
                q.appendChild(DS.el('span', null, t('no_alerts')));
                box.appendChild(q);
                if (!soc && this.scope !== undefined) box.appendChild(DS.el('span', 'quiet-note', t('alerts_need_soc')));
                return;
            }
            box.dataset.state = 'alerts';
            const now = Date.now();
            for (const p of this.alerts.slice(0, 12)) {
                const it = DS.el('span', 'alert');
                if (now - p.receivedAt < 15000) it.classList.add('fresh');
                if (p.severity) it.dataset.severity = p.severity;
                const tm = Number.isFinite(p.time) ? p.time : p.receivedAt;
                it.appendChild(DS.el('time', 'a-time', DS.fmtTime(tm)));
                if (p.severity) it.appendChild(DS.el('span', 'a-sev', p.severity));
                it.appendChild(DS.el('span', 'a-title', p.title));
                if (p.subject && p.subject !== p.title) it.appendChild(DS.el('span', 'a-subj', p.subject));
                box.appendChild(it);
            }
        }

        /* ---- footer ---- */

        renderAttribution(list, server) {
            const box = $('attribution');
            box.replaceChildren();
            for (const a of Array.isArray(list) ? list.slice(0, 8) : []) {
                if (!a || typeof a.text !== 'string') continue;
                let href = null;
                try {
                    const u = new URL(a.url, location.href);
                    if (u.protocol === 'https:' || u.protocol === 'http:') href = u.href;
                } catch (e) {
                    href = null;
                }
                const el = href ? DS.el('a', null, a.text) : DS.el('span', null, a.text);
                if (href) {
                    el.href = href;
                    el.target = '_blank';
                    el.rel = 'noopener noreferrer';
                }
                box.appendChild(el);
            }
            if (typeof server === 'string') $('foot-server').textContent = server.slice(0, 60);
        }

        renderReceived(n, skipped) {
            $('foot-received').textContent = t('footer_received', { n: DS.fmtInt(n), k: DS.fmtInt(skipped) });
        }

        /* ---- filter form ---- */

        buildFilterChecks() {
            const mk = (boxId, name, values, label) => {
                const box = $(boxId);
                const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
                box.replaceChildren();
                for (const v of values) {
                    const l = DS.el('label', 'check');
                    const i = document.createElement('input');
                    i.type = 'checkbox';
                    i.name = name;
                    i.value = v;
                    i.checked = checked.has(v);
                    l.appendChild(i);
                    if (name === 'class') {
                        const sw = DS.el('span', 'swatch');
                        sw.style.backgroundColor = DS.CLASS_COLOURS[v];
                        l.appendChild(sw);
                    }
                    l.appendChild(DS.el('span', null, label(v)));
                    box.appendChild(l);
                }
            };
            mk('f-class', 'class', DS.CLASSES, (v) => t('class_' + v));
            mk('f-proto', 'proto', DS.PROTOS, (v) => v);
            this._buildSensorChecks();
        }

        _buildSensorChecks() {
            const box = $('f-sensor');
            const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
            box.replaceChildren();
            for (const s of this.sensorsHello.slice(0, 16)) {
                const l = DS.el('label', 'check');
                const i = document.createElement('input');
                i.type = 'checkbox';
                i.name = 'sensor';
                i.value = s.name;
                i.checked = checked.has(s.name);
                l.appendChild(i);
                l.appendChild(DS.el('span', null, s.label || s.name));
                box.appendChild(l);
            }
            $('f-sensor-set').hidden = this.sensorsHello.length === 0;
        }

        /* Show filters (as the server confirmed them) in the form. */
        fillFilterForm(f) {
            const set = (boxId, vals) => {
                const s = new Set((vals || []).map(String));
                for (const i of $(boxId).querySelectorAll('input')) i.checked = s.has(i.value);
            };
            set('f-class', f.class);
            set('f-proto', f.proto);
            set('f-sensor', f.sensor);
            $('f-port').value = (f.port || []).join(', ');
            $('f-cc').value = (f.cc || []).join(', ');
        }

        /* The form as a `subscribe` filters object, or {error}. Empty lists are left out ("all"). */
        readFilterForm() {
            const f = {};
            const checks = (boxId) => [...$(boxId).querySelectorAll('input:checked')].map((i) => i.value);
            const cls = checks('f-class');
            if (cls.length && cls.length < DS.CLASSES.length) f.class = cls;
            const pr = checks('f-proto');
            if (pr.length && pr.length < DS.PROTOS.length) f.proto = pr;
            const se = checks('f-sensor');
            if (se.length && se.length < this.sensorsHello.length) f.sensor = se.slice(0, MAX_FILTER_VALUES);
            const words = (s) => s.split(/[\s,;]+/).filter(Boolean);
            const ports = [];
            for (const w of words($('f-port').value)) {
                if (!/^\d{1,5}$/.test(w) || Number(w) > 65535) return { error: t('f_bad_port', { v: w.slice(0, 12) }) };
                if (!ports.includes(Number(w))) ports.push(Number(w));
            }
            if (ports.length) f.port = ports;
            const ccs = [];
            for (const w of words($('f-cc').value.toUpperCase())) {
                if (!/^([A-Z]{2}|\?\?)$/.test(w)) return { error: t('f_bad_cc', { v: w.slice(0, 12) }) };
                if (!ccs.includes(w)) ccs.push(w);
            }
            if (ccs.length) f.cc = ccs;
            for (const k of Object.keys(f)) if (f[k].length > MAX_FILTER_VALUES) return { error: t('f_too_many') };
            return { filters: f };
        }

        /* "class=scan · port=23,2323" for the map badge; '' when nothing is filtered. */
        static describeFilters(f) {
            if (!f || typeof f !== 'object') return '';
            const parts = [];
            for (const k of ['class', 'proto', 'port', 'cc', 'sensor']) {
                if (!Array.isArray(f[k]) || f[k].length === 0) continue;
                let vals = f[k].map(String);
                if (k === 'class') vals = vals.map((v) => t('class_' + v));
                if (k === 'cc') vals = vals.map((v) => (v === '??' ? t('unknown') : v));
                parts.push(k + '=' + vals.slice(0, 6).join(',') + (vals.length > 6 ? '…' : ''));
            }
            return parts.join(' · ');
        }
    }

    DS.Panels = Panels;
})((window.DS = window.DS || {}));
