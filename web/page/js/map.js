/*
 * The world map: two stacked canvases in one container.
 *
 *   base  countries shaded by recent volume, graticule, sensor and "unknown"
 *         labels; redrawn once a second (the shading decays) and on resize.
 *   fx    the arcs, the sensors' pulses; redrawn every animation frame.
 *
 * Country outlines are projected once per resize into Path2D objects, so a
 * base redraw is a few hundred fill() calls. Everything the map keeps is
 * bounded: a fixed ring of MAX_ARCS arc objects (a new arc overwrites the
 * oldest), at most MAX_HEAT country counters, at most MAX_SENSORS sensors.
 * Nothing grows with the time the page is left open.
 */
(function (DS) {
    'use strict';

    const MAX_ARCS = 300;
    const MAX_HEAT = 300;
    const MAX_SENSORS = 64;
    const HEAT_TAU_S = 180; /* e-folding time of a country's shading */
    const HEAT_FLOOR = 8; /* the hottest country is at least this many decayed events */
    const UNKNOWN = [-112, -50]; /* South Pacific, far from any land */
    const ANTARCTICA = '010';
    /* Natural Earth units with no ISO numeric id in world-atlas. */
    const NAME_TO_CC = { Kosovo: 'XK', 'N. Cyprus': 'CY', Somaliland: 'SO' };

    const BG = '#060b14';
    const OCEAN = '#0a1424';
    const LAND = '#17243a';
    const BORDER = 'rgba(120, 150, 190, 0.28)';
    const HEAT_STOPS = [
        [0.0, [32, 52, 84]],
        [0.35, [104, 48, 110]],
        [0.7, [214, 66, 84]],
        [1.0, [255, 176, 64]],
    ];

    function heatLut(n) {
        const out = [];
        for (let i = 0; i < n; i++) {
            const x = i / (n - 1);
            let k = 1;
            while (k < HEAT_STOPS.length - 1 && HEAT_STOPS[k][0] < x) k++;
            const [x0, c0] = HEAT_STOPS[k - 1];
            const [x1, c1] = HEAT_STOPS[k];
            const f = (x - x0) / (x1 - x0);
            const c = c0.map((v, j) => Math.round(v + (c1[j] - v) * f));
            out.push('rgb(' + c.join(',') + ')');
        }
        return out;
    }
    const LUT = heatLut(64);
    DS.HEAT_LUT = LUT;

    /* The region the projection is fitted to: everything but the polar caps. */
    function frame() {
        const pts = [];
        for (let lon = -180; lon <= 180; lon += 5) {
            pts.push([lon, 83], [lon, -56]);
        }
        for (let lat = -56; lat <= 83; lat += 4) {
            pts.push([-180, lat], [180, lat], [0, lat]);
        }
        return { type: 'MultiPoint', coordinates: pts };
    }

    function ease(p) {
        return p >= 1 ? 1 : p <= 0 ? 0 : 0.5 - 0.5 * Math.cos(Math.PI * p);
    }

    class WorldMap {
        constructor(wrap, baseCanvas, fxCanvas) {
            this.wrap = wrap;
            this.base = baseCanvas;
            this.fx = fxCanvas;
            this.bctx = baseCanvas.getContext('2d');
            this.fctx = fxCanvas.getContext('2d');
            this.w = 0;
            this.h = 0;
            this.dpr = 1;
            this.gen = 0; /* bumped on every re-projection */
            this.projection = d3.geoNaturalEarth1();
            this.frameGeo = frame();
            this.countries = []; /* {cc, geo, path, centroid} */
            this.byCc = new Map();
            this.sphere = null;
            this.graticule = null;
            this.heat = new Map(); /* cc -> decayed event count */
            this.sensors = new Map(); /* name -> {name, label, lon, lat, online, x, y} */
            this.labels = { unknown: 'unknown' };
            this.colourMode = 'class';
            this.paused = false;
            this.clock = 0; /* animation time, ms; stands still while paused */
            this.lastReal = 0;
            this.baseDirty = true;
            this.arcs = [];
            for (let i = 0; i < MAX_ARCS; i++) this.arcs.push({ alive: false });
            this.next = 0;
            this.started = 0;
            this.alive = 0;

            this._frame = this._frame.bind(this);
            new ResizeObserver(() => this.resize()).observe(wrap);
            this.resize();
            requestAnimationFrame(this._frame);
        }

        /* topo: world-atlas countries-50m.json; codes: i18n-iso-countries codes.json. */
        setWorld(topo, codes) {
            const numToCc = new Map();
            for (const row of codes) numToCc.set(String(row[2]), row[0]);
            const fc = topojson.feature(topo, topo.objects.countries);
            this.countries = [];
            this.byCc.clear();
            for (const f of fc.features) {
                if (f.id === ANTARCTICA) continue;
                const name = f.properties && f.properties.name;
                const cc = f.id != null ? numToCc.get(String(f.id)) : NAME_TO_CC[name];
                const c = { cc: cc || null, geo: f, path: null, centroid: null };
                this.countries.push(c);
                if (cc && !this.byCc.has(cc)) this.byCc.set(cc, c);
            }
            this._project();
        }

        setSensors(list) {
            if (!Array.isArray(list)) return;
            const keep = new Map();
            for (const s of list.slice(0, MAX_SENSORS)) {
                if (!s || typeof s.name !== 'string') continue;
                const old = this.sensors.get(s.name) || {};
                const lat = Number(s.lat);
                const lon = Number(s.lon);
                const located = Number.isFinite(lat) && Number.isFinite(lon) && !(s.lat == null || s.lon == null);
                keep.set(s.name, {
                    name: s.name,
                    label: typeof s.label === 'string' && s.label ? s.label : s.name,
                    lat: located ? lat : null,
                    lon: located ? lon : null,
                    online: s.online !== undefined ? !!s.online : old.online !== false,
                    x: 0,
                    y: 0,
                    gen: -1,
                });
            }
            this.sensors = keep;
            this.baseDirty = true;
        }

        /* stats.sensors: only the online flag matters to the map. */
        updateSensorStatus(list) {
            if (!Array.isArray(list)) return;
            for (const s of list) {
                const m = s && this.sensors.get(s.name);
                if (m && m.online !== !!s.online) {
                    m.online = !!s.online;
                    this.baseDirty = true;
                }
            }
        }

        hasSensor(name) {
            return this.sensors.has(name);
        }

        setLabels(labels) {
            Object.assign(this.labels, labels);
            this.baseDirty = true;
        }

        setColourMode(m) {
            this.colourMode = m === 'tool' ? 'tool' : 'class';
        }

        setPaused(p) {
            this.paused = !!p;
        }

        get arcsAlive() {
            return this.alive;
        }

        get arcsStarted() {
            return this.started;
        }

        /* Once a second: decay the shading, schedule a base redraw, notice a DPR change. */
        tick() {
            if ((window.devicePixelRatio || 1) !== this.dpr) this.resize();
            if (this.paused) return;
            const f = Math.exp(-1 / HEAT_TAU_S);
            for (const [cc, v] of this.heat) {
                const nv = v * f;
                if (nv < 0.05) this.heat.delete(cc);
                else this.heat.set(cc, nv);
            }
            this.baseDirty = true;
        }

        /* A batch from an `events` frame; returns how many arcs it started. */
        addEvents(events, spreadMs) {
            if (this.paused || !Array.isArray(events) || events.length === 0) return 0;
            for (const ev of events) {
                const cc = ev && DS.isCc(ev.cc) ? ev.cc : null;
                if (!cc) continue;
                const v = this.heat.get(cc);
                if (v !== undefined) this.heat.set(cc, v + 1);
                else if (this.heat.size < MAX_HEAT) this.heat.set(cc, 1);
            }
            if (document.hidden) return 0;
            /* A frame of up to 500 events would overwrite its own arcs: draw an even sample. */
            const n = events.length;
            const take = Math.min(n, MAX_ARCS >> 1);
            const spread = Math.max(0, Math.min(spreadMs || 200, 400));
            let startedHere = 0;
            for (let i = 0; i < take; i++) {
                const ev = events[Math.floor((i * n) / take)];
                if (ev && this._startArc(ev, this.clock + (i * spread) / take)) startedHere++;
            }
            return startedHere;
        }

        _sourceLonLat(ev) {
            const lat = Number(ev.lat);
            const lon = Number(ev.lon);
            if (ev.lat != null && ev.lon != null && Number.isFinite(lat) && Number.isFinite(lon)) {
                return [lon, lat];
            }
            /* A country without coordinates flies from the country's centre. */
            const c = DS.isCc(ev.cc) ? this.byCc.get(ev.cc) : null;
            if (c) {
                if (!c.centroid) c.centroid = d3.geoCentroid(c.geo);
                return c.centroid;
            }
            return UNKNOWN;
        }

        _colour(ev) {
            if (this.colourMode === 'tool') return DS.toolColour(typeof ev.tool === 'string' ? ev.tool : null);
            return DS.CLASS_COLOURS[ev.class] || DS.CLASS_COLOURS.other;
        }

        _startArc(ev, start) {
            const a = this.arcs[this.next];
            this.next = (this.next + 1) % MAX_ARCS;
            const src = this._sourceLonLat(ev);
            const s = this.sensors.get(ev.sensor);
            a.alive = true;
            a.start = start;
            a.lon0 = src[0];
            a.lat0 = src[1];
            a.blip = !(s && s.lon !== null);
            a.lon1 = a.blip ? src[0] : s.lon;
            a.lat1 = a.blip ? src[1] : s.lat;
            a.colour = this._colour(ev);
            a.gen = -1;
            this.started++;
            return true;
        }

        _placeArc(a) {
            const p0 = this.projection([a.lon0, a.lat0]) || [0, 0];
            const p1 = this.projection([a.lon1, a.lat1]) || p0;
            a.sx = p0[0];
            a.sy = p0[1];
            a.dx = p1[0];
            a.dy = p1[1];
            const vx = a.dx - a.sx;
            const vy = a.dy - a.sy;
            const d = Math.hypot(vx, vy);
            let nx = 0;
            let ny = -1;
            if (d > 1) {
                nx = -vy / d;
                ny = vx / d;
                if (ny > 0) {
                    nx = -nx;
                    ny = -ny;
                }
            }
            const lift = Math.max(18, Math.min(d * 0.32, this.h * 0.32));
            a.cx = (a.sx + a.dx) / 2 + nx * lift;
            a.cy = (a.sy + a.dy) / 2 + ny * lift;
            a.dur = a.blip ? 900 : Math.min(2600, 1000 + d * 1.1);
            a.end = a.start + (a.blip ? 1200 : a.dur * 1.4 + 200);
            a.gen = this.gen;
        }

        resize() {
            const r = this.wrap.getBoundingClientRect();
            const w = Math.max(1, Math.round(r.width));
            const h = Math.max(1, Math.round(r.height));
            const dpr = Math.max(1, Math.min(window.devicePixelRatio || 1, 3));
            if (w === this.w && h === this.h && dpr === this.dpr) return;
            this.w = w;
            this.h = h;
            this.dpr = dpr;
            for (const c of [this.base, this.fx]) {
                c.width = Math.round(w * dpr);
                c.height = Math.round(h * dpr);
            }
            this._project();
        }

        _project() {
            const pad = Math.max(8, Math.min(this.w, this.h) * 0.02);
            this.projection.fitExtent(
                [
                    [pad, pad],
                    [this.w - pad, this.h - pad],
                ],
                this.frameGeo
            );
            const gp = d3.geoPath(this.projection);
            if (typeof gp.digits === 'function') gp.digits(1);
            this.sphere = new Path2D(gp({ type: 'Sphere' }) || '');
            this.graticule = new Path2D(gp(d3.geoGraticule10()) || '');
            for (const c of this.countries) c.path = new Path2D(gp(c.geo) || '');
            this.gen++;
            this.baseDirty = true;
        }

        _sensorXY(s) {
            if (s.gen !== this.gen) {
                const p = this.projection([s.lon, s.lat]) || [0, 0];
                s.x = p[0];
                s.y = p[1];
                s.gen = this.gen;
            }
        }

        drawBase() {
            this.baseDirty = false;
            const ctx = this.bctx;
            const { w, h } = this;
            ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
            ctx.fillStyle = BG;
            ctx.fillRect(0, 0, w, h);
            ctx.fillStyle = OCEAN;
            ctx.fill(this.sphere);
            ctx.save();
            ctx.clip(this.sphere);
            ctx.strokeStyle = 'rgba(110, 150, 210, 0.07)';
            ctx.lineWidth = 1;
            ctx.stroke(this.graticule);
            ctx.restore();

            let max = HEAT_FLOOR;
            for (const v of this.heat.values()) if (v > max) max = v;
            for (const c of this.countries) {
                const v = c.cc ? this.heat.get(c.cc) : undefined;
                if (v && v > 0.05) {
                    /* square root: the top few countries stay apart, small ones stay visible */
                    const k = Math.min(LUT.length - 1, Math.round(Math.sqrt(v / max) * (LUT.length - 1)));
                    ctx.fillStyle = LUT[k];
                } else {
                    ctx.fillStyle = LAND;
                }
                ctx.fill(c.path);
            }
            ctx.strokeStyle = BORDER;
            ctx.lineWidth = 0.6;
            for (const c of this.countries) ctx.stroke(c.path);
            ctx.strokeStyle = 'rgba(80, 130, 200, 0.35)';
            ctx.lineWidth = 1;
            ctx.stroke(this.sphere);

            this._drawUnknown(ctx);
            this._drawSensorLabels(ctx);
        }

        _label(ctx, text, x, y, colour, size, align) {
            ctx.font = '600 ' + size + 'px ' + DS.FONT;
            ctx.textAlign = align || 'left';
            ctx.textBaseline = 'middle';
            ctx.lineJoin = 'round';
            ctx.lineWidth = 4;
            ctx.strokeStyle = 'rgba(4, 8, 16, 0.9)';
            ctx.strokeText(text, x, y);
            ctx.fillStyle = colour;
            ctx.fillText(text, x, y);
        }

        _drawUnknown(ctx) {
            const p = this.projection(UNKNOWN);
            if (!p) return;
            ctx.save();
            ctx.setLineDash([3, 4]);
            ctx.strokeStyle = 'rgba(200, 215, 235, 0.6)';
            ctx.lineWidth = 1.5;
            ctx.beginPath();
            ctx.arc(p[0], p[1], 9, 0, Math.PI * 2);
            ctx.stroke();
            ctx.restore();
            ctx.fillStyle = 'rgba(200, 215, 235, 0.8)';
            ctx.beginPath();
            ctx.arc(p[0], p[1], 2.5, 0, Math.PI * 2);
            ctx.fill();
            this._label(ctx, '? ' + this.labels.unknown, p[0], p[1] + 22, 'rgba(210, 222, 240, 0.85)', 14, 'center');
        }

        _drawSensorLabels(ctx) {
            const placed = [];
            for (const s of this.sensors.values()) {
                if (s.lon === null) continue;
                this._sensorXY(s);
                let x = s.x + 17;
                let y = s.y;
                ctx.font = '600 15px ' + DS.FONT;
                const wText = ctx.measureText(s.label).width;
                let tries = 0;
                while (tries < 8 && placed.some((b) => x < b.x1 && x + wText > b.x0 && Math.abs(y - b.y) < 18)) {
                    y += 18;
                    tries++;
                }
                placed.push({ x0: x, x1: x + wText, y });
                const colour = s.online ? '#d9fbff' : '#8b97a8';
                this._label(ctx, s.label, x, y, colour, 15);
                if (!s.online) this._label(ctx, '●', x - 2 + wText + 10, y, '#ff5a5a', 11);
            }
        }

        _frame(ts) {
            requestAnimationFrame(this._frame);
            const dt = this.lastReal ? ts - this.lastReal : 16;
            this.lastReal = ts;
            if (!this.paused) this.clock += Math.max(0, Math.min(dt, 250));
            if (this.baseDirty) this.drawBase();
            this._drawFx();
        }

        _drawFx() {
            const ctx = this.fctx;
            const now = this.clock;
            ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
            ctx.clearRect(0, 0, this.w, this.h);
            ctx.globalCompositeOperation = 'screen';
            ctx.lineCap = 'round';
            let alive = 0;
            for (const a of this.arcs) {
                if (!a.alive) continue;
                if (a.gen !== this.gen) this._placeArc(a);
                if (now > a.end) {
                    a.alive = false;
                    continue;
                }
                alive++;
                const p = (now - a.start) / a.dur;
                if (p < 0) continue;
                if (a.blip) {
                    this._ring(ctx, a.sx, a.sy, 2 + 14 * Math.min(1, p), (1 - Math.min(1, p)) * 0.9, a.colour, 2);
                    continue;
                }
                this._drawArc(ctx, a, p, now);
            }
            this.alive = alive;

            ctx.globalCompositeOperation = 'source-over';
            this._drawSensors(ctx, now);
        }

        _drawArc(ctx, a, p, now) {
            const t1 = ease(p);
            const t0 = ease(p - 0.38);
            const fade = p <= 1 ? 1 : Math.max(0, 1 - (p - 1) / 0.4);
            const u1 = 1 - t1;
            const x1 = u1 * u1 * a.sx + 2 * u1 * t1 * a.cx + t1 * t1 * a.dx;
            const y1 = u1 * u1 * a.sy + 2 * u1 * t1 * a.cy + t1 * t1 * a.dy;
            ctx.strokeStyle = a.colour;
            ctx.fillStyle = a.colour;

            /* the path travelled so far, faint: the quadratic cut at t1 */
            if (t1 > 0 && fade > 0) {
                ctx.globalAlpha = 0.11 * fade;
                ctx.lineWidth = 1;
                ctx.beginPath();
                ctx.moveTo(a.sx, a.sy);
                ctx.quadraticCurveTo(a.sx + (a.cx - a.sx) * t1, a.sy + (a.cy - a.sy) * t1, x1, y1);
                ctx.stroke();
            }
            /* the bright comet between t0 and t1; its control point is the blossom f(t0, t1) */
            if (t1 > t0) {
                const u0 = 1 - t0;
                const x0 = u0 * u0 * a.sx + 2 * u0 * t0 * a.cx + t0 * t0 * a.dx;
                const y0 = u0 * u0 * a.sy + 2 * u0 * t0 * a.cy + t0 * t0 * a.dy;
                const qx = u0 * (u1 * a.sx + t1 * a.cx) + t0 * (u1 * a.cx + t1 * a.dx);
                const qy = u0 * (u1 * a.sy + t1 * a.cy) + t0 * (u1 * a.cy + t1 * a.dy);
                ctx.globalAlpha = 0.8 * (p <= 1 ? 1 : Math.max(0, 1 - (p - 1) / 0.38));
                ctx.lineWidth = 1.8;
                ctx.beginPath();
                ctx.moveTo(x0, y0);
                ctx.quadraticCurveTo(qx, qy, x1, y1);
                ctx.stroke();
                if (p < 1) {
                    ctx.globalAlpha = 0.22;
                    ctx.beginPath();
                    ctx.arc(x1, y1, 5.5, 0, Math.PI * 2);
                    ctx.fill();
                    ctx.globalAlpha = 1;
                    ctx.beginPath();
                    ctx.arc(x1, y1, 2.2, 0, Math.PI * 2);
                    ctx.fill();
                }
            }
            /* launch flash at the source, impact ring at the sensor */
            if (p < 0.22) this._ring(ctx, a.sx, a.sy, 2 + 9 * (p / 0.22), (1 - p / 0.22) * 0.7, a.colour, 1.5);
            const k = (now - a.start - a.dur) / 700;
            if (k >= 0 && k < 1) this._ring(ctx, a.dx, a.dy, 4 + 18 * k, (1 - k) * 0.6, a.colour, 1.5);
            ctx.globalAlpha = 1;
        }

        _ring(ctx, x, y, r, alpha, colour, width) {
            if (alpha <= 0) return;
            ctx.globalAlpha = alpha;
            ctx.strokeStyle = colour;
            ctx.lineWidth = width;
            ctx.beginPath();
            ctx.arc(x, y, r, 0, Math.PI * 2);
            ctx.stroke();
            ctx.globalAlpha = 1;
        }

        _drawSensors(ctx, now) {
            for (const s of this.sensors.values()) {
                if (s.lon === null) continue;
                this._sensorXY(s);
                if (s.online) {
                    for (let i = 0; i < 2; i++) {
                        const k = ((now / 2200 + i / 2) % 1 + 1) % 1;
                        this._ring(ctx, s.x, s.y, 5 + 11 * k, (1 - k) * 0.7, '#4fe3ff', 1.5);
                    }
                }
                ctx.fillStyle = s.online ? '#4fe3ff' : '#6b7788';
                ctx.strokeStyle = '#02060c';
                ctx.lineWidth = 2;
                ctx.beginPath();
                ctx.moveTo(s.x, s.y - 7);
                ctx.lineTo(s.x + 7, s.y);
                ctx.lineTo(s.x, s.y + 7);
                ctx.lineTo(s.x - 7, s.y);
                ctx.closePath();
                ctx.stroke();
                ctx.fill();
            }
        }
    }

    DS.MAX_ARCS = MAX_ARCS;
    DS.WorldMap = WorldMap;
})((window.DS = window.DS || {}));
