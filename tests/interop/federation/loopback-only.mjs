// Imported first: every outgoing TCP connection of this process (Hive Gateway's
// included: usage reporting, telemetry, CDN polling would all need one) must go to
// loopback. Any other is refused and remembered, and the test fails on it.
import net from 'node:net';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
export const refusedConnections = [];

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const options = typeof first === 'object' && first !== null ? first : { port: first, host: args[1] };
  if (options.path === undefined) {
    const host = typeof options.host === 'string' ? options.host : 'localhost';
    if (!LOOPBACK.has(host)) {
      refusedConnections.push(`${host}:${options.port}`);
      process.nextTick(() => this.destroy(new Error(`refused: ${host} is not loopback`)));
      return this;
    }
  }
  return connect.apply(this, args);
};
