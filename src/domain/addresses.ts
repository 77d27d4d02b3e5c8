// Which destinations a tenant-supplied webhook URL may reach. No I/O.
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/**
 * True for every address that is not ordinary public unicast: loopback, private, link-local
 * (cloud metadata), CGNAT, unspecified, multicast, reserved, site-local, and the IPv6 forms
 * that embed or tunnel an IPv4 address (IPv4-compatible ::/96, NAT64, 6to4, Teredo), whose
 * target the guard cannot vouch for. ipaddr.js names the ranges; only its "unicast" passes.
 */
export function isBlockedAddress(address: string): boolean {
  if (isIP(address) === 0) return false;
  const a = ipaddr.parse(address);
  if (a.kind() === "ipv4") return a.range() !== "unicast";
  const v6 = a as ipaddr.IPv6;
  // ::ffff:a.b.c.d is a.b.c.d to the socket: judged by the IPv4 rules.
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().range() !== "unicast";
  // ::/96 (IPv4-compatible, deprecated by RFC 4291) is "unicast" to ipaddr.js.
  if (v6.parts.slice(0, 6).every((p) => p === 0)) return true;
  return v6.range() !== "unicast";
}

/** A URL's host as written in JOBLINE_WEBHOOK_ALLOW_HOSTS: lower case, IPv6 without brackets. */
export const hostOf = (u: URL) => u.hostname.replace(/^\[|\]$/g, "").toLowerCase();

export function parseAllowHosts(list: string): ReadonlySet<string> {
  return new Set(
    list
      .split(",")
      .map((h) => h.trim().replace(/^\[|\]$/g, "").toLowerCase())
      .filter(Boolean),
  );
}

/**
 * Why a webhook URL can be refused when it is submitted: credentials (never sent, but echoed
 * and logged) or a literal non-public address. Names are resolved only at delivery, where the
 * address connected to is the one checked.
 */
export function webhookUrlProblem(url: string, allowHosts: ReadonlySet<string>): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "not a valid URL";
  }
  if (u.username || u.password) return "must not carry credentials (user:password@)";
  const host = hostOf(u);
  if (!allowHosts.has(host) && isBlockedAddress(host)) return `host ${host} is a non-public address`;
  return null;
}
