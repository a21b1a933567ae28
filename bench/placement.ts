/**
 * Placement report: for the cluster's partition count, how evenly consistent hashing with
 * bounded loads spreads partitions over W workers, and what fraction moves when one joins or
 * leaves (against the fair share 1/(W+1) or 1/W). Pure computation: no servers.
 */
import { loads, movedFraction, place } from '../cluster/placement.ts';
import { DEFAULT_PARTITIONS } from '../cluster/partition.ts';

export interface PlacementRow {
  workers: number;
  max_over_avg: number;
  join_moved: number;
  join_fair: number;
  leave_moved_max: number;
  leave_fair: number;
}

export function placementReport(partitionCount = DEFAULT_PARTITIONS, epsilon = 0.25): PlacementRow[] {
  return [2, 3, 4, 8, 16].map((W) => {
    const ws = Array.from({ length: W }, (_, i) => `worker-${i + 1}`);
    const o = { partitionCount, epsilon };
    const before = place(ws, o);
    const leaves = ws.map((w) =>
      movedFraction(
        before,
        place(
          ws.filter((x) => x !== w),
          o,
        ),
      ),
    );
    return {
      workers: W,
      max_over_avg: Math.max(...loads(before).values()) / (partitionCount / W),
      join_moved: movedFraction(before, place([...ws, 'newcomer'], o)),
      join_fair: 1 / (W + 1),
      leave_moved_max: Math.max(...leaves),
      leave_fair: 1 / W,
    };
  });
}

export function printPlacement(rows: PlacementRow[]): void {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  console.log(`\nPlacement (${DEFAULT_PARTITIONS} partitions, ε = 0.25; bound: max/avg ≤ 1.25):`);
  console.log('  workers  max/avg   one joins: moved (fair)   one leaves, worst: moved (fair)');
  for (const r of rows) {
    console.log(
      `  ${String(r.workers).padStart(7)}  ${r.max_over_avg.toFixed(3).padStart(7)}   ${pct(r.join_moved).padStart(14)} (${pct(r.join_fair)})   ${pct(r.leave_moved_max).padStart(20)} (${pct(r.leave_fair)})`,
    );
  }
}
