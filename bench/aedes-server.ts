/**
 * The plain-Aedes reference: Aedes 1.2 with its default in-memory persistence on one TCP port,
 * nothing else. Prints "listening PORT"; stops on SIGTERM.
 *   node dist/bench/aedes-server.js [port]
 */
import net from 'node:net';
import { Aedes } from 'aedes';

const broker = await Aedes.createBroker();
const server = net.createServer((conn) => broker.handle(conn));
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  broker.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
