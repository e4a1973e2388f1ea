/**
 * Addressing an object: one helper turns a name into a stub typed by the class its
 * namespace hosts (PartyServer's `getServerByName`), so every RPC call is checked against
 * the class itself rather than an interface kept in sync with it by hand.
 *
 * workers-types' own `DurableObjectStub<T>` maps each reply through `Rpc.Serializable`,
 * which has no place for `unknown`: every reply holding event data or a state (all of
 * ours) would be typed `never`. So the stub type here maps the class's methods alone.
 */

/** Platform entry points, called by the runtime (or, for fetch, typed by DurableObjectStub). */
type Lifecycle = "alarm" | "fetch" | "connect" | "webSocketMessage" | "webSocketClose" | "webSocketError"

/** The RPC methods of a class as callers see them: the same parameters, every answer a promise. */
export type RpcMethods<T> = {
  readonly [K in Exclude<keyof T, Lifecycle> as T[K] extends (...args: any) => any ? K : never]: T[K] extends (
    ...args: infer A
  ) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never
}

/** A stub of an object of class `T` (`T` may be a Pick of it: what one caller may use). */
export type ObjectStub<T> = DurableObjectStub & RpcMethods<T>

/** The object named `name` (a scoped name, see core/names.ts) of a namespace hosting class `T`. */
export const stubOf = <T>(namespace: DurableObjectNamespace, name: string): ObjectStub<T> =>
  namespace.getByName(name) as ObjectStub<T>
