/**
 * The V8 flags Roost is launched with: by `npm start`, the Dockerfile, the `roost` command's
 * shebang and the benchmarks (test/unit/node-flags.test.ts keeps them the same). They must be on
 * the node command line: V8 sizes its heap before any code runs.
 *
 * --max-semi-space-size=32: under load every message in flight (parsed, queued for a subscriber,
 * waiting for its batch) outlives the default young generation (16 MB semi-spaces), so each scavenge
 * copied it and promoted most of it, and old-space collections followed once a second. With larger
 * semi-spaces they die young. V8 grows the young generation toward this maximum only while
 * scavenges keep finding survivors, and it is resident then: up to 3 × the value.
 * On the bench's QoS 0 fan-in, three interleaved runs each: 0.92–0.96× plain Aedes at 16, 0.99–1.04×
 * at 32, 1.03–1.11× at 64 (the runs 64 was first chosen on). `node dist/bench/footprint.js --duration 5`, two runs each on a
 * shared machine, Roost + PostgreSQL: peak RSS 278–281 MB at 32 against 337–357 MB at 64, with
 * 100,061–117,159 against 107,557–112,755 msg/s delivered; at 16, 257–268 MB and 64,815–105,472 msg/s.
 * Those runs were on Node 20; Node 22 has the same 16 MB default. Node 24 (V8 13) sizes the default
 * from the heap limit, 64 MB with a 4 GB heap: there the flag halves it, so every major gets 32.
 */
export const NODE_FLAGS = ['--max-semi-space-size=32'] as const;

/**
 * The environment Roost is launched with, beside NODE_FLAGS and by the same launchers.
 *
 * GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072 (glibc's own default value): naming a threshold
 * turns off glibc's dynamic one, which after the first large block is freed raises the size served
 * by mmap from 128 KB up to 32 MB; blocks below it are carved from the allocator's arenas and stay
 * resident once freed. With the threshold fixed, large blocks (V8's compilers' work memory, PGlite's
 * buffers) are mapped and unmapped, and their memory is returned when freed.
 * `node dist/bench/pglite-cost.js --child` on the embedded database, 100,000 stored rows with
 * ROOST_PGLITE_OPTIMIZE on: 214–224 MB resident after against 266 MB without, at 12.4–13.4 µs of
 * database CPU per row against 13.0; a fixed mmap threshold of 32 KB gave 165 MB but 14.8 µs per
 * row and fewer rows per second. musl (Alpine) ignores the variable.
 */
export const LAUNCH_ENV = { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072' } as const;

/** LAUNCH_ENV as `NAME=value` words, for a shell command line or `env -S`. */
export const LAUNCH_ENV_WORDS = Object.entries(LAUNCH_ENV).map(([name, value]) => `${name}=${value}`);

