// The printed browser fault matrix: rows faults, columns traffic patterns, each cell PASS,
// FAIL or n.a.; the reasons for n.a. below the table, and the totals line.

/** `results`: Map of `${fault.key}/${pattern.key}` to { status: 'PASS'|'FAIL'|'n.a.'|'not run', reason? }. */
export function renderMatrix(faults, patterns, results, elapsedMs) {
  const rowHead = Math.max(...faults.map((f) => f.name.length), 'fault'.length);
  const widths = patterns.map((p) => Math.max(p.name.length, 7));
  const line = (cells) => `| ${cells.join(' | ')} |`;
  const out = [];
  out.push(line(['fault'.padEnd(rowHead), ...patterns.map((p, i) => p.name.padEnd(widths[i]))]));
  out.push(line(['-'.repeat(rowHead), ...widths.map((w) => '-'.repeat(w))]));
  const reasons = [];
  let run = 0;
  let passed = 0;
  let failed = 0;
  let na = 0;
  for (const fault of faults) {
    const cells = patterns.map((pattern, i) => {
      const result = results.get(`${fault.key}/${pattern.key}`) ?? { status: 'not run' };
      if (result.status === 'PASS') { run += 1; passed += 1; }
      if (result.status === 'FAIL') { run += 1; failed += 1; }
      if (result.status === 'n.a.') {
        na += 1;
        if (!reasons.some((r) => r.reason === result.reason)) reasons.push({ reason: result.reason, where: [] });
        reasons.find((r) => r.reason === result.reason).where.push(`${fault.name} × ${pattern.name}`);
      }
      return result.status.padEnd(widths[i]);
    });
    out.push(line([fault.name.padEnd(rowHead), ...cells]));
  }
  out.push('');
  for (const { reason, where } of reasons) {
    const rows = [...new Set(where.map((w) => w.split(' × ')[0]))];
    const label = where.length === patterns.length * rows.length && rows.length === 1 ? rows[0] : where.join(', ');
    out.push(`n.a. ${label}: ${reason}`);
  }
  out.push('');
  out.push(`browser fault matrix: ${run} cells run, ${passed} passed, ${failed} failed (${na} n.a.) in ${(elapsedMs / 1000).toFixed(1)} s`);
  return out.join('\n');
}
