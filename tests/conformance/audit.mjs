// The GraphQL Foundation's GraphQL-over-HTTP server audit (graphql-http's auditServer) against one URL.
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql
// Prints one JSON array: {id, name, status, reason?, statusCode?, body?} per audit, in the audit's order.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

const results = await auditServer({ url });
const report = [];
for (const result of results) {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    entry.statusCode = result.response.status;
    try {
      entry.body = await result.response.text();
    } catch {
      entry.body = null; // the audit already read it
    }
  }
  report.push(entry);
}
console.log(JSON.stringify(report));
