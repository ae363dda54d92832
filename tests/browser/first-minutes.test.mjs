// The first ten minutes of a new user (issue #8, section 6), in the real frontend: each test
// checks one thing found by trying `make demo` in Chromium, and would have caught it.
//
// The stack is scripts/demo.py: the demo scene's "Demo camera" watched (one analysis done, its
// alert in the notification drawer), "Demo garden" not watched yet.
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { startStack } from "./harness.mjs";

let stack;
before(async () => {
  stack = await startStack("first-minutes");
});
afterEach(async (t) => {
  await stack?.closePages(t.name);
});
after(async () => {
  await stack?.stop();
});

const TRANSLATION_ERROR = /Translation error/;

/** The integration page, with its entries listed. */
async function integrationPage() {
  const page = await stack.newPage();
  await stack.open(page, "/config/integrations/integration/hsi");
  await page.getByText("Demo camera", { exact: true }).waitFor();
  return page;
}

/** Open every collapsed section of the dialog's form, so all its texts render. */
async function expandSections(dialog) {
  for (const panel of await dialog.locator("ha-expansion-panel").all()) {
    if (!(await panel.evaluate((el) => el.expanded))) {
      await panel.locator(".summary, .top").first().click();
    }
  }
}

/** Elements whose text the browser cuts with an ellipsis, under `root` (shadow roots too). */
function truncatedTexts(root) {
  return root.evaluate((start) => {
    const cut = [];
    const walk = (node) => {
      for (const el of node.querySelectorAll("*")) {
        if (el.shadowRoot) walk(el.shadowRoot);
        const style = getComputedStyle(el);
        const text = el.textContent.trim();
        if (text && style.textOverflow === "ellipsis" && el.scrollWidth > el.clientWidth + 1) {
          cut.push(text.replace(/\s+/g, " "));
        }
      }
    };
    walk(start.shadowRoot ?? start);
    return cut;
  });
}

test("the integration page reads as a hub with its cameras; Add camera is offered", async () => {
  const page = await integrationPage();
  await page.getByText("Hubs", { exact: true }).waitFor();
  assert.equal(await page.getByText(/^Services$|add service/i).count(), 0);
  await stack.screenshot(page, "integration-page");
  // The server entry's menu has Add camera (HA 2025.4 keeps subentry flows there).
  await page.getByRole("button", { name: "Menu" }).first().click();
  await page.getByText("Add camera", { exact: true }).waitFor();
  await stack.screenshot(page, "integration-menu");
  stack.assertNoConsoleErrors(page);
});

test("adding a camera: watched ones are not offered, picking keeps the form, no trigger is refused", async () => {
  const page = await integrationPage();
  await page.getByRole("button", { name: "Menu" }).first().click();
  await page.getByText("Add camera", { exact: true }).click();
  const dialog = page.locator("dialog-data-entry-flow");
  await dialog.getByText("Watch a camera").waitFor();
  assert.equal(await dialog.getByText(TRANSLATION_ERROR).count(), 0);

  await dialog.locator("ha-entity-picker").first().click();
  const offered = await page.getByRole("option").filter({ hasText: /camera\./ }).allInnerTexts();
  assert.deepEqual(
    offered.map((text) => text.split(/\s+/).find((word) => word.startsWith("camera."))),
    ["camera.demo_garden"], // camera.demo_camera is watched already
  );
  await page.getByRole("option").filter({ hasText: "camera.demo_garden" }).click();
  // The form is still there, whole, with the camera picked.
  await dialog.getByText("Snapshots per trigger").waitFor();
  assert.equal(await dialog.locator("ha-entity-picker").first().evaluate((el) => el.value), "camera.demo_garden");
  await stack.screenshot(page, "add-camera-picked");

  // The defaults (no trigger, interval 0) would watch nothing: the form says so and stays.
  await dialog.getByRole("button", { name: /submit/i }).click();
  await dialog.getByText(/Pick a trigger or set an interval/).waitFor();
  assert.equal(await dialog.locator("ha-entity-picker").first().evaluate((el) => el.value), "camera.demo_garden");
  await stack.screenshot(page, "add-camera-no-trigger");
  assert.equal(await dialog.getByText(TRANSLATION_ERROR).count(), 0);
  stack.assertNoConsoleErrors(page);
});

test("the options dialog shows no translation error", async () => {
  const page = await integrationPage();
  await page.getByRole("button", { name: /configure/i }).first().click();
  const dialog = page.locator("dialog-data-entry-flow");
  await dialog.getByText("Event pipeline").waitFor();
  await expandSections(dialog);
  await stack.screenshot(page, "options");
  assert.equal(await dialog.getByText(TRANSLATION_ERROR).count(), 0);
  stack.assertNoConsoleErrors(page);
});

const DEVICE_VIEWPORTS = [
  ["desktop", { width: 1280, height: 900 }],
  ["phone", { width: 390, height: 844 }],
];

for (const [label, viewport] of DEVICE_VIEWPORTS) {
  test(`the camera's device page shows whole entity names and short states (${label})`, async () => {
    const page = await stack.newPage({ viewport });
    await stack.open(page, `/config/devices/device/${stack.deviceId}`);
    const device = page.locator("ha-config-device-page");
    await device.getByText("Last event", { exact: true }).waitFor();
    await stack.screenshot(page, `camera-device-${label}`);
    const names = [
      "Risk score",
      "Risk level",
      "Last event",
      "Snapshot",
      "People",
      "Vehicles",
      "Animals",
      "Threat",
      "Security event",
    ];
    const cut = await truncatedTexts(device);
    assert.deepEqual(
      cut.filter((text) => names.some((name) => text.includes(name))),
      [],
      `cut with an ellipsis: ${JSON.stringify(cut)}`,
    );
    // The headline, not the summary, is the state; the score reads as out of 100.
    const states = await stack.rest("GET", "/api/states/sensor.demo_camera_last_event");
    assert.match(states.state, /^(Low|Medium|High|Critical) · /);
    const score = await stack.rest("GET", "/api/states/sensor.demo_camera_risk_score");
    assert.equal(score.attributes.unit_of_measurement, "%");
    stack.assertNoConsoleErrors(page);
  });
}

test("the server device's Visit link opens the server's status page", async () => {
  const devices = await stack.ws({ type: "config/device_registry/list" });
  const server = devices.find((d) => d.config_entries.includes(stack.entryId) && d.configuration_url);
  assert.ok(server, "the server device has a configuration URL");
  const page = await stack.newPage();
  await stack.open(page, `/config/devices/device/${server.id}`);
  const visit = page.getByRole("link", { name: /visit/i }).first();
  await visit.waitFor();
  const href = await visit.getAttribute("href");
  assert.equal(href, stack.serverUrl);
  await stack.screenshot(page, "server-device");
  stack.assertNoConsoleErrors(page);
  // What the browser gets there, without any key: a page, not {"error": "unauthorized"}. (A
  // context of its own: the harness's pages reach nothing but Home Assistant.)
  const context = await stack.browser.newContext();
  try {
    const visited = await context.newPage();
    const response = await visited.goto(href);
    assert.equal(response.status(), 200);
    assert.match(response.headers()["content-type"], /^text\/html/);
    await visited.getByText("Home Security Intelligence AI server").waitFor();
    assert.equal(await visited.getByText("unauthorized").count(), 0);
    await stack.screenshot(visited, "server-status-page");
  } finally {
    await context.close();
  }
});

test("the media browser opens and lists the demo camera's events", async () => {
  const page = await stack.newPage();
  await stack.open(page, "/media-browser/browser");
  await page.getByText("Home Security Intelligence").first().click();
  await page.getByText("Demo camera").first().waitFor();
  await stack.screenshot(page, "media-browser");
  stack.assertNoConsoleErrors(page);
});

test("the demo's alert is in the notification drawer", async () => {
  const page = await stack.newPage();
  await stack.open(page, "/lovelace/0");
  await page.getByText("Notifications", { exact: true }).first().click();
  const drawer = page.locator("notification-drawer");
  await drawer.getByText(/Demo camera: (medium|high|critical) risk/).first().waitFor();
  await stack.screenshot(page, "notification-drawer");
  stack.assertNoConsoleErrors(page);
});
