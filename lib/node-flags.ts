/**
 * The V8 flags Roost is launched with: by `npm start`, the Dockerfile, the `roost` command's
 * shebang and the benchmarks (test/unit/node-flags.test.ts keeps them the same). They must be on
 * the node command line: V8 sizes its heap before any code runs.
 *
 * --max-semi-space-size=64: under load every message in flight (parsed, queued for a subscriber,
 * waiting for its batch) outlives the default 16 MB young generation, so each scavenge copied it
 * and promoted most of it, and old-space collections followed once a second. With 64 MB they die
 * young. Measured (bench/RESULTS.md): QoS 0 fan-in +12–17 %. The young generation only grows this
 * large while survivors keep it busy; an idle broker stays small.
 */
export const NODE_FLAGS = ['--max-semi-space-size=64'] as const;
