// The alerts part of the options dialog in the real frontend, and every HSI text as the frontend
// formats it. Caught before: "Translation error: UNCLOSED_TAG" under *Notify action* (the text
// `notify.<this>` in strings.json) and a free-text field instead of a picker of notify actions.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "./harness.mjs";

let stack;

before(async () => {
  stack = await startStack("alerts");
});

after(async () => {
  await stack?.stop();
});

test("every HSI text formats in the frontend (no 'Translation error')", async () => {
  const page = await stack.newPage();
  await stack.open(page, "/lovelace/0");
  const broken = await page.evaluate(async () => {
    const hass = document.querySelector("home-assistant").hass;
    const categories = [
      "config",
      "config_subentries",
      "options",
      "entity",
      "selector",
      "services",
      "exceptions",
      "issues",
      "device_automation",
    ];
    let localize = hass.localize;
    for (const category of categories) {
      localize = await hass.loadBackendTranslation(category, "hsi");
    }
    // Any placeholder gets a value: only texts the frontend cannot parse fail.
    const values = new Proxy({}, { get: (_target, name) => (typeof name === "string" ? "x" : undefined) });
    // Loading made a new hass object (new resources): read the current one.
    const current = document.querySelector("home-assistant").hass;
    const keys = Object.keys(current.resources?.[current.language] ?? {}).filter((key) =>
      key.startsWith("component.hsi."),
    );
    return {
      count: keys.length,
      errors: keys
        .map((key) => [key, localize(key, values)])
        .filter(([, text]) => String(text).startsWith("Translation error")),
    };
  });
  assert.ok(broken.count > 100, `only ${broken.count} HSI texts loaded`);
  assert.deepEqual(broken.errors, []);
});

test("the options dialog: notify targets are a picker, alerts are a section", async () => {
  // Tall enough for the whole alerts section in one screenshot (docs/img/options-alerts.png).
  const page = await stack.newPage({ viewport: { width: 1280, height: 2600 } });
  await stack.open(page, "/config/integrations/integration/hsi");
  await page.getByRole("button", { name: /^configure$/i }).first().click();
  const dialog = page.locator("dialog-data-entry-flow");
  await dialog.locator("ha-form").first().waitFor();
  await dialog.getByText("Notify targets").first().waitFor();
  const text = await dialog.innerText();
  assert.doesNotMatch(text, /Translation error/);
  // A picker of the notify actions there are (a combo box with the actions listed), no text field.
  const picker = dialog.locator("ha-selector-select").filter({ hasText: "Notify targets" });
  assert.equal(await picker.count(), 1, "Notify targets is a select selector");
  assert.equal(
    await dialog.locator("ha-selector-text").filter({ hasText: "Notify" }).count(),
    0,
    "no free-text notify field",
  );
  // The alerts section, collapsed at first, opens to the routes per level.
  const alerts = dialog.locator("ha-form-expandable, ha-expansion-panel").filter({ hasText: "Alerts" });
  await alerts.first().getByText("Alerts", { exact: true }).first().click();
  await dialog.getByText("High risk", { exact: true }).first().waitFor();
  await dialog.getByText("Quiet hours from").first().waitFor();
  // The defaults are shown (Low: timeline only, Critical: critical), not empty required fields.
  const selects = alerts.first().locator("ha-selector-select");
  const shown = await selects.evaluateAll((all) => all.map((select) => select.value));
  assert.deepEqual(shown.slice(0, 4), ["timeline", "active", "time_sensitive", "critical"]);
  assert.doesNotMatch(await dialog.innerText(), /Translation error/);
  await stack.screenshot(page, "options-alerts");
  await alerts.first().scrollIntoViewIfNeeded();
  await stack.screenshot(page, "options-alerts-section", alerts.first());
  stack.assertNoConsoleErrors(page);
});

test("the camera shows its alert snooze, and snoozing it from the UI's action sticks", async () => {
  const entities = await stack.ws({ type: "config/entity_registry/list" });
  const snooze = entities.find(
    (e) => e.platform === "hsi" && e.translation_key === "snoozed_until",
  )?.entity_id;
  assert.ok(snooze, "a snooze entity per camera");
  const { cameras } = await stack.ws({ type: "hsi/cameras" });
  const camera = cameras[0].camera_entity;
  const response = await stack.callService(
    "hsi",
    "snooze",
    { entity_id: camera, duration: { hours: 2 } },
    { response: true },
  );
  const until = response.snoozed_until;
  assert.ok(until, JSON.stringify(response));
  const state = await stack.rest("GET", `/api/states/${snooze}`);
  assert.equal(new Date(state.state).getTime(), new Date(until).getTime());
  const page = await stack.newPage();
  const device = entities.find((e) => e.entity_id === snooze).device_id;
  await stack.open(page, `/config/devices/device/${device}`);
  await page.getByText("Snoozed until").first().waitFor();
  await stack.screenshot(page, "camera-device-snooze");
  await stack.callService("hsi", "snooze", { entity_id: camera, duration: 0 });
  stack.assertNoConsoleErrors(page);
});
