import type { FastifyReply } from "fastify";
import type { HttpDeps } from "../container.js";
import { parseAllowHosts, webhookUrlProblem } from "../domain/addresses.js";
import { problem, sendProblem } from "./problem.js";

/**
 * Refuses at submit a webhook URL that could never be delivered (a literal non-public address
 * outside JOBLINE_WEBHOOK_ALLOW_HOSTS, or credentials), so the submitter learns it at once.
 * Returns the sent reply when refused.
 */
export function webhookUrlGuard(c: HttpDeps) {
  const allow = parseAllowHosts(c.config.JOBLINE_WEBHOOK_ALLOW_HOSTS);
  return (reply: FastifyReply, urls: Array<[path: string, url: string | null | undefined]>) => {
    for (const [path, url] of urls) {
      const why = url ? webhookUrlProblem(url, allow) : null;
      if (why) return sendProblem(reply, problem("webhook_url_not_allowed", `${path}: ${why}`, 400));
    }
    return null;
  };
}
