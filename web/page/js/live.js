/*
 * The websocket to /live with automatic reconnect.
 *
 * Backoff: 1 s after the first failure, doubling to 30 s, each delay scaled
 * by a random factor in [0.75, 1.25] so a wall of screens does not reconnect in
 * step after a server restart. The attempt count resets when a `hello`
 * arrives. While the socket is open and no frame has come for WATCHDOG_S
 * seconds (stats come every second), the socket is closed and reopened.
 *
 * Outgoing messages (only `subscribe`) are limited to one per 500 ms, the
 * latest replacing any still waiting: the server closes a client that sends
 * more than five a second.
 *
 * State reported to onState: {phase: 'connecting'|'open'|'waiting', retryAt,
 * failures, lastFrameAt, closeCode, closeReason, unauthorized}.
 */
(function (DS) {
    'use strict';

    const BASE_MS = 1000;
    const MAX_MS = 30000;
    const WATCHDOG_S = 30;
    const SEND_GAP_MS = 500;
    const MAX_FRAME_CHARS = 4 * 1024 * 1024;

    function liveUrl() {
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
        let url = proto + '//' + location.host + '/live';
        if (DS.token) url += '?token=' + encodeURIComponent(DS.token);
        return url;
    }

    class Live {
        constructor(handlers) {
            this.onMessage = handlers.onMessage;
            this.onState = handlers.onState;
            this.onOpen = handlers.onOpen || (() => {});
            this.ws = null;
            this.failures = 0;
            this.retryTimer = 0;
            this.state = { phase: 'connecting', retryAt: 0, failures: 0, lastFrameAt: 0, openedAt: 0,
                closeCode: 0, closeReason: '', unauthorized: false };
            this.pendingSend = null;
            this.sendTimer = 0;
            this.lastSendAt = 0;
            this.badFrames = 0;
            setInterval(() => this._watchdog(), 1000);
        }

        start() {
            this._connect();
        }

        _set(patch) {
            Object.assign(this.state, patch);
            this.onState(this.state);
        }

        _connect() {
            clearTimeout(this.retryTimer);
            this._set({ phase: 'connecting', retryAt: 0 });
            let ws;
            try {
                ws = new WebSocket(liveUrl());
            } catch (e) {
                this._scheduleRetry(0, String(e));
                return;
            }
            this.ws = ws;
            ws.onopen = () => {
                if (ws !== this.ws) return;
                this._set({ phase: 'open', openedAt: Date.now(), lastFrameAt: Date.now(), unauthorized: false,
                    closeCode: 0, closeReason: '' });
                this.onOpen();
            };
            ws.onmessage = (e) => {
                if (ws !== this.ws) return;
                this.state.lastFrameAt = Date.now();
                if (typeof e.data !== 'string' || e.data.length > MAX_FRAME_CHARS) {
                    this.badFrames++;
                    return;
                }
                let m;
                try {
                    m = JSON.parse(e.data);
                } catch (err) {
                    this.badFrames++;
                    return;
                }
                if (!m || typeof m !== 'object' || typeof m.type !== 'string') {
                    this.badFrames++;
                    return;
                }
                if (m.type === 'hello') this.failures = 0;
                this.onMessage(m);
            };
            ws.onclose = (e) => {
                if (ws !== this.ws) return;
                this.ws = null;
                this._scheduleRetry(e.code, e.reason || '');
            };
            /* onerror is always followed by onclose */
            ws.onerror = () => {};
        }

        _scheduleRetry(code, reason) {
            const wasOpen = !!this.state.openedAt;
            const n = this.failures++;
            const nominal = Math.min(MAX_MS, BASE_MS * Math.pow(2, n));
            const delay = Math.round(nominal * (0.75 + Math.random() * 0.5));
            clearTimeout(this.retryTimer);
            this.retryTimer = setTimeout(() => this._connect(), delay);
            this._set({ phase: 'waiting', retryAt: Date.now() + delay, failures: this.failures,
                closeCode: code, closeReason: reason, openedAt: 0 });
            /* A browser cannot see why an upgrade failed: ask the REST API whether it is the token. */
            if (!wasOpen && this.failures >= 1) this._probeAuth();
        }

        async _probeAuth() {
            try {
                const r = await DS.apiFetch('/api/v1/sensors');
                this._set({ unauthorized: r.status === 401 || r.status === 403 });
            } catch (e) {
                this._set({ unauthorized: false });
            }
        }

        _watchdog() {
            const ws = this.ws;
            if (ws && ws.readyState === WebSocket.OPEN &&
                Date.now() - this.state.lastFrameAt > WATCHDOG_S * 1000) {
                this.ws = null;
                try {
                    ws.close(4000, 'no data');
                } catch (e) {
                    /* closing anyway */
                }
                this._scheduleRetry(4000, 'no data');
            }
            this.onState(this.state);
        }

        get connected() {
            return !!(this.ws && this.ws.readyState === WebSocket.OPEN);
        }

        /* Send a JSON message, at most one per SEND_GAP_MS; a newer one replaces a waiting one. */
        send(obj) {
            this.pendingSend = obj;
            if (this.sendTimer) return;
            const wait = Math.max(0, this.lastSendAt + SEND_GAP_MS - Date.now());
            this.sendTimer = setTimeout(() => {
                this.sendTimer = 0;
                const m = this.pendingSend;
                this.pendingSend = null;
                if (m && this.connected) {
                    this.ws.send(JSON.stringify(m));
                    this.lastSendAt = Date.now();
                }
            }, wait);
        }
    }

    DS.Live = Live;
})((window.DS = window.DS || {}));
