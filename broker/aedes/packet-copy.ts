/**
 * aedes-packet's Packet: the copy Aedes and aedes-persistence queue (messageId reset for QoS > 0,
 * the broker's id and counter added). Roost's SQL persistence stores the same copy, so that what it
 * gives back is what Aedes's own persistence would.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export type PacketFields = Record<string, unknown>;

export const AedesPacket = require('aedes-packet') as new (original: PacketFields, broker?: { id: string; counter?: number }) => PacketFields;
