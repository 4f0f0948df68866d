/**
 * ROOST_MAX_KEEPALIVE, as Mosquitto's max_keepalive (src/handle_connect.c): a Keep Alive over the
 * limit, or 0, is not accepted as asked.
 *   MQTT 5      Aedes 2's keepaliveLimit (core.ts passes it): the CONNACK carries Server Keep Alive =
 *               the limit (3.2.2.3.14) and Aedes times the client out by it (MQTT-3.2.2-21/22); the
 *               DISCONNECT 0x8D that then comes is mqtt5.ts's
 *   3.1.1, 3.1  no way to tell the client, so it is refused. Aedes 2 writes return code 6, its own
 *               ("keep alive limit exceeded"), which 3.1.1 reserves (3.2.2.3); Mosquitto answers 2
 *               (identifier rejected), and so does Roost: the code is changed as the CONNACK is
 *               written (outgoing-flows.ts), so the 'connackSent' event reports 2 too
 */
import type { WrittenPacket } from './outgoing-flows.js';

/** Aedes 2's CONNACK return code for a 3.1.1 keep alive over keepaliveLimit (lib/handlers/connect.js). */
const AEDES_KEEPALIVE_REFUSED = 6;
/** MQTT 3.1.1 CONNACK return code 2: identifier rejected, what Mosquitto answers. */
const IDENTIFIER_REJECTED = 2;

/** Puts Mosquitto's return code in a 3.1.1 CONNACK refusing a keep alive over the limit. */
export function refuseKeepAliveAsMosquitto(packet: WrittenPacket): void {
  const connack = packet as WrittenPacket & { returnCode?: number };
  if (connack.returnCode === AEDES_KEEPALIVE_REFUSED) connack.returnCode = IDENTIFIER_REJECTED;
}
