/**
 * The Trigger Inbox chaos plan: one definition for the chaos test over loopback HTTP and the bench's
 * `triggers.chaos` figures.
 * @internal
 */
import { endpoints } from "./areas/triggerInbox.js"
import { Fault, type FaultRule } from "./fault.js"

/** The plan (see `FakeZapier.inboxChaosPlan`). */
export const inboxChaosPlan = {
  faults: [
    { endpoint: endpoints.lease, skip: 1, times: 2, fault: Fault.status(429, { retryAfter: "1 second" }) },
    { endpoint: endpoints.lease, skip: 4, times: 2, fault: Fault.status(503) },
    // Ack answers lost after the server committed the ack: a 500, then a dropped connection.
    { endpoint: endpoints.ack, skip: 0, times: 2, fault: Fault.status(500, { afterCommit: true }) },
    { endpoint: endpoints.ack, skip: 3, times: 1, fault: Fault.disconnect({ afterCommit: true }) },
    { endpoint: endpoints.ack, skip: 5, times: 2, fault: Fault.status(429, { retryAfter: "1 second" }) },
    { endpoint: endpoints.ack, skip: 7, times: 2, fault: Fault.status(503) },
    { endpoint: endpoints.events, skip: 0, times: 3, fault: Fault.disconnect() }
  ] satisfies ReadonlyArray<FaultRule> as ReadonlyArray<FaultRule>,
  handlerMillis: 300,
  consumer: { batch: 10, concurrency: 4, leaseSeconds: 5 },
  /** The share of the events emitted before the first consumer starts; the rest arrive after the restart. */
  emittedFirst: 0.6
} as const
