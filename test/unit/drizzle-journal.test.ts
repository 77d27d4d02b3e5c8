import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

// drizzle-kit generate refuses a snapshot chain with two children of one parent, and the
// migrator skips an entry whose `when` is not above the last applied one: keep both straight.
const dir = new URL("../../drizzle/", import.meta.url);
const journal = JSON.parse(readFileSync(new URL("meta/_journal.json", dir), "utf8")) as {
  entries: Array<{ idx: number; tag: string; when: number }>;
};
const snapshot = (tag: string) =>
  JSON.parse(readFileSync(new URL(`meta/${tag.slice(0, 4)}_snapshot.json`, dir), "utf8")) as { id: string; prevId: string };

describe("drizzle migrations", () => {
  it("are listed in file order with increasing `when`", () => {
    const tags = journal.entries.map((e) => e.tag);
    expect(tags).toEqual([...tags].sort());
    for (let i = 1; i < journal.entries.length; i++) expect(journal.entries[i]!.when).toBeGreaterThan(journal.entries[i - 1]!.when);
    for (const e of journal.entries) expect(readFileSync(new URL(`${e.tag}.sql`, dir), "utf8").length).toBeGreaterThan(0);
  });

  it("have snapshots that form one chain (each points to the one before)", () => {
    const snaps = journal.entries.map((e) => snapshot(e.tag));
    for (let i = 1; i < snaps.length; i++) expect(snaps[i]!.prevId, journal.entries[i]!.tag).toBe(snaps[i - 1]!.id);
  });
});
