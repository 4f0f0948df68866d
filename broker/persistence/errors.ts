/** Errors the SQL persistence raises, each with a stable code (the Aedes client sees the message). */

export class NoSuchPacketError extends Error {
  readonly code = 'ROOST_ERR_NO_SUCH_PACKET';
  constructor() {
    // Same message as aedes-persistence: Aedes treats this rejection as "not stored".
    super('no such packet');
  }
}

export class NulInStringError extends Error {
  readonly code = 'ROOST_ERR_NUL_IN_STRING';
  constructor() {
    super('MQTT-1.5.4-2: a UTF-8 string in the packet contains U+0000');
  }
}

export class PersistenceDestroyedError extends Error {
  readonly code = 'ROOST_ERR_PERSISTENCE_DESTROYED';
  constructor() {
    super('the session persistence is closed');
  }
}
