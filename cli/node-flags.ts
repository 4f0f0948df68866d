/**
 * The V8 flags Roost is launched with: by `npm start`, the Dockerfile, the `roost` command's
 * shebang and the benchmarks (test/unit/node-flags.test.ts keeps them the same). They must be on
 * the node command line: V8 sizes its heap before any code runs.
 *
 * --max-semi-space-size=64: under load every message in flight (parsed, queued for a subscriber,
 * waiting for its batch) outlives the default young generation (16 MB semi-spaces), so each scavenge copied it
 * and promoted most of it, and old-space collections followed once a second. With 64 MB they die
 * young. Measured on the bench's QoS 0 fan-in, three interleaved runs each: 0.92–0.96× plain Aedes
 * without it, 1.03–1.11× with it (32 MB: 0.99–1.04×). V8 grows the young generation toward
 * this maximum only while scavenges keep finding survivors.
 */
export const NODE_FLAGS = ['--max-semi-space-size=64'] as const;
