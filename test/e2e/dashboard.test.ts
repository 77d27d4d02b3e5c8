import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./helpers/processes.js";
import { useJobline } from "./helpers/useJobline.js";
import { api as call } from "./helpers/util.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test", "artifacts");

const t = useJobline("dashboard");
const admin = t.admin;
let browser: Browser | undefined;
let base = "";

/** A POST as the platform admin (every call here creates or acts). */
const api = <T = Record<string, unknown>>(path: string, body: unknown): Promise<{ status: number; body: T }> => call(base, admin, "POST", path, body);

beforeAll(async () => {
  base = (await t.start("serve")).url;
});

afterAll(async () => {
  await browser?.close();
});

/** Every CSP violation, page error and console error fails the test at the end. */
async function watch(page: Page, problems: string[]) {
  await page.exposeFunction("__cspViolation", (d: string) => problems.push(`csp: ${d}`));
  // Injected by the browser driver, so the page's own CSP does not apply to this listener.
  await page.addInitScript(`document.addEventListener("securitypolicyviolation", (e) =>
    window.__cspViolation(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile + ":" + e.lineNumber));`);
  page.on("console", (m) => {
    // A failed request is reported by URL below; chromium's console line for it names none.
    if (/^Failed to load resource/.test(m.text())) return;
    if (m.type() === "error" || /Content.Security.Policy/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`http ${r.status()} ${r.url()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
}


async function shoot(page: Page, name: string) {
  await page.screenshot({ path: join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });
}

const PAGES = ["queues", "jobs", "batches", "schedules"] as const;

describe("dashboard in a real browser", () => {
  // Skipped only on a dev machine without chromium; CI installs it, so there it must run.
  it.skipIf(!existsSync(CHROMIUM) && !process.env.CI)("retries a failed job from its page, bulk-cancels a filtered selection, pauses a schedule; 390 px and CSP clean", async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const sub = (tenant: string, queue: string, kind = "k", extra = {}) =>
      api<{ id: string }>("/v1/jobs", { tenant, queue, kind, payload: { to: `${queue}@example.com` }, ...extra });
    // Two tenants with a queue of the same name: the platform key sees them apart.
    for (let i = 0; i < 3; i++) await sub("acme", "emails");
    for (let i = 0; i < 2; i++) await sub("globex", "emails");
    const failed = (await sub("acme", "reports", "pdf", { maxAttempts: 1 })).body.id;
    const claimed = await api<{ jobs: { id: string; leaseToken: string }[] }>("/v1/process-next", { queues: ["reports"], workerId: "w1" });
    expect(claimed.body.jobs[0]!.id).toBe(failed);
    await api(`/v1/jobs/${failed}/fail`, { leaseToken: claimed.body.jobs[0]!.leaseToken, error: { message: "smtp refused", code: "smtp" }, retryable: false });
    const cancelIds = [];
    for (let i = 0; i < 4; i++) cancelIds.push((await sub("acme", "bulkq", "cancel-me")).body.id);
    for (let i = 0; i < 3; i++) await sub("acme", "bulkq", "keep");
    const batch = await api<{ id: string }>("/v1/batches", { tenant: "acme", jobs: Array.from({ length: 4 }, () => ({ queue: "batchq", kind: "r" })) });
    expect(batch.status).toBe(201);
    const schedule = await api<{ id: string }>("/v1/schedules", { tenant: "acme", name: "nightly", cron: "0 3 * * *", job: { queue: "cron", kind: "sweep" } });
    expect(schedule.status).toBe(201);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    const problems: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await watch(page, problems);
    await page.goto(`${base}/dashboard`);
    await page.fill("#api-key", admin);
    await page.click("#save-key");

    // Queues: one row per (tenant, queue), with the tenant column.
    const emails = page.locator('#queues tbody tr[data-queue="emails"]');
    await expect.poll(() => emails.count(), { timeout: 15_000 }).toBe(2);
    expect(await page.locator('#queues tr[data-queue="emails"][data-tenant="acme"] [data-status="queued"]').textContent()).toBe("3");
    expect(await page.locator('#queues tr[data-queue="emails"][data-tenant="globex"] [data-status="queued"]').textContent()).toBe("2");
    expect(await page.locator('#queues tr[data-tenant="globex"] [data-role="tenant"]').textContent()).toBe("globex");
    // Chart labels are drawn at the page's pixel size (not a scaled-down drawing).
    const label = (await page.evaluate(`(() => {
      const t = document.querySelector("#throughput svg text.label"), svg = t.ownerSVGElement;
      return { size: parseFloat(getComputedStyle(t).fontSize), scale: svg.getBoundingClientRect().width / svg.viewBox.baseVal.width };
    })()`)) as { size: number; scale: number };
    expect(label.size).toBeGreaterThanOrEqual(12);
    expect(label.scale).toBeCloseTo(1, 1);

    // Retry the failed job from its detail page.
    await page.goto(`${base}/dashboard#/job/${failed}`);
    await page.locator('#job [data-action="retry"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#job [data-role="errors"]').textContent()).toContain("smtp refused");
    expect(await page.locator("#job .facts").textContent()).toMatch(/Queue\s*reports.*Kind\s*pdf/s);
    expect(await page.locator('#job [data-role="timeline"]').textContent()).toContain("attempt 1 failed (smtp)");
    await shoot(page, "job-desktop");
    await page.click('#job [data-action="retry"]');
    await expect.poll(async () => (await t.sql`SELECT status, attempts FROM jobs WHERE id = ${failed}`)[0], { timeout: 15_000 }).toEqual({ status: "queued", attempts: 0 });
    await page.locator('#job [data-action="cancel"]').waitFor({ timeout: 15_000 });

    // Bulk-cancel a filtered selection: queue bulkq, kind cancel-me.
    await page.goto(`${base}/dashboard#/jobs`);
    await page.fill('#job-filters input[name="queue"]', "bulkq");
    await page.fill('#job-filters input[name="kind"]', "cancel-me");
    await page.selectOption('#job-filters select[name="status"]', "queued");
    await page.click("#apply-filters");
    await expect.poll(() => page.locator("#jobs tbody tr").count(), { timeout: 15_000 }).toBe(4);
    await page.check('#jobs [data-role="select-all"]');
    expect(await page.locator('[data-role="selected-count"]').textContent()).toBe("4 selected");
    await page.click('#jobs [data-bulk="cancel"]');
    await page.locator("#confirm[open]").waitFor();
    expect(await page.locator("#confirm-text").textContent()).toBe("Cancel 4 selected jobs?");
    await page.click("#confirm-ok");
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 15_000 }).toContain("4 changed");
    const after = await t.sql`SELECT kind, status, count(*)::int AS n FROM jobs WHERE queue = 'bulkq' GROUP BY 1, 2 ORDER BY 1`;
    expect(after).toEqual([
      { kind: "cancel-me", status: "cancelled", n: 4 },
      { kind: "keep", status: "queued", n: 3 },
    ]);
    expect((await t.sql`SELECT id FROM jobs WHERE status = 'cancelled'`).map((r) => r.id).sort()).toEqual(cancelIds.sort());

    // Pause the schedule.
    await page.goto(`${base}/dashboard#/schedules`);
    const row = page.locator(`#schedules tr[data-schedule-id="${schedule.body.id}"]`);
    await row.locator('[data-action="pause"]').click();
    await expect.poll(async () => (await t.sql`SELECT paused FROM schedules WHERE id = ${schedule.body.id}`)[0]?.paused, { timeout: 15_000 }).toBe(true);
    await row.locator('[data-action="resume"]').waitFor({ timeout: 15_000 });

    // Queue controls: pause and resume acme's emails (not globex's), checked in the database.
    await page.goto(`${base}/dashboard#/queue/acme/emails`);
    const paused = () => t.sql`SELECT tenant, paused FROM queue_settings WHERE queue = 'emails' ORDER BY tenant`;
    await page.click('#queue [data-action="pause"]');
    await expect.poll(paused, { timeout: 15_000 }).toEqual([{ tenant: "acme", paused: true }]);
    await page.locator('#queue [data-action="resume"]').waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator('#queue [data-role="state"]').textContent(), { timeout: 15_000 }).toBe("paused");
    await page.fill('#queue form[data-role="limits"] input[name="concurrency"]', "3");
    await page.click('#queue form[data-role="limits"] button[type="submit"]');
    await expect.poll(async () => (await t.sql`SELECT concurrency, paused FROM queue_settings WHERE tenant = 'acme' AND queue = 'emails'`)[0], { timeout: 15_000 }).toEqual({ concurrency: 3, paused: true });
    await page.click('#queue [data-action="resume"]');
    await expect.poll(paused, { timeout: 15_000 }).toEqual([{ tenant: "acme", paused: false }]);

    // Batches list shows the running batch.
    await page.goto(`${base}/dashboard#/batches`);
    await page.locator(`#batches .batch[data-batch-id="${batch.body.id}"]`).waitFor({ timeout: 15_000 });

    // Every page at desktop and phone width: screenshots, and nothing wider than a 390 px screen.
    for (const [name, width] of [["desktop", 1280], ["390", 390]] as const) {
      await page.setViewportSize({ width, height: 844 });
      for (const p of [...PAGES, `job/${failed}`, "queue/acme/emails"]) {
        await page.goto(`${base}/dashboard#/${p}`);
        await expect.poll(() => page.locator("#status").textContent(), { timeout: 15_000 }).toMatch(/^updated/);
        await shoot(page, `${p.split("/")[0]}-${name}`);
        expect(await page.evaluate<string>("document.body.innerText"), p).not.toMatch(/\[object |\bnull\b|undefined/);
        if (width === 390) expect(await page.evaluate<number>("document.documentElement.scrollWidth"), p).toBeLessThanOrEqual(390);
      }
    }
    expect(problems).toEqual([]);
  });

  it.skipIf(!existsSync(CHROMIUM) && !process.env.CI)("shows progress, tags and dependencies when the server sends them, and nothing when it does not", async () => {
    // The fields other work adds (issue 27 points 4-5, issue 28) are layered onto this server's
    // real answer, so the page is checked both ways before and after they land.
    const job = (await api<{ id: string }>("/v1/jobs", { tenant: "acme", queue: "later", kind: "k" })).body.id;
    const page = await browser!.newPage({ viewport: { width: 390, height: 844 } });
    const problems: string[] = [];
    await watch(page, problems);
    await page.goto(`${base}/dashboard`);
    await page.fill("#api-key", admin);
    await page.click("#save-key");
    await page.goto(`${base}/dashboard#/job/${job}`);
    await page.locator('#job [data-action="cancel"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#job [data-role="progress"], #job [data-role="dependencies"], #job .badge.tag').count()).toBe(0);

    await page.route(`**/v1/jobs/${job}`, async (route) => {
      const real = await route.fetch();
      const extra = { progress: { percent: 40, message: "halfway there", data: { rows: 400 }, at: new Date().toISOString() }, tags: ["vip"], dependsOn: { jobs: [job], batches: [] }, pendingDependencies: 1 };
      await route.fulfill({ response: real, json: { ...(await real.json()), ...extra } });
    });
    await page.route(`**/v1/jobs/${job}/dependents`, (route) => route.fulfill({ json: { items: [{ id: job }] } }));
    await page.reload();
    await page.locator('#job [data-role="progress"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#job [data-role="progress"]').textContent()).toMatch(/Progress 40%.*halfway there.*"rows": 400/s);
    expect(await page.locator("#job .badge.tag").textContent()).toBe("vip");
    expect(await page.locator('#job [data-role="dependencies"]').textContent()).toMatch(/1 pending.*Depends on: job .*Dependents: /s);
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await shoot(page, "job-later-fields-390");
    await page.close();
    expect(problems).toEqual([]);
  });
});
