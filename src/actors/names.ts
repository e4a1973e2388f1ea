/**
 * Durable Object names carry the tenant: `${encodeURIComponent(tenant)}/${name}`. The
 * "/" is outside the id alphabet and escaped inside the tenant, so two tenants' actors,
 * topics and rooms can never share an object.
 */
export const scopedName = (tenant: string, name: string): string => `${encodeURIComponent(tenant)}/${name}`

export const parseScopedName = (full: string): { readonly tenant: string; readonly name: string } => {
  const slash = full.indexOf("/")
  return slash < 0 ? { tenant: "", name: full } : { tenant: decodeURIComponent(full.slice(0, slash)), name: full.slice(slash + 1) }
}

/** The tenant every request belongs to when auth is off (local development). */
export const DEV_TENANT = "public"
