// The merchant dashboard end to end in headless Chromium (issue 8).
// Run by tests/browser/run.sh, which starts PostgreSQL, the Stripe and
// Shopify fakes, lighttpd and the job worker, and passes:
//   PV_BASE          the dashboard's server (http://127.0.0.1:PORT)
//   PV_CTL           pivotactl (agent creation: the dashboard has no
//                    form for it)
//   PV_STRIPE_KEY    the Stripe fake's secret key
//   PV_SHOPIFY_TOKEN the Shopify fake's Admin API token
//   PV_SHOPIFY_FAKE  the Shopify fake (its /__fake control channel)
//   PV_SHOTS         where the screenshots go
//   PV_CHROMIUM      the browser (Debian's /usr/bin/chromium)
// A merchant signs up, connects Stripe and Shopify (each verified live
// against its fake), syncs the store's catalog from the products page
// and follows the sync's progress page until it shows the synced
// products, sets a shipping rate; an agent creates and pays an order
// for a synced product through the agent API; the merchant sees it in
// the orders list and on its page, sees the worker push it to the
// store, ships it, refunds part of it, and the overview's totals and
// chart change.  Every wait is for a page or an element, never a
// sleep.
import { execFileSync } from 'node:child_process';
import { strict as assert } from 'node:assert';
import { chromium } from 'playwright-core';

const env = (k) => {
	const v = process.env[k];
	if (!v) throw new Error(`${k} is not set: run tests/browser/run.sh`);
	return v;
};
const BASE = env('PV_BASE'), CTL = env('PV_CTL'), SHOTS = env('PV_SHOTS');
const SK = env('PV_STRIPE_KEY'), SHOP_TOKEN = env('PV_SHOPIFY_TOKEN');
const SHOP_FAKE = env('PV_SHOPIFY_FAKE');
const SHOP = 'pivota-fake.myshopify.com'; // the fake's default domain
const XSS = '<script>alert(1)</script> Tote';
const started = Date.now();
let step = 0;

function ctl(...args) {
	return JSON.parse(execFileSync(CTL, [...args, '--json'],
	    { encoding: 'utf8' }));
}

async function agentCall(key, method, path, body) {
	const r = await fetch(BASE + path, {
		method,
		headers: { 'X-API-Key': key,
		    ...(body ? { 'Content-Type': 'application/json' } : {}) },
		body: body ? JSON.stringify(body) : undefined,
	});
	const text = await r.text();
	assert.equal(r.status, 200, `${method} ${path}: ${r.status} ${text}`);
	return JSON.parse(text);
}

// The Shopify fake's control channel: the reply as JSON.
async function shopFake(method, path, body) {
	const r = await fetch(SHOP_FAKE + path, {
		method, headers: { 'Content-Type': 'application/json' },
		body: body ? JSON.stringify(body) : undefined,
	});
	const text = await r.text();
	assert.equal(r.status, 200, `${method} ${path}: ${r.status} ${text}`);
	return JSON.parse(text);
}

// Reloads the page until test(text of main) holds; each round trip is
// the pause, so there is no sleep.  At most limit ms.
async function reloadUntil(page, test, what, limit = 15000) {
	const end = Date.now() + limit;
	for (;;) {
		const text = await page.textContent('main');
		if (test(text)) return text;
		if (Date.now() > end) throw new Error(`${what}: not in ${text}`);
		await page.reload();
	}
}

async function shot(page, name) {
	step++;
	const file = `${SHOTS}/${String(step).padStart(2, '0')}-${name}.png`;
	await page.screenshot({ path: file, fullPage: true });
	console.log(`browser: ${((Date.now() - started) / 1000).toFixed(1)}s ${file}`);
}

// The stats of the overview: { GMV: '0', 'Paid orders': '0', ... }.
async function stats(page) {
	return page.$$eval('dl.stats > div', (divs) => Object.fromEntries(
	    divs.map((d) => [d.querySelector('dt').textContent.trim(),
		d.querySelector('dd').childNodes[0].textContent.trim()])));
}

// The charts' captions, e.g. ['GMV per day (max 0.00)', ...].
async function charts(page) {
	return page.$$eval('figure.chart figcaption',
	    (f) => f.map((e) => e.textContent.replace(/\s+/g, ' ').trim()));
}

const browser = await chromium.launch({
	executablePath: process.env.PV_CHROMIUM || '/usr/bin/chromium',
	headless: true,
	timeout: 30000,
	args: ['--no-sandbox', '--disable-gpu', '--disable-quic',
	    '--no-first-run', '--disable-background-networking',
	    '--disable-component-update', '--disable-sync'],
});
try {
	const context = await browser.newContext({
		viewport: { width: 1200, height: 800 } });
	context.setDefaultTimeout(10000);
	const page = await context.newPage();
	const errors = [];
	page.on('pageerror', (e) => errors.push(String(e)));
	// A product title that ran as script would open a dialog.
	page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`);
	    d.dismiss(); });
	page.on('response', (r) => {
		if (r.status() >= 500) errors.push(`${r.status()} ${r.url()}`);
	});

	// Sign up: the form lands on the overview with a session.
	const email = `owner-${process.pid}@shop.example`;
	await page.goto(BASE + '/dashboard/signup');
	await shot(page, 'signup');
	await page.fill('#business_name', 'Browser <b>Goods</b>');
	await page.fill('#store_url', 'https://goods.example');
	await page.fill('#email', email);
	await page.fill('#password', 'correct horse battery');
	await Promise.all([page.waitForURL(/\/dashboard\/(\?.*)?$/),
	    page.click('button[type=submit]')]);
	// The business name is text, not markup.
	assert.equal(await page.locator('header b').count(), 0);
	assert.match(await page.textContent('header'), /Browser <b>Goods<\/b>/);
	const before = await stats(page);
	assert.equal(before['Paid orders'], '0');
	assert.equal(before.GMV, '0');
	const chartsBefore = await charts(page);
	assert.equal(chartsBefore.length, 2);
	assert.equal(await page.locator('figure.chart rect').count() > 0, true);
	await shot(page, 'overview-empty');

	// Connect Stripe: verified live against the fake before it is kept.
	await page.click('nav >> text=Connections');
	await page.waitForURL(/\/dashboard\/connections/);
	await page.selectOption('#provider', 'stripe');
	await page.fill('#secret_key', 'sk_test_wrong_0000000000');
	await Promise.all([page.waitForLoadState('load'),
	    page.click('form[action="/dashboard/connections/psp"] button')]);
	assert.match(await page.textContent('main'), /not connected|invalid|rejected|refused/i);
	await page.goto(BASE + '/dashboard/connections');
	await page.fill('#secret_key', SK);
	await Promise.all([page.waitForURL(/connections\?m=psp/),
	    page.click('form[action="/dashboard/connections/psp"] button')]);
	const hook = await page.textContent('dt:text("Stripe") + dd code');
	const merchant = hook.match(/\/webhooks\/stripe\/([A-Za-z0-9_]+)/)[1];
	await shot(page, 'connections');

	// Connect Shopify: the shop domain and Admin token are verified
	// live against the fake store before anything is kept.  Its store
	// has 7 products, one titled with markup.
	await shopFake('POST', '/__fake/catalog', { count: 7, titles: { 3: XSS } });
	const shopForm = page.locator('form[action="/dashboard/connections/shopify"]');
	await page.fill('#shop', SHOP);
	await page.fill('#token', 'shpat_wrong_0000000000');
	await Promise.all([page.waitForLoadState('load'),
	    shopForm.locator('button').click()]);
	assert.match(await page.textContent('main'), /refused the access token/);
	await page.goto(BASE + '/dashboard/connections');
	assert.match(await page.textContent('main'), /No store connected/);
	await page.fill('#shop', SHOP);
	await page.fill('#token', SHOP_TOKEN);
	await Promise.all([page.waitForURL(/connections\?m=shop/),
	    shopForm.locator('button').click()]);
	assert.match(await page.textContent('main'),
	    /Connected: Pivota Fake Outfitters \(pivota-fake\.myshopify\.com\)/);
	await shot(page, 'connections-shopify');

	// Sync the catalog from the products page: the durable
	// catalog.sync job, which the worker runs; the progress page
	// reloads itself (Refresh header) until the run is done, then
	// shows what changed and the store's products, markup as text.
	await page.click('nav >> text=Products');
	await page.waitForURL(/\/dashboard\/products/);
	assert.match(await page.textContent('main'), /No sync yet/);
	await shot(page, 'products-before-sync');
	await Promise.all([page.waitForURL(/\/dashboard\/products\/sync\?m=sync/),
	    page.click('form[action="/dashboard/products/sync"] button')]);
	await shot(page, 'sync-started');
	await page.waitForSelector('.badge.done', { timeout: 30000 });
	const synced = await page.textContent('main');
	assert.match(synced, /Done: 7 products copied from your store in 1 page\./);
	assert.match(synced, /New products\s*7/);
	assert.match(synced, /7 products from your store in the catalog, 7 active/);
	const titles = await page.$$eval('main table tbody tr td:first-child',
	    (tds) => tds.map((td) => td.childNodes[0].textContent.trim()));
	assert.equal(titles.length, 7);
	assert.ok(titles.includes('Acme Mug No. 4'), titles.join(', '));
	assert.ok(titles.includes(XSS), titles.join(', '));
	assert.equal(await page.locator('main script').count(), 0);
	// Once done, the page stops reloading itself.
	const again = await page.reload();
	assert.equal(again.headers().refresh, undefined);
	await shot(page, 'sync-done');

	// A shipping rate, so agents can buy.
	await page.click('nav >> text=Settings');
	await page.waitForURL(/\/dashboard\/settings/);
	const ship = page.locator('form[action="/dashboard/settings/shipping"]');
	await ship.locator('input[name=country]').fill('US');
	await ship.locator('input[name=rate]').fill('5.00');
	await Promise.all([page.waitForURL(/\/dashboard\/settings/),
	    ship.locator('button').click()]);
	await page.waitForSelector('td:text-is("US")');
	await shot(page, 'settings');

	// The synced catalog on the products page, with the sync's state.
	await page.click('nav >> text=Products');
	await page.waitForSelector('td >> text=Acme Mug No. 4');
	assert.match(await page.textContent('main'), /7 products, 7 active/);
	assert.match(await page.textContent('main'), /Catalog sync from pivota-fake\.myshopify\.com\s*done/);
	await shot(page, 'products');

	// An agent buys the synced mug through the agent API, paying with
	// the Stripe fake.  No allow-list: it may buy from every merchant.
	const agent = ctl('agent', 'create', '--name', 'Browser Agent');
	const found = await agentCall(agent.api_key, 'GET',
	    `/agent/v1/products/search?merchant_id=${merchant}&q=mug`);
	const mug = found.products[0];
	assert.equal(mug.title, 'Acme Mug No. 4');
	const product = mug.id;
	const order = await agentCall(agent.api_key, 'POST',
	    '/agent/v1/orders/create', {
		merchant_id: merchant, customer_email: 'buyer@test.example',
		items: [{ product_id: product, variant_id: mug.variants[0].id,
		    quantity: 2 }],
		shipping_address: { name: 'Buyer', address_line1: '1 Main St',
		    city: 'Town', postal_code: '12345', country: 'US' },
	    });
	const paid = await agentCall(agent.api_key, 'POST',
	    '/agent/v1/payments', { order_id: order.order_id,
		payment_method: { type: 'card', token: 'pm_card_visa' } });
	console.log(`browser: order ${order.order_id} payment ${JSON.stringify(paid).slice(0, 200)}`);

	// The order appears in the list, and its page shows it.
	await page.click('nav >> text=Orders');
	await page.waitForURL(/\/dashboard\/orders/);
	const row = page.locator('tbody tr', { hasText: order.order_id });
	await row.waitFor();
	// Paid, or processing once the worker has pushed it to the store.
	assert.match(await row.textContent(), /paid|processing/i);
	await shot(page, 'orders');
	await Promise.all([page.waitForURL(/\/dashboard\/orders\/./),
	    row.locator('a').first().click()]);
	await page.waitForSelector('text=Acme Mug No. 4');
	assert.match(await page.textContent('main'), /buyer@test\.example/);
	assert.match(await page.textContent('main'), /Browser Agent/);
	// The worker pushes the paid order to the store (order.push).
	await reloadUntil(page, (t) => /Store order\s*gid:\/\/shopify\/Order\/\d+/.test(t),
	    'the order in the store');
	assert.match(await page.textContent('main'), /Push\s*done/);
	const pushed = await shopFake('GET', '/__fake/orders');
	assert.equal(pushed.orders.length, 1);
	assert.ok(pushed.orders[0].tags.includes(order.order_id), JSON.stringify(pushed.orders[0].tags));
	await shot(page, 'order');

	// No store platform: mark it shipped, then delivered, from the
	// order page; the same shipment rules and events as Shopify's.
	const orderUrl = page.url();
	await page.selectOption('#ship_status', 'in_transit');
	await page.fill('#carrier', 'UPS');
	await page.fill('#tracking_number', '1Z999AA10123456784');
	await page.fill('#tracking_url', 'https://track.example/1Z999AA10123456784');
	await Promise.all([page.waitForURL(/\?m=shipped/),
	    page.click('form[action$="/ship"] button')]);
	assert.match(await page.textContent('main'), /1Z999AA10123456784/);
	assert.match(await page.textContent('main'), /shipment\.created/);
	await shot(page, 'order-shipped');
	await page.selectOption('#ship_status', 'delivered');
	await Promise.all([page.waitForURL(/\?m=shipped/),
	    page.click('form[action$="/ship"] button')]);
	assert.match(await page.textContent('main'), /fulfilment (delivered|fulfilled)/);
	const tracked = await agentCall(agent.api_key, 'GET',
	    `/agent/v1/orders/${order.order_id}`);
	console.log(`browser: agent sees ${JSON.stringify(tracked).slice(0, 300)}`);
	assert.match(JSON.stringify(tracked), /1Z999AA10123456784/);
	await shot(page, 'order-delivered');
	await page.goto(orderUrl);

	// Refund part of it from the order page: the money goes back
	// through the provider (the Stripe fake) and the totals follow.
	await page.fill('#amount', '10.00');
	await page.fill('#reason', 'one mug arrived chipped');
	await Promise.all([page.waitForURL(/\?m=refund(ed|_pending)/),
	    page.click('form[action$="/refund"] button')]);
	assert.match(await page.textContent('main'), /Refunded\s*10\.00 USD/);
	const refunded = await agentCall(agent.api_key, 'GET',
	    `/agent/v1/orders/${order.order_id}`);
	assert.equal(refunded.order.refunded_total, '10.00');
	assert.equal(refunded.order.status, 'partially_refunded');
	// Events in their order (seq 10 after seq 9, not after seq 1).
	const events = await page.textContent('ol.events');
	assert.ok(events.indexOf('order.paid') < events.indexOf('refund.created'),
	    'events out of order: ' + events);
	await shot(page, 'order-refunded');

	// The overview's totals and charts changed.
	await page.click('nav >> text=Overview');
	await page.waitForSelector('dl.stats');
	const after = await stats(page);
	assert.equal(after['Paid orders'], '1');
	assert.equal(after.GMV, paid.amount);
	assert.equal(after.GMV, after['Average order']);
	assert.equal(after.Refunds, '10.00');
	assert.match(await page.textContent('main'), /Browser Agent/);
	const chartsAfter = await charts(page);
	assert.notDeepEqual(chartsAfter, chartsBefore);
	await shot(page, 'overview');

	// The agents page: the agent, its volume; block it and it can
	// neither find the merchant's products nor order; allow it again.
	await page.click('nav >> text=Agents');
	await page.waitForURL(/\/dashboard\/agents/);
	const arow = page.locator('tbody tr', { hasText: agent.agent_id });
	assert.match(await arow.textContent(), new RegExp(
	    `Browser Agent[\\s\\S]*USD[\\s\\S]*1[\\s\\S]*1[\\s\\S]*${paid.amount.replace('.', '\\.')}[\\s\\S]*allowed`));
	await shot(page, 'agents');
	await Promise.all([page.waitForURL(/agents\?m=blocked/),
	    arow.locator('button:text("Block")').click()]);
	assert.match(await arow.textContent(), /blocked/);
	await shot(page, 'agents-blocked');
	const hidden = await agentCall(agent.api_key, 'GET',
	    `/agent/v1/products/search?q=mug`);
	assert.equal(hidden.products.filter((p) => p.id === product).length, 0);
	const refused = await fetch(BASE + '/agent/v1/orders/create', {
		method: 'POST', headers: { 'X-API-Key': agent.api_key,
		    'Content-Type': 'application/json' },
		body: JSON.stringify({ merchant_id: merchant,
		    customer_email: 'buyer@test.example',
		    items: [{ product_id: product, quantity: 1 }],
		    shipping_address: { name: 'Buyer', address_line1: '1 Main St',
			city: 'Town', postal_code: '12345', country: 'US' } }),
	});
	// As for a merchant outside the agent's allow-list.
	const why = await refused.text();
	assert.equal(refused.status, 400, why);
	assert.match(why, /may buy from/);
	await Promise.all([page.waitForURL(/agents\?m=allowed/),
	    arow.locator('button:text("Allow")').click()]);
	assert.match(await arow.textContent(), /allowed/);
	const back = await agentCall(agent.api_key, 'GET',
	    `/agent/v1/products/search?q=mug`);
	assert.equal(back.products.filter((p) => p.id === product).length, 1);

	assert.deepEqual(errors, []);
	console.log(`browser: passed in ${((Date.now() - started) / 1000).toFixed(1)}s`);
} finally {
	await browser.close();
}
