// Prints the one line CI is read by, "N passed, M failed[, K skipped]", summed over the test runs
// of .ci/run, and exits 1 if any of them failed. Arguments: LABEL REPORT EXIT_STATUS, once per run,
// where REPORT is the run's vitest JSON report and EXIT_STATUS the exit status of its command.
import { existsSync, readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
let red = false;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i += 3) {
  const [label, report, exitStatus] = args.slice(i, i + 3);
  if (!existsSync(report)) {
    console.log(`${label} wrote no ${report} (see the output above)`);
    failed += 1;
    red = true;
    continue;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  // A file whose setup failed has no failed test of its own, only tests that never ran: count
  // those as failed (at least one per such file), so the line cannot say 0 failed on a red run.
  let failedHere = 0;
  for (const file of r.testResults) {
    const tests = file.assertionResults || [];
    const failedInFile = tests.filter((t) => t.status === 'failed').length;
    const notRun = tests.filter((t) => t.status !== 'passed' && t.status !== 'failed').length;
    if (file.status === 'failed' && failedInFile === 0) {
      failedHere += Math.max(1, notRun);
    } else {
      failedHere += failedInFile;
      skipped += notRun;
    }
  }
  // vitest can exit 1 with every test passed (an unhandled error outside a test): that is a failure too.
  if (Number(exitStatus) !== 0 && failedHere === 0) {
    console.log(`${label} exited ${exitStatus} (an error outside the tests: see the output above)`);
    failedHere = 1;
  }
  passed += r.numPassedTests;
  failed += failedHere;
  if (r.numTotalTests === 0 || failedHere > 0) red = true;
}
console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
if (red) process.exitCode = 1;
