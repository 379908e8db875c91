// A headless Chromium for the viewer's browser test, driven from Python over stdin/stdout:
// one JSON request per line ({"id", "cmd", ...}), one JSON answer per line ({"id", "ok",
// "result"} or {"id", "ok": false, "error"}). Playwright (playwright-core, no bundled
// browser) drives the machine's Chromium at CHROMIUM_PATH.
"use strict";
const readline = require("readline");
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH,
    headless: true,
    // root in a container: no user namespaces for the sandbox; /dev/shm may be tiny.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems = [];   // script errors and dialogs: an injected script would show here
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("dialog", async (d) => { problems.push(`dialog: ${d.message()}`); await d.dismiss(); });
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });

  const commands = {
    async goto({ url }) {
      const response = await page.goto(url, { waitUntil: "load" });
      return { status: response ? response.status() : null, url: page.url() };
    },
    async click({ selector }) {
      await Promise.all([page.waitForNavigation({ waitUntil: "load" }),
                         page.locator(selector).first().click()]);
      return { url: page.url() };
    },
    async fill({ selector, value }) {
      await page.locator(selector).fill(value);
      return null;  // undefined would leave "result" out of the answer
    },
    async select({ selector, value }) {
      return page.locator(selector).selectOption(value);
    },
    async texts({ selector }) {
      return page.locator(selector).allInnerTexts();
    },
    async attrs({ selector, name }) {
      return page.locator(selector).evaluateAll(
        (els, n) => els.map((el) => el.getAttribute(n)), name);
    },
    async count({ selector }) {
      return page.locator(selector).count();
    },
    async evaluate({ expression }) {
      return page.evaluate(expression);
    },
    async screenshot({ path }) {
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async problems() {
      return problems.slice();
    },
    async version() {
      return browser.version();
    },
  };

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    let answer;
    try {
      if (request.cmd === "close") break;
      const run = commands[request.cmd];
      if (!run) throw new Error(`unknown command ${request.cmd}`);
      answer = { id: request.id, ok: true, result: await run(request) };
    } catch (e) {
      answer = { id: request.id, ok: false, error: String(e && e.stack || e) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  await browser.close();
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ id: null, ok: false, error: String(e && e.stack || e) })
                       + "\n");
  process.exit(1);
});
