import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { inject } from "vitest";

export function adminUrl(): string {
  return inject("adminUrl");
}

export function urlFor(database: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

/** A fresh, migrated database cloned from the run's template (fast: a file copy). */
export async function createTestDatabase(label = "t"): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `${label.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${randomBytes(5).toString("hex")}`;
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  try {
    // CREATE DATABASE … TEMPLATE fails if another clone holds the template at that instant; retry.
    for (let i = 0; ; i++) {
      try {
        await admin.unsafe(`CREATE DATABASE ${name} TEMPLATE ${inject("templateDb")}`);
        break;
      } catch (e) {
        if (i > 50 || !/being accessed by other users/.test(String(e))) throw e;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  } finally {
    await admin.end();
  }
  return {
    url: urlFor(name),
    name,
    drop: async () => {
      const a = postgres(adminUrl(), { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await a.end();
    },
  };
}
