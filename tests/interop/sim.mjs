// The simulator's control API (docs/simulator.md), as the interop scripts use it.
const control = (path, method, body) =>
  fetch(`${process.env.SIMULATOR_URL}/__sim${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then((response) => {
    if (!response.ok) throw new Error(`${method} /__sim${path}: HTTP ${response.status}`);
  });

/** The account the interop gateway is configured with (tests/interop/lib.sh). */
export const ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353";

/** Moves the manual workflow clock on. */
export const advance = (seconds) => control("/clock/advance", "POST", { seconds });

/** A fresh workflow for `domain` (starting now) following a demo scenario. */
export const startWorkflow = (domain, scenario = "succeeds") =>
  control("/workflows", "POST", { account_id: ACCOUNT, domain_name: domain, scenario });

/** Replaces the simulator's fault set ({} turns every fault off). */
export const setFaults = (faults) => control("/faults", "PUT", faults);

/** Counts checks and prints the "N passed, N failed" line the CI log is read for. */
export class Checks {
  constructor(suite) {
    this.suite = suite;
    this.passed = 0;
    this.failed = 0;
  }

  /** Runs one named check; a thrown error or a false result fails it. */
  async check(name, body) {
    try {
      const result = await body();
      if (result === false) throw new Error("returned false");
      this.passed += 1;
      console.log(`ok   ${this.suite}: ${name}`);
    } catch (error) {
      this.failed += 1;
      console.log(`FAIL ${this.suite}: ${name}: ${error?.stack ?? error}`);
    }
  }

  /** Prints the summary and exits 0 when everything passed. */
  finish() {
    console.log(`${this.suite}: ${this.passed} passed, ${this.failed} failed`);
    process.exit(this.failed === 0 && this.passed > 0 ? 0 : 1);
  }
}

/** Throws unless `actual` deep-equals `expected` (compared as JSON). */
export function assertEqual(actual, expected, what) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}
