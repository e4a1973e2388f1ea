/**
 * Durable Object names carry the tenant: `${encodeURIComponent(tenant)}/${name}`. The
 * "/" is outside the id alphabet and escaped inside the tenant, so two tenants' actors,
 * topics and rooms can never share an object.
 */
/** Actor ids, topic and room names share one alphabet: 1–128 characters of A-Z a-z 0-9 . _ : - */
export const NAME_CHARS = "[A-Za-z0-9._:-]{1,128}"
export const NAME_PATTERN = new RegExp(`^${NAME_CHARS}$`)

/** Kind names: lower case, as they appear in routes (`/v1/{kind}/…`), tool names and object names. */
export const KIND_PATTERN = /^[a-z][a-z0-9-]{0,63}$/

export const scopedName = (tenant: string, name: string): string => `${encodeURIComponent(tenant)}/${name}`

export const parseScopedName = (full: string): { readonly tenant: string; readonly name: string } => {
  const slash = full.indexOf("/")
  return slash < 0
    ? { tenant: "", name: full }
    : { tenant: decodeURIComponent(full.slice(0, slash)), name: full.slice(slash + 1) }
}

/** The tenant every request belongs to when auth is off (local development). */
export const DEV_TENANT = "public"

/**
 * An actor's object name: `${encodeURIComponent(tenant)}/${kind}/${id}`. One class hosts every
 * kind, so the kind is part of the name: two kinds' actors with the same id never share an object.
 */
export const actorName = (tenant: string, kind: string, id: string): string =>
  `${encodeURIComponent(tenant)}/${kind}/${id}`

/** The tenant, kind and id an actor's object name holds; undefined for a name `actorName` cannot have made. */
export const parseActorName = (
  name: string,
): { readonly tenant: string; readonly kind: string; readonly id: string } | undefined => {
  const first = name.indexOf("/")
  const second = first < 0 ? -1 : name.indexOf("/", first + 1)
  if (second < 0) return undefined
  try {
    const tenant = decodeURIComponent(name.slice(0, first))
    return { tenant, kind: name.slice(first + 1, second), id: name.slice(second + 1) }
  } catch {
    return undefined
  }
}
