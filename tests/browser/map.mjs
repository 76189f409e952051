#!/usr/bin/env node
/*
 * Browser check of the live map page served by `darkscope serve`.
 *
 *   node tests/browser/map.mjs --url http://127.0.0.1:PORT/ --expect-countries JP,CN,US \
 *        --screenshot OUT.png [--timeout 60] [--expect-timeline] [--chromium /usr/bin/chromium]
 *
 * Loads the page in headless Chromium (1920x1080, a fresh profile) and asserts, one line each:
 * the websocket connects; the packets/s counter shows a value > 0; eventsReceived rises between
 * two readings; arcs were drawn; the top-country list holds one of the expected countries; with
 * --expect-timeline, the timeline has points; no console error, page error or CSP violation.
 * Then it saves the screenshot. Exit 0 when every assertion holds, 1 at the first that does not,
 * 2 for bad usage. Needs playwright-core from web/node_modules (npm install in web/).
 */
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '..', '..', 'web');

const USAGE =
    'usage: node tests/browser/map.mjs --url URL --expect-countries CC,CC --screenshot OUT.png ' +
    '[--timeout SECONDS] [--expect-timeline] [--expect-alert TEXT] [--expect-text TEXT]... [--chromium PATH]';

function parseArgs(argv) {
    const o = { timeout: 60, expectTimeline: false, chromium: '/usr/bin/chromium', countries: [] };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) throw new Error(a + ' needs a value');
            return argv[++i];
        };
        if (a === '--url') o.url = val();
        else if (a === '--expect-countries') o.countries = val().split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
        else if (a === '--screenshot') o.screenshot = val();
        else if (a === '--timeout') o.timeout = Number(val());
        else if (a === '--expect-timeline') o.expectTimeline = true;
        else if (a === '--chromium') o.chromium = val();
        else if (a === '--expect-alert') o.expectAlert = val();
        else if (a === '--expect-text') (o.expectText = o.expectText || []).push(val());
        else if (a === '-h' || a === '--help') {
            console.log(USAGE);
            process.exit(0);
        } else throw new Error('unknown argument ' + a);
    }
    if (!o.url) throw new Error('--url is required');
    if (!o.screenshot) throw new Error('--screenshot is required');
    if (o.countries.length === 0) throw new Error('--expect-countries is required');
    if (!Number.isFinite(o.timeout) || o.timeout <= 0) throw new Error('--timeout must be a positive number');
    return o;
}

let opts;
try {
    opts = parseArgs(process.argv.slice(2));
} catch (e) {
    console.error('map.mjs: ' + e.message + '\n' + USAGE);
    process.exit(2);
}

let chromium;
try {
    chromium = createRequire(path.join(webDir, 'package.json'))('playwright-core').chromium;
} catch (e) {
    console.error('map.mjs: cannot load playwright-core from ' + webDir + '/node_modules (run npm install in web/): ' + e.message);
    process.exit(2);
}

const deadline = Date.now() + opts.timeout * 1000;
const remaining = () => Math.max(1000, deadline - Date.now());

class Failure extends Error {}

function ok(what) {
    console.log('ok   ' + what);
}

async function snapshot(page) {
    try {
        return await page.evaluate(() => {
            const s = window.darkscope && window.darkscope.state;
            if (!s) return 'window.darkscope missing';
            const c = Object.assign({}, s);
            c.lastStats = s.lastStats ? '{…}' : null;
            return JSON.stringify(c) + ' conn="' + (document.getElementById('conn-text') || {}).textContent + '"';
        });
    } catch (e) {
        return 'page not readable: ' + e.message;
    }
}

/* Wait for fn(arg) to be truthy in the page, or fail with msg and the page's state. */
async function expect(page, what, fn, arg, msg) {
    try {
        await page.waitForFunction(fn, arg, { timeout: remaining(), polling: 250 });
    } catch (e) {
        throw new Failure(what + ': ' + msg + ' before the ' + opts.timeout + ' s time-out; state: ' + (await snapshot(page)));
    }
    ok(what);
}

const flags = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'darkscope-chromium-'));
let context;
let code = 0;
try {
    context = await chromium.launchPersistentContext(profile, {
        executablePath: opts.chromium,
        headless: true,
        args: flags,
        viewport: { width: 1920, height: 1080 },
        deviceScaleFactor: 1,
    });
    const page = context.pages()[0] || (await context.newPage());
    const problems = [];
    page.on('console', (m) => {
        if (m.type() === 'error') problems.push('console error: ' + m.text());
    });
    page.on('pageerror', (e) => problems.push('page error: ' + (e && e.message ? e.message : e)));
    page.on('requestfailed', (r) => {
        const f = r.failure();
        /* a websocket being replaced or a fetch aborted on navigation is not a fault */
        if (f && !/ERR_ABORTED/.test(f.errorText)) problems.push('request failed: ' + r.url() + ' ' + f.errorText);
    });
    await page.addInitScript(() => {
        window.__cspViolations = [];
        document.addEventListener('securitypolicyviolation', (e) => {
            window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || '') + ':' + (e.lineNumber || ''));
        });
    });

    try {
        const resp = await page.goto(opts.url, { waitUntil: 'load', timeout: remaining() });
        if (!resp || !resp.ok()) throw new Error('HTTP ' + (resp ? resp.status() : 'no response'));
        ok('page loaded: ' + opts.url);
    } catch (e) {
        throw new Failure('page load: ' + opts.url + ' did not load: ' + e.message);
    }

    await expect(page, 'connected', () => window.darkscope && window.darkscope.state.connected === true, null,
        'window.darkscope.state.connected did not become true');

    await expect(page, 'packets/s counter > 0',
        () => {
            const e = document.getElementById('c-pps');
            return e && Number(e.dataset.value) > 0 && e.textContent.trim() !== '—';
        }, null, 'the #c-pps counter did not show a packets/s value above 0 (no stats frame?)');

    const e1 = await page.evaluate(() => window.darkscope.state.eventsReceived);
    await expect(page, 'eventsReceived rises (first reading ' + e1 + ')',
        (first) => window.darkscope.state.eventsReceived > first, e1,
        'eventsReceived stayed at ' + e1 + ' (no events frames?)');

    await expect(page, 'arcsDrawn > 0', () => window.darkscope.state.arcsDrawn > 0, null,
        'no arc was started on the map');

    await expect(page, 'top countries contain one of ' + opts.countries.join(','),
        (ccs) => [...document.querySelectorAll('#top-countries li[data-cc]')].some((li) => ccs.includes(li.dataset.cc)),
        opts.countries, 'the top-country list (#top-countries) holds none of ' + opts.countries.join(','));
    const shown = await page.evaluate(() =>
        [...document.querySelectorAll('#top-countries li[data-cc]')].map((li) => li.dataset.cc).join(','));
    console.log('     top countries shown: ' + shown);

    if (opts.expectTimeline) {
        await expect(page, 'timeline has points', () => window.darkscope.state.timelinePoints > 0, null,
            'timelinePoints stayed 0 (GET /api/v1/timeline gave no points?)');
    }

    if (opts.expectAlert) {
        await expect(page, 'alert ticker shows "' + opts.expectAlert + '"',
            (txt) => (document.getElementById('ticker') || {}).textContent.includes(txt), opts.expectAlert,
            'the alert ticker (#ticker) never showed "' + opts.expectAlert + '"');
    }
    for (const txt of opts.expectText || []) {
        await expect(page, 'page shows "' + txt + '"', (x) => document.body.textContent.includes(x), txt,
            'the page never showed "' + txt + '"');
    }

    /* let arcs fly and a few more frames arrive before judging errors and taking the picture */
    await page.waitForTimeout(Math.min(2500, remaining()));
    const csp = await page.evaluate(() => window.__cspViolations.slice());
    for (const v of csp) problems.push('CSP violation: ' + v);
    if (problems.length > 0) {
        throw new Failure('no console errors or CSP violations: ' + problems.length + ' found:\n  ' +
            problems.slice(0, 20).join('\n  '));
    }
    ok('no console errors, page errors or CSP violations');

    const st = await page.evaluate(() => window.darkscope.state);
    console.log('     state: frames=' + st.framesReceived + ' events=' + st.eventsReceived + ' arcsDrawn=' +
        st.arcsDrawn + ' arcsAlive=' + st.arcsAlive + ' timelinePoints=' + st.timelinePoints);

    fs.mkdirSync(path.dirname(path.resolve(opts.screenshot)), { recursive: true });
    await page.screenshot({ path: opts.screenshot });
    ok('screenshot saved: ' + opts.screenshot);
} catch (e) {
    code = 1;
    if (e instanceof Failure) console.log('FAIL ' + e.message);
    else console.log('FAIL ' + (e && e.stack ? e.stack : e));
    /* a picture of the failure helps more than none */
    const page = context && context.pages()[0];
    if (page) {
        try {
            await page.screenshot({ path: opts.screenshot, timeout: 5000 });
            console.log('     screenshot of the failure saved: ' + opts.screenshot);
        } catch (err) {
            /* the page is gone */
        }
    }
} finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
