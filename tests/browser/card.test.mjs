// The security timeline card in the real frontend: added through the card picker and its
// editor, empty, live, detail and feedback, deep link, filters, 500 events, dark theme, phone
// width, and the media browser. One stack for the file; the tests run in order and share it.
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { startStack } from "./harness.mjs";

const DASHBOARD = "hsi-timeline";
const VIEW = `/${DASHBOARD}/0`;
let stack;
let analysisSwitch;

before(async () => {
  stack = await startStack("card");
  // A dashboard of our own (storage mode), with one empty masonry view.
  await stack.ws({
    type: "lovelace/dashboards/create",
    url_path: DASHBOARD,
    title: "Security",
    mode: "storage",
    require_admin: false,
    show_in_sidebar: true,
  });
  await stack.ws({
    type: "lovelace/config/save",
    url_path: DASHBOARD,
    config: { views: [{ title: "Timeline", path: "timeline", cards: [] }] },
  });
  const entities = await stack.ws({ type: "config/entity_registry/list" });
  analysisSwitch = entities.find(
    (e) => e.platform === "hsi" && e.entity_id.startsWith("switch.") && e.translation_key === "analysis",
  )?.entity_id;
});

afterEach(async (t) => {
  await stack?.closePages(t.name);
});

after(async () => {
  await stack?.stop();
});

/** The card's shadow content (Playwright's CSS locators pierce shadow roots). */
const card = (page) => page.locator("hsi-timeline-card");
const rows = (page) => card(page).locator("button.row");

async function openDashboard(page, query = "") {
  await stack.open(page, `${VIEW}${query}`);
  await card(page).locator("ha-card").waitFor();
  // The first page is in once the loading line is gone.
  await card(page).locator(".loading").waitFor({ state: "detached" });
}

async function savedCards() {
  const config = await stack.ws({ type: "lovelace/config", url_path: DASHBOARD });
  return config.views[0].cards;
}

test("the card is added through the card picker and its visual editor", async () => {
  const page = await stack.newPage();
  await stack.open(page, `${VIEW}?edit=1`);
  await page.getByRole("button", { name: /add card/i }).first().click();
  await page.locator("hui-card-picker").waitFor();
  // Listed among the custom cards (window.customCards), with a live preview.
  // (The picker lays an overlay over each card: the card itself takes the click.)
  await page.locator("hui-card-picker .card").filter({ hasText: "Security timeline" }).click();
  // The editor is ours, built from Home Assistant's own form.
  const editor = page.locator("hsi-timeline-card-editor");
  await editor.locator("ha-form").waitFor();
  await stack.screenshot(page, "editor");
  const title = editor.locator("ha-selector-text input, ha-textfield input").first();
  await title.fill("Front of the house");
  // The preview follows the editor.
  await page
    .locator("hui-dialog-edit-card hsi-timeline-card .title", { hasText: "Front of the house" })
    .waitFor();
  await page.getByRole("button", { name: /^save$/i }).click();
  await page.locator("hui-dialog-edit-card ha-dialog").waitFor({ state: "hidden" });
  let cards = [];
  for (let i = 0; i < 50 && !cards.length; i++) {
    cards = await savedCards();
    if (!cards.length) await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(cards, [{ type: "custom:hsi-timeline-card", title: "Front of the house" }]);
  stack.assertNoConsoleErrors(page);
});

test("with 0 events the card says so", async () => {
  if (analysisSwitch) await stack.callService("switch", "turn_off", { entity_id: analysisSwitch });
  // A fresh start: the reload makes the watcher forget the incident in progress (so the next
  // analysis is a new event with its own snapshot, not a repeat of one the history no longer
  // has) and publishes the batch it had open; then the history is cleared.
  await stack.rest("POST", `/api/config/config_entries/entry/${stack.entryId}/reload`);
  await stack.callService("hsi", "clear_history", {});
  const page = await stack.newPage();
  await openDashboard(page);
  await card(page).locator(".empty", { hasText: "No security events yet." }).waitFor();
  assert.equal(await rows(page).count(), 0);
  await stack.screenshot(page, "empty", card(page));
  stack.assertNoConsoleErrors(page);
});

let liveEvent;

test("an event appears live, its detail opens and takes feedback", async () => {
  const page = await stack.newPage();
  await openDashboard(page);
  assert.equal(await rows(page).count(), 0);
  // No reload: the subscription brings it.
  liveEvent = await stack.callService(
    "hsi",
    "analyze",
    { entity_id: stack.camera },
    { response: true },
  );
  const row = card(page).locator(`button.row[data-open="${liveEvent.event_id}"]`);
  await row.waitFor({ timeout: 30_000 });
  await row.locator(`.badge.level-${liveEvent.risk_level}`).waitFor();
  // The thumbnail loads through a signed path (no unauthenticated image URL exists).
  const thumb = row.locator("img.thumb");
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await thumb.elementHandle());
  assert.match(await thumb.getAttribute("src"), /\/api\/hsi\/events\/.+\?authSig=/);

  // Two more analyses of the scene as it goes on: the list as a household sees it.
  for (let i = 0; i < 2; i++) {
    const next = await stack.callService("hsi", "analyze", { entity_id: stack.camera }, { response: true });
    await card(page).locator(`button.row[data-open="${next.event_id}"]`).waitFor();
  }
  await stack.screenshot(page, "card-list", card(page));

  await row.click();
  const detail = card(page).locator(".detail");
  await detail.waitFor();
  const snapshot = detail.locator("img.snapshot");
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await snapshot.elementHandle());
  await detail.getByText(liveEvent.summary).first().waitFor();
  if (liveEvent.reasoning) await detail.getByText("Reasoning").waitFor();
  await stack.screenshot(page, "card-detail", card(page));

  await detail.locator('[data-feedback="acknowledge"]').click();
  await detail.locator('[data-feedback="unacknowledge"]').waitFor();
  await detail.locator('[data-feedback="keep"]').click();
  await detail.locator('[data-feedback="unkeep"]').waitFor();
  await detail.locator('[data-feedback="false_alarm"]').click();
  await detail.locator('[data-feedback="false_alarm"].on').waitFor();
  const { event } = await stack.ws({ type: "hsi/events/get", event_id: liveEvent.event_id });
  assert.equal(event.acknowledged, true);
  assert.equal(event.keep, true);
  assert.equal(event.false_alarm, true);

  // "This is …" with a name nobody enrolled: the API's refusal is shown, nothing changes.
  await detail.locator(".identity input").fill("Nobody");
  await detail.locator(".identity button").click();
  await page.locator("ha-toast, notification-manager").getByText(/not enrolled/).first().waitFor();
  const after = await stack.ws({ type: "hsi/events/get", event_id: liveEvent.event_id });
  assert.equal(after.event.identity, null);
  // With the name enrolled (from the camera, as a user would), the same feedback names the
  // visitor: the event says who it was.
  await stack.callService("hsi", "enroll", { name: "Alex", entity_id: stack.camera });
  await detail.locator(".identity input").fill("Alex");
  await detail.locator(".identity button").click();
  await detail.locator(".marks", { hasText: "Alex" }).waitFor();
  const named = await stack.ws({ type: "hsi/events/get", event_id: liveEvent.event_id });
  assert.equal(named.event.identity, "Alex");

  await card(page).locator(".back").click();
  await row.waitFor();

  // The connection drops and comes back: the card subscribes again and stays live (an event
  // acknowledged elsewhere, e.g. from a notification, turns read in the card).
  await stack.ws({ type: "hsi/events/feedback", event_id: liveEvent.event_id, action: "unacknowledge" });
  await card(page).locator(`button.row.unread[data-open="${liveEvent.event_id}"]`).waitFor();
  await page.evaluate(() => {
    const { connection } = document.querySelector("home-assistant").hass;
    window.hsiReconnected = new Promise((r) => connection.addEventListener("ready", r));
    connection.socket.close();
  });
  await page.evaluate(() => window.hsiReconnected);
  await stack.ws({ type: "hsi/events/feedback", event_id: liveEvent.event_id, action: "acknowledge" });
  await card(page).locator(`button.row.unread[data-open="${liveEvent.event_id}"]`).waitFor({ state: "detached" });
  // The frontend itself rejects a plain object ("uncaught: Object") after its socket dropped, on
  // any page (seen on /config/integrations, no card there): not the card's, so it is let go.
  page.consoleErrors = page.consoleErrors.filter((text) => text !== "uncaught: Object");
  stack.assertNoConsoleErrors(page);
});

test("a deep link opens the event", async () => {
  const page = await stack.newPage();
  await openDashboard(page, `?hsi_event=${liveEvent.event_id}`);
  await card(page).locator(".detail img.snapshot").waitFor();
  await card(page).locator(".detail").getByText(liveEvent.summary).first().waitFor();
  stack.assertNoConsoleErrors(page);
});

test("an image whose signed link stopped working is fetched again with a fresh one", async () => {
  const page = await stack.newPage();
  // The first request for the live event's snapshot fails as an expired signature does (401).
  let refused = 0;
  await page.route(`**/api/hsi/events/${liveEvent.event_id}/snapshot.jpg*`, (route) =>
    refused++ ? route.continue() : route.fulfill({ status: 401, body: "" }),
  );
  await openDashboard(page);
  const thumb = card(page).locator(`button.row[data-open="${liveEvent.event_id}"] img.thumb`);
  await page.waitForFunction(
    ([el, id]) => {
      const img = el.shadowRoot.querySelector(`button.row[data-open="${id}"] img.thumb`);
      return img && img.complete && img.naturalWidth > 0;
    },
    [await card(page).elementHandle(), liveEvent.event_id],
  );
  assert.equal(refused, 2, "refused once, then loaded");
  assert.ok(await thumb.isVisible());
  // The refused request is the one error the browser reports.
  assert.equal(page.consoleErrors.length, 1);
  assert.match(page.consoleErrors[0], /401/);
});

test("dark theme and phone width", async () => {
  const dark = await stack.newPage({ colorScheme: "dark" });
  await openDashboard(dark);
  await rows(dark).first().waitFor();
  const background = await card(dark)
    .locator("ha-card")
    .evaluate((el) => getComputedStyle(el).backgroundColor);
  const [r, g, b] = background.match(/\d+/g).map(Number);
  assert.ok(r + g + b < 200, `a dark card background, got ${background}`);
  await stack.screenshot(dark, "card-dark", card(dark));
  stack.assertNoConsoleErrors(dark);

  const phone = await stack.newPage({
    viewport: { width: 375, height: 812 },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 2,
  });
  await openDashboard(phone);
  await rows(phone).first().waitFor();
  // Nothing wider than the screen: no horizontal scrolling on a phone.
  const overflow = await card(phone)
    .locator("ha-card")
    .evaluate((el) => el.scrollWidth - el.clientWidth);
  assert.ok(overflow <= 0, `the card overflows by ${overflow}px`);
  await stack.screenshot(phone, "card-phone");
  await rows(phone).filter({ has: phone.locator("img.thumb") }).first().click();
  await card(phone).locator(".detail img.snapshot").waitFor();
  await stack.screenshot(phone, "card-phone-detail");
  stack.assertNoConsoleErrors(phone);
});

test("500 events: pages load as the list scrolls, filters narrow it", async () => {
  const seeded = await stack.callService("hsi_testing", "seed_events", { count: 500 }, { response: true });
  assert.equal(seeded.added, 500);
  const page = await stack.newPage();
  await openDashboard(page);
  assert.equal(await rows(page).count(), 25);
  // Scrolling to the end loads the next page (cursor paging), and again.
  for (const expected of [50, 75]) {
    await card(page).locator(".list").evaluate((list) => list.scrollTo(0, list.scrollHeight));
    await page.waitForFunction(
      ([el, n]) => el.shadowRoot.querySelectorAll("button.row").length >= n,
      [await card(page).elementHandle(), expected],
    );
  }
  await card(page).locator(".load-more").click();
  await page.waitForFunction(
    (el) => el.shadowRoot.querySelectorAll("button.row").length >= 100,
    await card(page).elementHandle(),
  );
  const ids = await rows(page).evaluateAll((els) => els.map((el) => el.dataset.open));
  assert.equal(new Set(ids).size, ids.length, "no event listed twice");

  // Deep in the list, an event and back: the same place, not the top.
  const list = card(page).locator(".list");
  const where = await list.evaluate((el) => {
    el.scrollTop = 1500;
    const at = el.scrollTop;
    // A row in view there, clicked as a user would (no scrolling on the way).
    [...el.querySelectorAll("button.row")].find((row) => row.offsetTop >= at).click();
    return at;
  });
  assert.equal(where, 1500);
  await card(page).locator(".detail").waitFor();
  await card(page).locator(".back").click();
  assert.equal(await card(page).locator(".list").evaluate((el) => el.scrollTop), where);

  // The filter changed twice in a row (the first one's page still on its way) ends in a list.
  await card(page)
    .locator("select.level-filter")
    .evaluate((first) => {
      const root = first.getRootNode(); // each change renders the pickers anew
      for (const level of ["medium", "high"]) {
        const select = root.querySelector("select.level-filter");
        select.value = level;
        select.dispatchEvent(new Event("change", { bubbles: true, composed: true }));
      }
    });
  await card(page).locator("button.row .badge.level-high").first().waitFor();
  // Minimum level: only critical events are left.
  await card(page).locator("select.level-filter").selectOption("critical");
  await page.waitForFunction((el) => {
    const badges = [...el.shadowRoot.querySelectorAll("button.row .badge")];
    return badges.length > 0 && badges.every((b) => b.classList.contains("level-critical"));
  }, await card(page).elementHandle());
  // One camera (the only one configured): events are still there.
  const cameras = await stack.ws({ type: "hsi/cameras" });
  await card(page).locator("select.camera-filter").selectOption(cameras.cameras[0].camera_id);
  await rows(page).first().waitFor();
  await stack.screenshot(page, "card-500-critical", card(page));
  stack.assertNoConsoleErrors(page);
});

test("in a sections view the card takes its grid size and scrolls inside it", async () => {
  const config = await stack.ws({ type: "lovelace/config", url_path: DASHBOARD });
  config.views.push({
    type: "sections",
    title: "Sections",
    path: "sections",
    sections: [{ type: "grid", cards: [{ type: "custom:hsi-timeline-card" }] }],
  });
  await stack.ws({ type: "lovelace/config/save", url_path: DASHBOARD, config });
  const page = await stack.newPage();
  await stack.open(page, `/${DASHBOARD}/sections`);
  await rows(page).first().waitFor();
  // getGridOptions: 12 columns by 6 rows (56 px rows, 8 px gaps), the list scrolling within.
  const box = await card(page).boundingBox();
  assert.ok(box.height > 340 && box.height < 420, `card height ${box.height}`);
  const list = await card(page)
    .locator(".list")
    .evaluate((el) => ({ scroll: el.scrollHeight, client: el.clientHeight }));
  assert.ok(list.scroll > list.client, "the 500 events scroll inside the card");
  await stack.screenshot(page, "card-sections");
  stack.assertNoConsoleErrors(page);
});

test("the media browser shows the HSI events", async () => {
  const page = await stack.newPage();
  await stack.open(page, "/media-browser/browser");
  const hsi = page.locator("ha-media-player-browse").getByText(/security|hsi/i).first();
  await hsi.waitFor({ timeout: 30_000 });
  await hsi.click();
  await page.locator("ha-media-player-browse").getByText("Demo camera").first().waitFor();
  await stack.screenshot(page, "media-browser");
  stack.assertNoConsoleErrors(page);
});
