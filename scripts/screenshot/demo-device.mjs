// Screenshot of the HSI camera's device page in a real, logged-in Home Assistant frontend.
//
//   node scripts/screenshot/demo-device.mjs [OUTPUT.png]      (make demo-screenshot)
//
// Starts scripts/demo.py on free ports (its own folder .demo/screenshot), waits for the device
// link it prints, logs in with Debian's chromium through playwright-core, waits until the HSI
// entities are rendered, saves the picture, then stops the demo with SIGINT.
import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const output = resolve(process.argv[2] ?? resolve(root, "docs/img/demo-device.png"));
const python = process.env.HSI_SERVER_PYTHON ?? resolve(root, ".venv/server/bin/python");
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

function startDemo() {
  const demo = spawn(
    python,
    ["scripts/demo.py", "--ha-port", "0", "--server-port", "0", "--dir", ".demo/screenshot"],
    { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
  );
  const ready = new Promise((resolveReady, reject) => {
    let seen = "";
    demo.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      seen += chunk;
      const match = seen.match(/Camera device:\s+(\S+)/);
      if (match) resolveReady(match[1]);
    });
    demo.on("exit", (code) => reject(new Error(`scripts/demo.py exited with ${code}`)));
  });
  return { demo, ready };
}

async function stopDemo(demo) {
  if (demo.exitCode !== null) return;
  const exited = new Promise((r) => demo.once("exit", r));
  demo.kill("SIGINT");
  await exited;
}

const { demo, ready } = startDemo();
let browser;
try {
  const deviceUrl = await ready;
  browser = await chromium.launch({
    executablePath: browserPath,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
  await page.goto(deviceUrl);
  // The login form (Playwright's CSS locators pierce the frontend's shadow roots).
  await page.locator("input[name=username]").fill("demo");
  await page.locator("input[name=password]").fill("demo-password");
  await page.locator("input[name=password]").press("Enter");
  await page.waitForURL(/\/config\/devices\/device\//, { timeout: 60_000 });
  // The device page is rendered once the HSI entities show up.
  await page.getByText("Risk score").first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(2_000); // images, icons and the history card settle
  await page.screenshot({ path: output });
  console.log(`[screenshot] saved ${output}`);
} finally {
  if (browser) await browser.close();
  await stopDemo(demo);
}
