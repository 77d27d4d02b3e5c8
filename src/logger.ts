import pino, { type Logger } from "pino";
import pretty from "pino-pretty";
import type { Config } from "./config.js";

/**
 * The process's one log stream: JSON lines on stdout, or pino-pretty's rendering when
 * LOG_FORMAT=pretty, or LOG_FORMAT=auto (the default) and stdout is a terminal.
 */
export function createLogger(cfg: Pick<Config, "LOG_LEVEL" | "LOG_FORMAT">, isTTY = process.stdout.isTTY === true): Logger {
  const options = { level: cfg.LOG_LEVEL, base: { app: "jobline" } };
  const prettyOut = cfg.LOG_FORMAT === "pretty" || (cfg.LOG_FORMAT === "auto" && isTTY);
  if (!prettyOut) return pino(options);
  return pino(options, pretty({ colorize: isTTY, sync: true, ignore: "app", translateTime: "SYS:HH:MM:ss.l" }));
}
