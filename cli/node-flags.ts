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
