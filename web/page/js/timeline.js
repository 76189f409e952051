/*
 * The 60-minute timeline (uPlot): packets per bucket stacked by class on the
 * left axis, distinct sources per bucket as a dashed line on the right axis.
 *
 * It fills at load from GET /api/v1/timeline?from=<now-60min>&to=<now> and is
 * fetched again a few seconds after each bucket boundary (bucket_seconds from
 * `hello`). At most 1,440 points (the API's own cap) are kept: one answer.
 */
(function (DS) {
    'use strict';

    const WINDOW_S = 3600;
    const MAX_POINTS = 1440;
    const AFTER_BOUNDARY_MS = 4000;

    /* stacking order, top to bottom: the last one (scan, the bulk of darknet traffic) is the base */
    const order = () => DS.CLASSES.slice().reverse();

    function rgba(hex, a) {
        const n = parseInt(hex.slice(1), 16);
        return 'rgba(' + ((n >> 16) & 255) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
    }

    class Timeline {
        constructor(container, statusEl) {
            this.container = container;
            this.statusEl = statusEl;
            this.points = 0;
            this.bucketSeconds = 60;
            this.timer = 0;
            this.inflight = null;
            this.range = [Date.now() / 1000 - WINDOW_S, Date.now() / 1000];
            this.plot = null;
            this._build();
            new ResizeObserver(() => this._resize()).observe(container);
        }

        _size() {
            const r = this.container.getBoundingClientRect();
            return { width: Math.max(200, Math.floor(r.width)), height: Math.max(80, Math.floor(r.height)) };
        }

        _build() {
            const C = DS.CLASS_COLOURS;
            const axis = {
                stroke: '#8ea3c2',
                font: '13px ' + DS.FONT,
                grid: { stroke: 'rgba(140, 170, 220, 0.08)', width: 1 },
                ticks: { stroke: 'rgba(140, 170, 220, 0.18)', width: 1, size: 4 },
            };
            const fmtVals = (u, vals) => vals.map((v) => (v == null ? '' : DS.fmtCompact(v)));
            const opts = Object.assign(this._size(), {
                legend: { show: false },
                cursor: { drag: { x: false, y: false }, points: { show: false } },
                padding: [8, 4, 0, 4],
                scales: {
                    x: { time: true, range: () => this.range },
                    p: { range: (u, min, max) => [0, Math.max(1, max * 1.08)] },
                    s: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] },
                },
                axes: [
                    Object.assign({}, axis, {
                        values: (u, splits) => splits.map((v) => DS.fmtTime(v * 1000, false)),
                        space: 80,
                    }),
                    Object.assign({}, axis, { scale: 'p', values: fmtVals, size: 56 }),
                    Object.assign({}, axis, { scale: 's', side: 1, values: fmtVals, size: 52, grid: { show: false } }),
                ],
                /* stacked by class: series i+1 is the sum of classes i..n-1 of order(), so
                 * series 1 is the total and the band below series i+1 shows class i */
                series: [{}].concat(
                    order().map((c, i) => ({
                        scale: 'p',
                        stroke: C[c],
                        width: 1,
                        points: { show: false },
                    }))
                ).concat([{ scale: 's', stroke: '#e8f1ff', width: 1.5, dash: [6, 4], points: { show: false } }]),
                bands: order().slice(0, -1).map((c, i) => ({ series: [i + 1, i + 2], fill: rgba(C[c], 0.35) })),
            });
            /* the last class has no band below it: it fills down to zero */
            const o = order();
            opts.series[o.length].fill = rgba(C[o[o.length - 1]], 0.35);
            this.plot = new uPlot(opts, this._empty(), this.container);
        }

        _empty() {
            const d = [[]];
            for (let i = 0; i <= order().length; i++) d.push([]);
            return d;
        }

        _resize() {
            if (this.plot) this.plot.setSize(this._size());
        }

        setBucketSeconds(s) {
            if (Number.isFinite(s) && s >= 1 && s <= 86400) this.bucketSeconds = s;
        }

        /* Fetch now, then a few seconds after every bucket boundary. */
        start() {
            clearTimeout(this.timer);
            this.refresh();
        }

        _schedule() {
            clearTimeout(this.timer);
            const b = this.bucketSeconds * 1000;
            const now = Date.now();
            const wait = b - (now % b) + AFTER_BOUNDARY_MS;
            this.timer = setTimeout(() => this.refresh(), wait);
        }

        async refresh() {
            if (this.inflight) return;
            const to = Math.floor(Date.now() / 1000);
            const from = to - WINDOW_S;
            const url = '/api/v1/timeline?from=' + from + '&to=' + to;
            this.inflight = DS.apiFetch(url);
            try {
                const r = await this.inflight;
                if (!r.ok) {
                    let msg = 'HTTP ' + r.status;
                    try {
                        const j = await r.json();
                        if (j && typeof j.error === 'string') msg += ': ' + j.error.slice(0, 80);
                    } catch (e) {
                        /* the status says enough */
                    }
                    throw new Error(msg);
                }
                const j = await r.json();
                this._set(j, from, to);
            } catch (e) {
                this._status(DS.i18n.t('timeline_unavailable', { e: e && e.message ? e.message : e }));
            } finally {
                this.inflight = null;
                this._schedule();
            }
        }

        _set(j, from, to) {
            const pts = Array.isArray(j && j.points) ? j.points.slice(-MAX_POINTS) : [];
            const cls = order();
            const n = cls.length;
            const other = cls.indexOf('other');
            const xs = [];
            const stacks = cls.map(() => []);
            const src = [];
            let withData = 0;
            const num = (v) => (Number.isFinite(Number(v)) && v !== null ? Number(v) : 0);
            for (const p of pts) {
                const t = DS.parseTime(p && p.t);
                if (!Number.isFinite(t)) continue;
                const bc = p.by_class && typeof p.by_class === 'object' ? p.by_class : {};
                /* classes this page does not know, and packets no class accounts for, count as other */
                const v = cls.map((c) => Math.max(0, num(bc[c])));
                let known = v.reduce((a, b) => a + b, 0);
                for (const k of Object.keys(bc)) {
                    if (!DS.CLASS_COLOURS[k]) {
                        v[other] += Math.max(0, num(bc[k]));
                        known += Math.max(0, num(bc[k]));
                    }
                }
                const packets = num(p.packets);
                if (packets > known) v[other] += packets - known;
                let acc = 0;
                for (let i = n - 1; i >= 0; i--) {
                    acc += v[i];
                    stacks[i].push(acc);
                }
                if (acc > 0) withData++;
                xs.push(t / 1000);
                src.push(p.sources === null || p.sources === undefined ? null : num(p.sources));
            }
            const jf = DS.parseTime(j && j.from);
            const jt = DS.parseTime(j && j.to);
            this.range = [
                Number.isFinite(jf) ? jf / 1000 : from,
                Number.isFinite(jt) ? jt / 1000 : to,
            ];
            /* points that carry traffic: the API fills empty buckets with zeros */
            this.points = withData;
            this.plot.setData([xs].concat(stacks).concat([src]));
            this._status(withData ? '' : DS.i18n.t('timeline_empty'));
        }

        _status(text) {
            if (!this.statusEl) return;
            this.statusEl.textContent = text;
            this.statusEl.hidden = !text;
        }

        /* Language change: axis labels are formatted at draw time. */
        redraw() {
            if (this.plot) this.plot.redraw(false, true);
        }
    }

    DS.Timeline = Timeline;
})((window.DS = window.DS || {}));
