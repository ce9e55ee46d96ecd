// A staff app's catch-up, as a client author writes it from README / docs/asyncapi.json with the
// npm `nats` package: connect as the app's own NATS user (inbox prefix _INBOX_<user>), then for
// each permitted subject bind the app's own durable consumer (created with that filter subject,
// or found again), read everything pending and ack it. Prints one JSON list of what it read.
//
// Input (environment KOOLLE_CATCH_UP, JSON): {url, user, password, consumers: [{stream, subject, durable}]}
import { AckPolicy, DeliverPolicy, connect } from "nats";

const cfg = JSON.parse(process.env.KOOLLE_CATCH_UP);
const nc = await connect({
  servers: cfg.url,
  user: cfg.user,
  pass: cfg.password,
  inboxPrefix: `_INBOX_${cfg.user}`,
  maxReconnectAttempts: 0,
});
const jsm = await nc.jetstreamManager({ checkAPI: false });
const js = nc.jetstream({ checkAPI: false });
const read = [];
for (const c of cfg.consumers) {
  // $JS.API.CONSUMER.CREATE.<stream>.<durable>.<filter>: the same configuration again is a no-op.
  await jsm.consumers.add(c.stream, {
    durable_name: c.durable,
    filter_subject: c.subject,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  });
  const consumer = await js.consumers.get(c.stream, c.durable);
  for (;;) {
    const { num_pending: pending } = await consumer.info();
    if (pending === 0) break;
    const batch = await consumer.fetch({ max_messages: pending, expires: 5000 });
    for await (const m of batch) {
      read.push({ subject: m.subject, event_id: JSON.parse(m.string()).event_id, durable: c.durable });
      await m.ackAck(); // acknowledged before the next read: what was read is never read again
    }
  }
}
await nc.drain();
console.log(JSON.stringify(read));
