/**
 * Writing to a Workers Analytics Engine dataset (`USAGE` for usage counters, `METRICS` for
 * requests), in one place: a data point is an account of traffic, so a failed write is logged
 * and dropped, never the request's failure.
 */

/** Writes `point` when `dataset` is bound; `what` names the data in the warning a failed write logs. */
export const writeDataPoint = (
  dataset: AnalyticsEngineDataset | undefined,
  point: AnalyticsEngineDataPoint,
  what: string,
): void => {
  if (dataset === undefined) return
  try {
    dataset.writeDataPoint(point)
  } catch (error) {
    console.warn(`emberlog: ${what} not written to Analytics Engine`, error)
  }
}
