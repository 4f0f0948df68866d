/**
 * `node pglite-init.js DATA_DIR SHARED_BUFFERS`: runs initdb on a new data folder, with the buffer
 * pool the database will run with, then exits. A process of its own, because PGlite's initdb runs
 * in a second PGlite instance with a copy of its memory, and what that leaves stays resident in the
 * thread that ran it (about 450 MB) and in its allocator's arena after the thread ends (about
 * 65 MB); an exited process returns all of it (bench/footprint.ts, idle RSS after the first start).
 * It runs on V8's baseline compiler alone (pglite.ts starts it with INITDB_NODE_FLAGS): optimizing
 * code for a run of a few seconds cost it about 1.5 s more CPU.
 */
import { createPglite } from './pglite-open.js';

const db = await createPglite({ dataDir: process.argv[2], sharedBuffers: process.argv[3], optimizeWasm: false });
await db.close();
