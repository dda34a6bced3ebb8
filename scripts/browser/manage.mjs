// Drives the hosted manage page in headless Debian chromium (playwright-core, no downloaded
// browser). Run by crates/server/tests/browser.rs, which starts slotd, makes the booking and
// checks the API afterwards:
//
//   node scripts/browser/manage.mjs <manage url> <screenshot dir>
//
// Run 1 (1280 px): open the link, pick another zone, a day and a time, submit, see the success
//   page. Prints `RESCHEDULED <start>`.
// Run 2 (375 px): pick a time, print `TAKE <start>` and wait for `GO` on stdin (the test books
//   that time through the API meanwhile), submit, see "That time was just taken", click the first
//   offered time, see the success page. Prints `REBOOKED <start>`.
// Screenshots of the manage page, the taken message and the success page at 375 and 1280 px go
// to <screenshot dir>. Any failed expectation exits 1 with the reason on stderr.

import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [manageUrl, shots] = process.argv.slice(2);
if (!manageUrl || !shots) {
  console.error("usage: node manage.mjs <manage url> <screenshot dir>");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const WIDTHS = [375, 1280];

function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}

async function title(page) {
  return (await page.locator("h1").innerText()).trim();
}

/** Full-page screenshots at each width, then back to the page's own width. */
async function screenshots(page, name) {
  const own = page.viewportSize();
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    // Nothing may stick out sideways at any width.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow <= 0, `no horizontal scrolling on ${name} at ${width} px (overflow ${overflow} px)`);
    await page.screenshot({ path: `${shots}/${name}-${width}.png`, fullPage: true });
  }
  await page.setViewportSize(own);
}

/** Picks the first day link that is not the chosen one, then its first free time; answers its start. */
async function pickDayAndTime(page) {
  const days = page.locator("a.day:not([aria-current])");
  expect((await days.count()) > 0, "days with free times");
  const day = days.first();
  const label = await day.getAttribute("aria-label");
  await Promise.all([page.waitForURL(/day=/), day.click()]);
  const chosen = await page.locator("a.day[aria-current]").getAttribute("aria-label");
  expect(chosen === label, `the clicked day (${label}) to be the chosen one (${chosen})`);
  const chip = page.locator("label.chip").first();
  await chip.click();
  const radio = chip.locator("input[type=radio]");
  expect(await radio.isChecked(), "the clicked time to be checked");
  return await radio.getAttribute("value");
}

async function rescheduleRun(browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(manageUrl);
  expect((await title(page)) === "Your booking", "the manage page");
  expect((await page.locator(".chip.current").count()) <= 1, "at most one current time marked");
  // Another zone through the selector (a GET form): the choice stays in the URL.
  await page.selectOption("#tz", "Asia/Tokyo");
  await Promise.all([page.waitForURL(/tz=Asia%2FTokyo/), page.getByRole("button", { name: "Show times" }).click()]);
  expect((await page.locator("#tz").inputValue()) === "Asia/Tokyo", "Asia/Tokyo selected after the reload");
  expect((await page.locator("legend").innerText()).includes("(Asia/Tokyo)"), "times in Asia/Tokyo");
  await screenshots(page, "manage");
  const start = await pickDayAndTime(page);
  expect(page.url().includes("tz=Asia%2FTokyo"), "day links keep the zone");
  await page.locator("#reason").fill("Picked in a browser");
  // Keyboard focus is visible on the submit button.
  const submit = page.getByRole("button", { name: "Move my booking to this time" });
  await submit.focus();
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Tab");
  const outline = await submit.evaluate((el) => getComputedStyle(el).outlineStyle);
  expect(outline === "solid", `a visible focus ring on the submit button (outline ${outline})`);
  await Promise.all([page.waitForURL(/done=rescheduled/), submit.click()]);
  expect((await title(page)) === "Your booking has been moved", "the success page");
  expect(page.url().includes("tz=Asia%2FTokyo"), "the success page keeps the zone");
  expect((await page.locator(".notice.ok").innerText()).includes("Asia/Tokyo"), "the new time told in Asia/Tokyo");
  expect((await page.locator('a[href$=".ics"]').count()) > 0, "an .ics link");
  await screenshots(page, "success");
  console.log(`RESCHEDULED ${start}`);
  await page.close();
}

async function takenRun(browser) {
  const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
  await page.goto(manageUrl);
  const start = await pickDayAndTime(page);
  console.log(`TAKE ${start}`);
  const go = await stdinLines.next();
  expect(!go.done && go.value.trim() === "GO", `GO on stdin (got ${JSON.stringify(go.value)})`);
  await page.getByRole("button", { name: "Move my booking to this time" }).click();
  await page.waitForLoadState();
  const alert = page.getByRole("alert");
  expect((await alert.innerText()).includes("That time was just taken"), "the taken message");
  await screenshots(page, "taken");
  const offer = alert.locator("form").first();
  const rebooked = await offer.locator("input[name=start]").getAttribute("value");
  expect(rebooked && rebooked !== start, "an alternative other than the taken time");
  await Promise.all([page.waitForURL(/done=rescheduled/), offer.getByRole("button").click()]);
  expect((await title(page)) === "Your booking has been moved", "the success page after the alternative");
  console.log(`REBOOKED ${rebooked}`);
  await page.close();
}

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
try {
  await rescheduleRun(browser);
  await takenRun(browser);
} catch (error) {
  console.error(`browser test failed: ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdin.destroy();
}
