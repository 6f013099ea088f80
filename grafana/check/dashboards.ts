// Every file in grafana/dashboards/, imported as a JSON module (`--resolveJsonModule`) and
// checked against `Dashboard` from @grafana/schema. runtime.ts fails when a dashboard file
// is missing here, so a new dashboard cannot skip the type check.

import type { Dashboard } from '@grafana/schema';

import failover from '../dashboards/redis-failover.json';
import overview from '../dashboards/redis-overview.json';
import type { Json, NoUnknownProperties, PromDashboard } from './schema';

export const dashboards = {
  'redis-overview.json': overview,
  'redis-failover.json': failover,
};

type Files = typeof dashboards;

// 1. Every field has the type `Dashboard` gives it, and every required field is there.
export const typed: { [F in keyof Files]: Json<Dashboard> } = dashboards;

// 2. The same with the queries and annotations typed as Prometheus ones (`expr`, `refId`).
export const prometheus: { [F in keyof Files]: Json<PromDashboard> } = dashboards;

// 3. No property the schema does not declare (TypeScript itself checks that only on fresh
//    object literals, never on an imported JSON file). On failure tsc names the paths.
export const closed: { [F in keyof Files]: NoUnknownProperties<Files[F], PromDashboard, `${F}: `> } = {
  'redis-overview.json': true,
  'redis-failover.json': true,
};
