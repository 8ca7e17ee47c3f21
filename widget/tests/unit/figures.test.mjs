// The figures finer than a district (src/lib/figures.ts): column names of the public's estimates
// and staff's exact counts, the time series CSV, hexagon sizes, public number fields, and the
// privacy panel's arithmetic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  breakdownColumn, isEstimated, parseSeries, csvRecord, H3_RESOLUTIONS, resolutionAllowed, formatArea, formatLength,
  numberMayBePublic, sumSensitivity, likelihoodFactor, noiseVariance, margin95, formatPercent,
} from '../../.build/lib.mjs';

test('breakdown columns: estimate_ for the public, bare for staff; "" is (no answer)', () => {
  assert.equal(breakdownColumn('connection', 'adsl', true), 'estimate_connection=adsl');
  assert.equal(breakdownColumn('connection', 'adsl', false), 'connection=adsl');
  assert.equal(breakdownColumn('works_from_home', '', true), 'estimate_works_from_home=(no answer)');
  assert.equal(breakdownColumn('works_from_home', '(no answer)', false), 'works_from_home=(no answer)');
});

test('only an aggregate that says it is exact is read as exact', () => {
  assert.equal(isEstimated({ figures: { exact: true, note: '…' } }), false);
  assert.equal(isEstimated({ estimates: { exact: false, released_at: null } }), true);
  assert.equal(isEstimated({}), true);
  assert.equal(isEstimated(null), true);
  // Both (never sent): the safer reading.
  assert.equal(isEstimated({ figures: { exact: true }, estimates: { exact: false } }), true);
});

test('the public time series: one estimate per release, withheld ones null', () => {
  const csv = 'period,period_end,estimate,withheld\n2026-11-02,2026-11-09T00:00:00Z,41,false\n2026-11-09,2026-11-16T00:00:00Z,,true\r\n2026-11-16,2026-11-16T18:30:00Z,7,false\n';
  const s = parseSeries(csv);
  assert.equal(s.estimated, true);
  assert.deepEqual(s.rows, [
    { period: '2026-11-02', end: '2026-11-09T00:00:00Z', count: 41 },
    { period: '2026-11-09', end: '2026-11-16T00:00:00Z', count: null },
    { period: '2026-11-16', end: '2026-11-16T18:30:00Z', count: 7 },
  ]);
  // Nothing released yet: a header alone.
  assert.deepEqual(parseSeries('period,period_end,estimate,withheld\n'), { estimated: true, rows: [] });
  assert.deepEqual(parseSeries(''), { estimated: true, rows: [] });
});

test('the staff series: exact counts, per district added up per period; Excel\'s flavour', () => {
  assert.deepEqual(parseSeries('period,count\n2026-11-02,3\n2026-11-03,0\n'), { estimated: false, rows: [
    { period: '2026-11-02', end: null, count: 3 }, { period: '2026-11-03', end: null, count: 0 }] });
  const byDistrict = 'period,code,name,count\n2026-11-02,N,"Nord, le haut",3\n2026-11-02,S,Sud,4\n2026-11-03,N,"Nord, le haut",1\n';
  assert.deepEqual(parseSeries(byDistrict).rows.map((r) => [r.period, r.count]), [['2026-11-02', 7], ['2026-11-03', 1]]);
  assert.deepEqual(parseSeries('\uFEFFperiod;period_end;estimate;withheld\r\n2026-11-02;2026-11-09T00:00:00Z;12;false\r\n').rows, [{ period: '2026-11-02', end: '2026-11-09T00:00:00Z', count: 12 }]);
  // The old public columns (period,count,withheld) are not mistaken for estimates.
  assert.equal(parseSeries('period,count,withheld\n2026-11-02,5,false\n').estimated, false);
  assert.deepEqual(parseSeries('something,else\n1,2\n').rows, []);
});

test('CSV records: quotes, doubled quotes, empty fields', () => {
  assert.deepEqual(csvRecord('a,"b, c","say ""hi""",,e'), ['a', 'b, c', 'say "hi"', '', 'e']);
  assert.deepEqual(csvRecord('a;b', ';'), ['a', 'b']);
});

test('hexagon sizes of resolutions 6 to 10, and which the public precision allows', () => {
  assert.deepEqual(H3_RESOLUTIONS.map((r) => r.resolution), [6, 7, 8, 9, 10]);
  for (let i = 1; i < H3_RESOLUTIONS.length; i++) {
    // Each resolution's hexagons are about a seventh of the one before.
    const ratio = H3_RESOLUTIONS[i - 1].areaKm2 / H3_RESOLUTIONS[i].areaKm2;
    assert.ok(ratio > 6.9 && ratio < 7.1, String(ratio));
  }
  assert.equal(formatArea(0.73733, 'en'), '0.74 km²');
  assert.equal(formatArea(0.73733, 'fr'), '0,74 km²');
  assert.equal(formatArea(0.015048, 'en'), '15,000 m²');
  assert.equal(formatLength(531, 'en'), '530 m');
  assert.equal(formatLength(3725, 'fr'), '3,7 km');
  // The server refuses hexagons smaller than a square of the precision's side.
  assert.equal(resolutionAllowed(10, 50), true);
  assert.equal(resolutionAllowed(10, 200), false);
  assert.equal(resolutionAllowed(9, 200), true);
  assert.equal(resolutionAllowed(8, 900), false);
  assert.equal(resolutionAllowed(11, 1), false);
});

test('a number field may be public with whole numbers between a min and a max within a million of 0', () => {
  assert.equal(numberMayBePublic({ integer: true, min: 1, max: 80 }), true);
  assert.equal(numberMayBePublic({ integer: true, min: -1000000, max: 1000000 }), true);
  assert.equal(numberMayBePublic({ integer: false, min: 1, max: 80 }), false);
  assert.equal(numberMayBePublic({ integer: true, min: null, max: 80 }), false);
  assert.equal(numberMayBePublic({ integer: true, min: 1 }), false);
  assert.equal(numberMayBePublic({ integer: true, min: 0, max: 1000001 }), false);
  assert.equal(numberMayBePublic({ integer: true, min: 9, max: 3 }), false);
  // Its noise is proportional to how far one answer moves a sum (a missing one counts 0).
  assert.equal(sumSensitivity(1, 80), 80);
  assert.equal(sumSensitivity(-5, 10), 15);
  assert.equal(sumSensitivity(-20, -3), 20);
});

test('e^ε, the noise\'s variance and 95 % margin, percentages', () => {
  assert.ok(Math.abs(likelihoodFactor(2) - 7.389056) < 1e-6);
  // Discrete Laplace of scale 1: 2e^-1 / (1 - e^-1)^2.
  const q = Math.exp(-1);
  assert.ok(Math.abs(noiseVariance(1) - (2 * q) / (1 - q) ** 2) < 1e-12);
  // Large scales: close to the continuous Laplace's 2b².
  assert.ok(Math.abs(noiseVariance(100) / 20000 - 1) < 0.001);
  // Releases add their noise: four of them, twice the margin of one.
  assert.ok(Math.abs(margin95(5, 4) - 2 * margin95(5, 1)) < 1e-9);
  assert.ok(Math.abs(margin95(5, 1) - 1.96 * Math.sqrt(noiseVariance(5))) < 1e-12);
  assert.equal(margin95(5, 0), 0);
  assert.equal(formatPercent(0.731, 'en'), '73.1%');
  assert.equal(formatPercent(0.5, 'fr').replace(/\s/g, ' '), '50 %');
});
