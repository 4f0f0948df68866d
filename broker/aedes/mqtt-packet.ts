/**
 * mqtt-packet calls `debug()` about 25 times for every PUBLISH it parses and writes, with the
 * namespace disabled as well: each call allocates its arguments and reads the `enabled` getter,
 * 5 % of the broker's CPU in the QoS 0 bench profile (bench/RESULTS.md). Here mqtt-packet is loaded
 * once, before Aedes imports it, with a `debug` factory that gives a disabled namespace an empty
 * function; every other package keeps the real `debug`.
 *
 * What changes for a user: DEBUG=mqtt-packet:* still works when set at start (an enabled namespace
 * gets the real logger); turning it on later with debug.enable() does not reach mqtt-packet.
 * Import mqtt-packet from here, and this module before 'aedes' (broker.ts does).
 */
import { createRequire } from 'node:module';
import type * as MqttPacket from 'mqtt-packet';

type DebugFactory = (namespace: string) => DebugLogger;
interface DebugLogger {
  (...args: unknown[]): void;
  enabled: boolean;
  namespace: string;
}

const require = createRequire(import.meta.url);

/** The real factory for enabled namespaces, an empty function for the others (mqtt-packet only calls it). */
function quietFactory(real: DebugFactory): DebugFactory {
  return (namespace) => {
    const logger = real(namespace);
    if (logger.enabled) return logger;
    return Object.assign(function quiet() {}, { enabled: false, namespace });
  };
}

/** Loads mqtt-packet with the quiet factory, unless something loaded it already. */
function loadQuietly(): typeof MqttPacket {
  const mqttPacketPath = require.resolve('mqtt-packet');
  // An ESM import of mqtt-packet puts an entry in the cache before running it: only a loaded one counts.
  if (require.cache[mqttPacketPath]?.loaded) return require(mqttPacketPath) as typeof MqttPacket;
  const fromMqttPacket = createRequire(mqttPacketPath);
  const debugPath = fromMqttPacket.resolve('debug');
  const real = fromMqttPacket('debug') as DebugFactory;
  const debugModule = require.cache[debugPath]!;
  debugModule.exports = quietFactory(real);
  try {
    return require(mqttPacketPath) as typeof MqttPacket;
  } finally {
    debugModule.exports = real;
  }
}

export const mqttPacket = loadQuietly();
