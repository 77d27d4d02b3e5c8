import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/db/embedded.js";
import { createTestDatabase } from "../helpers/db.js";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = join(import.meta.dirname, "..", "..");
const ARTIFACTS = join(ROOT, "test", "artifacts");

let server: ChildProcess | undefined;
let browser: Browser | undefined;
let base = "";
let drop: (() => Promise<void>) | undefined;
const admin = `jl_test_${randomBytes(16).toString("hex")}`;

async function api<T = Record<string, unknown>>(path: string, body?: unknown, key = admin): Promise<{ status: number; body: T }> {
  const r = await fetch(base + path, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as T };
}

beforeAll(async () => {
  const db = await createTestDatabase("dashboard");
  drop = db.drop;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, [join(ROOT, "bin", "jobline.js"), "serve"], {
    env: { ...process.env, DATABASE_URL: db.url, PORT: String(port), JOBLINE_BOOTSTRAP_KEY: admin, LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`${base}/readyz`).then((r) => r.ok).catch(() => false))) {
    if (Date.now() > deadline) throw new Error("server did not become ready");
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once("exit", r));
    server.kill("SIGTERM");
    const t = setTimeout(() => server!.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  }
  await drop?.();
});

describe("dashboard in a real browser", () => {
  // Skipped only on a dev machine without chromium; CI installs it, so there it must run.
  it.skipIf(!existsSync(CHROMIUM) && !process.env.CI)("shows queues, failures, running batches and a job lookup", async () => {
    // A seeded workload: 5 emails queued, 2 succeeded, 2 failed for good; a running batch of 4.
    const sub = (queue: string, kind = "k") => api<{ id: string }>("/v1/jobs", { tenant: "acme", queue, kind, payload: {} });
    for (let i = 0; i < 9; i++) await sub("emails");
    for (let i = 0; i < 4; i++) {
      const claimed = await api<{ jobs: { id: string; leaseToken: string }[] }>("/v1/process-next", { queues: ["emails"], workerId: "w" });
      const j = claimed.body.jobs[0]!;
      if (i < 2) await api(`/v1/jobs/${j.id}/complete`, { leaseToken: j.leaseToken, result: { ok: true } });
      else await api(`/v1/jobs/${j.id}/fail`, { leaseToken: j.leaseToken, error: { message: `smtp refused ${i}` }, retryable: false });
    }
    const batch = await api<{ id: string }>("/v1/batches", { tenant: "acme", jobs: Array.from({ length: 4 }, () => ({ queue: "reports", kind: "r" })) });
    expect(batch.status).toBe(201);
    const bj = await api<{ jobs: { id: string; leaseToken: string }[] }>("/v1/process-next", { queues: ["reports"], workerId: "w", max: 1 });
    await api(`/v1/jobs/${bj.body.jobs[0]!.id}/complete`, { leaseToken: bj.body.jobs[0]!.leaseToken });

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${base}/dashboard`);
    await page.fill("#api-key", admin);
    await page.click("#save-key");

    const emails = page.locator('#queues tbody tr[data-queue="emails"]');
    await emails.waitFor({ timeout: 15_000 });
    await expect.poll(() => emails.textContent(), { timeout: 15_000 }).toMatch(/5/);
    await expect.poll(() => page.locator("#failures tbody tr").count(), { timeout: 15_000 }).toBe(2);
    expect(await page.locator("#failures").textContent()).toContain("smtp refused");
    const b = page.locator(`#batches .batch[data-batch-id="${batch.body.id}"]`);
    await b.waitFor({ timeout: 15_000 });
    expect(await b.locator(".progress").count()).toBe(1);
    expect(await page.locator("#throughput svg").count()).toBe(1);

    const failedId = (await api<{ items: { id: string }[] }>("/v1/jobs?status=failed&limit=1")).body.items[0]!.id;
    await page.fill("#lookup-id", failedId);
    await page.click("#lookup-btn");
    await expect.poll(() => page.locator("#lookup-result").textContent(), { timeout: 10_000 }).toContain(failedId);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
  });
});
