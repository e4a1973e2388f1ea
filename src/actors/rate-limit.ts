/**
 * The one rate-limit budget, spent the same way by every transport: the edge for each HTTP
 * request, the host for each command frame and room post on a socket (keyed by what the
 * edge put in the socket's attachment), so no transport gets around the limit.
 */

/** The binding's period is 10 or 60 seconds; waiting one whole period is always enough. */
export const RETRY_AFTER_SECONDS = 60

/** Spends one unit of `key`'s budget; true when within the limit (or when no limiter is bound). */
export const withinLimit = async (limiter: RateLimit | undefined, key: string): Promise<boolean> =>
  limiter === undefined || (await limiter.limit({ key })).success

export const rateLimitMessage = `Too many requests; retry after ${RETRY_AFTER_SECONDS} seconds`
