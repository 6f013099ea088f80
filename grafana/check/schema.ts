// Types that make `tsc --resolveJsonModule` a real check of a dashboard file against
// `Dashboard` from @grafana/schema.
//
// A JSON module's type is widened: every string literal becomes `string`, every number
// `number`. So `const d: Dashboard = json` fails on every enum or literal-union field
// (variable `type`, color `mode`, ...) whatever the file holds, and a cast would hide real
// mistakes. Instead:
//
// - `Json<T>` is what a JSON file holding a valid T looks like after that widening: the
//   same objects, arrays, required and optional fields, with enums and literal unions
//   widened to string or number. A file that is not assignable to `Json<Dashboard>` has a
//   field of the wrong type (`"panels": "x"`, `"refresh": 5`, `"multi": "yes"`) or lacks a
//   required one (`schemaVersion`, a panel's `type`, `gridPos.h`, a variable's `name`).
// - A JSON module is not a fresh object literal, so TypeScript does no excess-property
//   check on it. `UnknownProperties<A, S>` does one: it lists the paths of properties in A
//   that S does not declare, wherever S is closed (an `unknown` or an index signature in S,
//   such as a panel's `options`, is open).
//
// What a JSON module cannot show (enum and literal-union values, and the options of each
// panel plugin, which `Dashboard` leaves open) runtime.ts checks with the same compiler:
// it embeds each file's text, unchanged, as a TypeScript literal, which keeps its literal
// types, and checks it against `TypedDashboard` below (`Literal<T>`: enums as the union of
// their values; every panel's `options` and `fieldConfig.defaults.custom` against its
// plugin's `Options` and `FieldConfig` from @grafana/schema, selected by `type`).

import type {
  AnnotationQuery,
  Dashboard,
  DataQuery,
  FieldConfig,
  FieldConfigSource,
  Panel,
  RowPanel,
} from '@grafana/schema';
import type * as bargauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as gauge from '@grafana/schema/dist/esm/raw/composable/gauge/panelcfg/x/GaugePanelCfg_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as stateTimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as statusHistory from '@grafana/schema/dist/esm/raw/composable/statushistory/panelcfg/x/StatusHistoryPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as text from '@grafana/schema/dist/esm/raw/composable/text/panelcfg/x/TextPanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

type IsAny<T> = 0 extends 1 & T ? true : false;
type IsNever<T> = [T] extends [never] ? true : false;

/** The type TypeScript infers for a JSON file that holds a valid `T`. */
export type Json<T> =
  IsAny<T> extends true
    ? unknown
    : T extends string
      ? string
      : T extends number
        ? number
        : T extends boolean
          ? boolean
          : T extends null | undefined
            ? T
            : T extends readonly (infer E)[]
              ? Json<E>[]
              : T extends object
                ? { [K in keyof T]: Json<T[K]> }
                : T;

/** A Prometheus query as Grafana stores it in a panel or an annotation. */
export interface PromQuery extends DataQuery {
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  range?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  interval?: string;
  intervalFactor?: number;
  exemplar?: boolean;
  editorMode?: 'code' | 'builder';
}

/** A Prometheus annotation: the query in `target`, the display fields beside it. */
export interface PromAnnotation extends AnnotationQuery<PromQuery> {
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}

/** `Panel` whose queries are Prometheus queries. */
export type PromPanel = Omit<Panel, 'targets'> & { targets?: PromQuery[] };
export type PromRowPanel = Omit<RowPanel, 'panels'> & { panels: PromPanel[] };

/**
 * An input of the import form, as Grafana's export "for sharing externally" writes it: the
 * import replaces every `${name}` in the file's strings with the value picked or typed.
 */
export interface DashboardInput {
  name: string;
  label: string;
  description?: string;
  type: 'datasource' | 'constant';
  pluginId?: string;
  pluginName?: string;
  value?: string;
}

/** What the dashboard needs, as the same export lists it (grafana.com shows it). */
export interface DashboardRequirement {
  type: 'grafana' | 'datasource' | 'panel';
  id: string;
  name: string;
  version: string;
}

/**
 * The fields that export adds at the top of the file, which `Dashboard` does not declare:
 * Grafana reads them when it imports a file and ignores them when it provisions one.
 */
export interface Shareable {
  __inputs?: DashboardInput[];
  /** Library panels the dashboard carries; ours use none. */
  __elements?: Record<string, never>;
  __requires?: DashboardRequirement[];
}

/** `Dashboard` with the datasource-specific parts (queries, annotations) spelled out. */
export type PromDashboard = Omit<Dashboard, 'panels' | 'annotations'> &
  Shareable & {
    panels?: Array<PromPanel | PromRowPanel>;
    annotations?: { list?: PromAnnotation[] };
  };

type ArrayElement<S> = S extends readonly (infer E)[] ? E : never;
type ObjectMember<S> = S extends readonly unknown[] ? never : S extends object ? S : never;
/** Keys A really has (normalising an array of objects adds the others as `?: undefined`). */
type PresentKeys<A> = { [K in keyof A]-?: [A[K]] extends [undefined] ? never : K }[keyof A];
type RequiredKeys<S> = { [K in keyof S]-?: {} extends Pick<S, K> ? never : K }[keyof S];
type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void
  ? I
  : never;

/** Paths of the properties of A that the schema S does not declare. */
export type UnknownProperties<A, S, P extends string = ''> =
  IsAny<S> extends true
    ? never
    : unknown extends S
      ? never
      : A extends readonly (infer E)[]
        ? UnknownProperties<E, ArrayElement<S>, `${P}[]`>
        : A extends object
          ? InSomeMember<A, ObjectMember<S>, P>
          : never;

type KeysNotIn<A, S, P extends string> = {
  [K in keyof A & string]-?: [A[K]] extends [undefined]
    ? never
    : K extends keyof S
      ? UnknownProperties<A[K], S[K], `${P}.${K}`>
      : `${P}.${K}`;
}[keyof A & string];

// Against a union (Panel | RowPanel, the ValueMapping kinds, ...): A must fit one member
// without unknown properties. Only members whose required keys A has are candidates; when
// none fits, report what every candidate rejects (or, if they disagree, all of it).
type Candidates<A, S> = S extends unknown
  ? IsNever<Exclude<RequiredKeys<S>, PresentKeys<A>>> extends true
    ? S
    : never
  : never;

type InSomeMember<A, S, P extends string> =
  IsNever<S> extends true
    ? never // A has the wrong type here: Json<> assignability reports it
    : IsNever<Candidates<A, S>> extends true
      ? never // a required key is missing: Json<> assignability reports it
      : true extends (Candidates<A, S> extends infer C ? (C extends unknown ? IsNever<KeysNotIn<A, C, P>> : never) : never)
        ? never
        : Reported<A, Candidates<A, S>, P>;

type Reported<A, C, P extends string> =
  UnionToIntersection<C extends unknown ? [KeysNotIn<A, C, P>] : never> extends [infer Common]
    ? IsNever<Common> extends true
      ? C extends unknown
        ? KeysNotIn<A, C, P>
        : never
      : Common
    : never;

/** `true` when A has no property S does not declare; otherwise names them. */
export type NoUnknownProperties<A, S, P extends string = ''> = IsNever<UnknownProperties<A, S, P>> extends true
  ? true
  : { unknownProperties: UnknownProperties<A, S, P> };

/** T as a literal in TypeScript source may spell it: an enum is the union of its values. */
export type Literal<T> =
  IsAny<T> extends true
    ? unknown
    : T extends string
      ? string extends T
        ? string
        : `${T}`
      : T extends number | boolean | null | undefined
        ? T // a numeric literal is assignable to a numeric enum that has that value
        : T extends readonly (infer E)[]
          ? Literal<E>[]
          : T extends object
            ? { [K in keyof T]: Literal<T[K]> }
            : T;

/** `Literal<T>` with every property optional: Grafana fills in plugin options left out. */
export type LiteralPartial<T> =
  IsAny<T> extends true
    ? unknown
    : T extends string
      ? string extends T
        ? string
        : `${T}`
      : T extends number | boolean | null | undefined
        ? T
        : T extends readonly (infer E)[]
          ? LiteralPartial<E>[]
          : T extends object
            ? { [K in keyof T]?: LiteralPartial<T[K]> }
            : T;

/** A panel of plugin `Type`, its `options` and field `custom` config typed by the plugin. */
type PanelOf<Type extends string, Options, Custom> = Omit<Literal<PromPanel>, 'type' | 'options' | 'fieldConfig'> & {
  type: Type;
  options?: LiteralPartial<Options>;
  fieldConfig?: Omit<Literal<FieldConfigSource>, 'defaults'> & {
    defaults: Omit<Literal<FieldConfig>, 'custom'> & { custom?: LiteralPartial<Custom> };
  };
};
/** Plugins without field config of their own. */
type NoCustom = Record<string, never>;

/** The panel plugins dashboards may use; another `type` is an error until added here. */
export type TypedPanel =
  | PanelOf<'timeseries', timeseries.Options, timeseries.FieldConfig>
  | PanelOf<'stat', stat.Options, NoCustom>
  | PanelOf<'gauge', gauge.Options, NoCustom>
  | PanelOf<'bargauge', bargauge.Options, NoCustom>
  | PanelOf<'table', table.Options, table.FieldConfig>
  | PanelOf<'state-timeline', stateTimeline.Options, stateTimeline.FieldConfig>
  | PanelOf<'status-history', statusHistory.Options, statusHistory.FieldConfig>
  | PanelOf<'text', text.Options, NoCustom>;
export type TypedRowPanel = Omit<Literal<PromRowPanel>, 'panels'> & { panels: TypedPanel[] };

/** `PromDashboard` as a literal, with typed panels. */
export type TypedDashboard = Omit<Literal<PromDashboard>, 'panels'> & {
  panels?: Array<TypedPanel | TypedRowPanel>;
};
