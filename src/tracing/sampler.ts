import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace'

/**
 * The sampler `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` name, as
 * the SDK would build it. Gatehouse builds it itself because it asks the
 * same sampler first, before any span exists (decision.ts), and hands the
 * SDK that very instance, so the two can never disagree about which
 * sampler is configured; the SDK does not export its own reader.
 *
 * Names are read whatever their case. Unknown names, and ratios that are
 * missing or outside [0, 1], are reported to `report` and replaced by the
 * SDK's own defaults (`parentbased_always_on`, ratio 1),
 * as the SDK does, so a gateway traces exactly as it did before it decided
 * first.
 */
export function samplerFromEnv(
  env: NodeJS.ProcessEnv,
  report: (problem: string) => void = () => {},
): Sampler {
  // The OTel environment spec: enum values SHOULD be read whatever their
  // case. ALWAYS_OFF taken for an unknown name would sample everything.
  const name = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase()
  switch (name) {
    case undefined:
    case '':
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case 'always_on':
      return new AlwaysOnSampler()
    case 'always_off':
      return new AlwaysOffSampler()
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratioFromEnv(env, report))
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratioFromEnv(env, report)) })
    default:
      report(`unknown OTEL_TRACES_SAMPLER value "${name}", using parentbased_always_on`)
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
  }
}

const DEFAULT_RATIO = 1

function ratioFromEnv(env: NodeJS.ProcessEnv, report: (problem: string) => void): number {
  const text = env.OTEL_TRACES_SAMPLER_ARG?.trim()
  if (text === undefined || text === '') {
    report(`OTEL_TRACES_SAMPLER_ARG is not set for a ratio sampler, using ${DEFAULT_RATIO} (every trace)`)
    return DEFAULT_RATIO
  }
  const ratio = Number(text)
  if (Number.isNaN(ratio) || ratio < 0 || ratio > 1) {
    report(`OTEL_TRACES_SAMPLER_ARG=${text} is not a ratio in [0, 1], using ${DEFAULT_RATIO}`)
    return DEFAULT_RATIO
  }
  return ratio
}
