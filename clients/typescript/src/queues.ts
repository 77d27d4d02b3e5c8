import { type JoblineClient, unwrap } from "./client.js";
import type { components } from "./schema.gen.js";

export type Queue = components["schemas"]["Queue"];
export type QueueSettings = components["schemas"]["QueueSettings"];
/** The body of `PUT /v1/queues/{queue}`: replaces the whole settings object (absent = no limit). */
export type QueueSettingsPut = components["schemas"]["QueueSettingsPut"];

/**
 * Queue controls (admin keys). `tenant` is required with a platform key (tenant `*`) and must be
 * omitted or the key's own otherwise. Each call resolves to the queue's view or throws JoblineApiError.
 */
export function queueControls(client: JoblineClient) {
  const at = (queue: string, tenant?: string) => ({ params: { path: { queue }, query: tenant === undefined ? {} : { tenant } } });
  return {
    get: (queue: string, tenant?: string) => unwrap(client.GET("/v1/queues/{queue}", at(queue, tenant))),
    set: (queue: string, settings: QueueSettingsPut, tenant?: string) =>
      unwrap(client.PUT("/v1/queues/{queue}", { ...at(queue, tenant), body: settings })),
    pause: (queue: string, tenant?: string) => unwrap(client.POST("/v1/queues/{queue}/pause", at(queue, tenant))),
    resume: (queue: string, tenant?: string) => unwrap(client.POST("/v1/queues/{queue}/resume", at(queue, tenant))),
  };
}
