// The harness itself: the stack starts, the login form works, tokens work for a second page, REST
// and websocket calls go through as the logged-in user, console errors are seen.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "./harness.mjs";

let stack;
before(async () => {
  stack = await startStack("harness");
});
after(async () => {
  await stack?.stop();
});

test("the login form leads to the dashboard", async () => {
  const page = await stack.newPage({ login: "form" });
  await page.goto(stack.url("/"));
  await stack.loginWithForm(page);
  assert.match(page.url(), /\/lovelace/);
  await page.locator("hui-view").waitFor();
  await stack.screenshot(page, "dashboard");
  stack.assertNoConsoleErrors(page);
});

test("a page with injected tokens opens logged in; REST and websocket answer", async () => {
  const page = await stack.newPage();
  await stack.open(page, "/config/integrations/integration/hsi");
  const user = await page.evaluate(() => document.querySelector("home-assistant").hass.user.name);
  assert.equal(user, "Demo");
  const state = await stack.rest("GET", `/api/states/${stack.camera}`);
  assert.equal(state.entity_id, stack.camera);
  const me = await stack.ws({ type: "auth/current_user" });
  assert.equal(me.name, "Demo");
  await assert.rejects(stack.ws({ type: "no/such/command" }), { code: "unknown_command" });
  stack.assertNoConsoleErrors(page);
});

test("console errors are collected", async () => {
  const page = await stack.newPage();
  await stack.open(page, "/lovelace/0");
  await page.evaluate(() => console.error("a deliberate error"));
  assert.equal(page.consoleErrors.length, 1);
  assert.match(page.consoleErrors[0], /a deliberate error/);
});

test("uncaught errors are collected; the theme-race filter takes only HA's bundle frame", async () => {
  const page = await stack.newPage();
  await stack.open(page, "/lovelace/0");
  // The same message as the race, thrown from the page rather than from HA's bundle: collected.
  await page.evaluate(() => {
    setTimeout(() => {
      throw new TypeError("Cannot read properties of null (reading 'recovery_mode')");
    });
  });
  await expectErrors(page, 1);
  assert.match(page.consoleErrors[0], /^uncaught: TypeError: .*recovery_mode/);
});

async function expectErrors(page, count) {
  for (let i = 0; i < 50 && page.consoleErrors.length < count; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(page.consoleErrors.length, count, page.consoleErrors.join("\n"));
}
