import { describe, expect, it } from "vitest";
import { isBlockedAddress, parseAllowHosts, webhookUrlProblem } from "../../src/domain/addresses.js";

describe("webhook address guard (ipaddr.js ranges)", () => {
  it("refuses every non-public range, the IPv4-embedding IPv6 forms included", () => {
    for (const a of [
      "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254", "0.0.0.0", "255.255.255.255",
      "224.0.0.1", "240.0.0.1", "192.0.2.1", "198.18.0.1",
      "::", "::1", "fe80::1", "fd00::1", "ff02::1",
      "::7f00:1", "::a9fe:a9fe", "::808:808", // ::/96, IPv4-compatible
      "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", // IPv4-mapped
      "fec0::1", "feff::1", // fec0::/10, site-local
      "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", // 2001::/32, Teredo
      "2002:7f00:1::1", "64:ff9b::7f00:1", "2001:db8::1", "100::1",
    ])
      expect(isBlockedAddress(a), a).toBe(true);
  });

  it("lets public unicast through, IPv4-mapped public addresses included", () => {
    for (const a of ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:2800:220:1::1", "2606:4700::1111", "::ffff:8.8.8.8"])
      expect(isBlockedAddress(a), a).toBe(false);
    expect(isBlockedAddress("example.com")).toBe(false);
  });

  it("judges a URL at submit: literal addresses and credentials, allow-listed hosts exempt", () => {
    const none = parseAllowHosts("");
    expect(webhookUrlProblem("http://[::127.0.0.1]:8080/x", none)).toMatch(/non-public/);
    expect(webhookUrlProblem("http://0177.0.0.1/x", none)).toMatch(/127\.0\.0\.1 is a non-public/);
    expect(webhookUrlProblem("https://a:b@example.com/", none)).toMatch(/credentials/);
    expect(webhookUrlProblem("https://example.com/", none)).toBeNull();
    expect(webhookUrlProblem("http://localhost/", none)).toBeNull();
    const allow = parseAllowHosts(" 127.0.0.1 ,[::1]");
    expect(webhookUrlProblem("http://127.0.0.1:9/x", allow)).toBeNull();
    expect(webhookUrlProblem("http://[::1]:9/x", allow)).toBeNull();
    expect(webhookUrlProblem("http://u:p@127.0.0.1/x", allow)).toMatch(/credentials/);
  });
});
