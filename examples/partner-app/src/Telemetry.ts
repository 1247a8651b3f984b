/**
 * OpenTelemetry for the app, with `@effect/opentelemetry`: every `Effect.fn` of the library is a span
 * (`EmbeddedActions.run`, `TokenExchange.accessToken`, `ActionRuns.create`, `ActionRuns.get`, …) under the HTTP
 * server's span, and the library's `Metrics` are exported as OpenTelemetry metrics.
 *
 * Chosen by the standard variables, nothing by default:
 * - `OTEL_TRACES_EXPORTER`: `none` (default), `console` or `otlp`;
 * - `OTEL_METRICS_EXPORTER`: `none` (default), `console` or `otlp` (every `OTEL_METRIC_EXPORT_INTERVAL` ms, default 60000);
 * - `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://127.0.0.1:4318`), `OTEL_SERVICE_NAME` (default `partner-app`).
 *
 * Spans carry ids and kinds (app, action key and type, run id, status, attempts, retry reason), never tokens,
 * inputs or connection titles; HTTP headers that carry secrets (`authorization`, `cookie`, `set-cookie`) are
 * recorded as `<redacted>` by `@effect/platform`.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { ConsoleMetricExporter, type MetricReader, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor
} from "@opentelemetry/sdk-trace-base"
import { Config, type ConfigError, Effect, Layer } from "effect"

export type Exporter = "none" | "console" | "otlp"

export interface Options {
  readonly traces: Exporter
  readonly metrics: Exporter
  /** The OTLP/HTTP endpoint (`/v1/traces` and `/v1/metrics` are appended). */
  readonly endpoint: string
  readonly serviceName: string
  readonly metricInterval: number
}

export const config: Config.Config<Options> = Config.all({
  traces: Config.literal("none", "console", "otlp")("OTEL_TRACES_EXPORTER").pipe(Config.withDefault("none" as const)),
  metrics: Config.literal("none", "console", "otlp")("OTEL_METRICS_EXPORTER").pipe(Config.withDefault("none" as const)),
  endpoint: Config.string("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(Config.withDefault("http://127.0.0.1:4318")),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("partner-app")),
  metricInterval: Config.integer("OTEL_METRIC_EXPORT_INTERVAL").pipe(Config.withDefault(60_000))
})

const spanProcessor = (options: Options): SpanProcessor | undefined => {
  switch (options.traces) {
    case "none":
      return undefined
    case "console":
      return new SimpleSpanProcessor(new ConsoleSpanExporter())
    case "otlp":
      return new BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/$/, "")}/v1/traces` }))
  }
}

const metricReader = (options: Options): MetricReader | undefined => {
  switch (options.metrics) {
    case "none":
      return undefined
    case "console":
      return new PeriodicExportingMetricReader({
        exporter: new ConsoleMetricExporter(),
        exportIntervalMillis: options.metricInterval
      })
    case "otlp":
      return new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${options.endpoint.replace(/\/$/, "")}/v1/metrics` }),
        exportIntervalMillis: options.metricInterval
      })
  }
}

/** The SDK for these options (an empty layer when both exporters are `none`). */
export const layer = (options: Options): Layer.Layer<never> => {
  const processor = spanProcessor(options)
  const reader = metricReader(options)
  if (processor === undefined && reader === undefined) return Layer.empty
  return Layer.discard(
    NodeSdk.layer(() => ({
      resource: { serviceName: options.serviceName },
      ...(processor !== undefined ? { spanProcessor: processor } : {}),
      ...(reader !== undefined ? { metricReader: reader } : {})
    }))
  )
}

/** The SDK chosen by the `OTEL_*` variables (see the module's description). */
export const layerFromEnv: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(Effect.map(config, layer))

/** Every span to `exporter` as it ends (for tests: an `InMemorySpanExporter`). */
export const layerExporter = (exporter: SpanExporter, serviceName = "partner-app"): Layer.Layer<never> =>
  Layer.discard(NodeSdk.layer(() => ({ resource: { serviceName }, spanProcessor: new SimpleSpanProcessor(exporter) })))
