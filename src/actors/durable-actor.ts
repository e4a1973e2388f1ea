/**
 * Hosts an entity in a SQLite-backed Durable Object. The class is glue: each RPC
 * method hands its request to the `ActorCore`, built once per object (recovery runs
 * in `blockConcurrencyWhile`, so no request sees a half-recovered actor).
 */
import { DurableObject } from "cloudflare:workers"
import { Layer, ManagedRuntime } from "effect"
import type { Entity } from "../domain/entity.js"
import { Ids, RandomIds } from "../infra/ids.js"
import { SqliteEventStore } from "../infra/sqlite-event-store.js"
import { ActorCore, type ActorRuntime, type CommandRequest, type StateQuery } from "./actor-core.js"

export interface ActorOptions {
  /** Replaces the id source (tests make ids predictable); time comes from Effect's Clock. */
  readonly ids?: Layer.Layer<Ids>
}

export const actorRuntime = (storage: DurableObjectStorage, options: ActorOptions = {}): ActorRuntime =>
  ManagedRuntime.make(Layer.mergeAll(SqliteEventStore(storage), options.ids ?? RandomIds))

export const actorClass = (entity: Entity, options: ActorOptions = {}) =>
  class Actor extends DurableObject {
    core!: ActorCore

    constructor(ctx: DurableObjectState, env: unknown) {
      super(ctx, env as never)
      void ctx.blockConcurrencyWhile(async () => {
        this.core = new ActorCore(entity, actorRuntime(ctx.storage, options))
      })
    }

    command(request: CommandRequest) {
      return this.core.command(request)
    }

    readState(query: StateQuery) {
      return this.core.readState(query)
    }

    readEvents(after: number, limit: number) {
      return this.core.readEvents(after, limit)
    }

    verifyLog() {
      return this.core.verify()
    }
  }

/** What callers see of an actor over DO RPC (every reply is plain, structured-cloneable data). */
export interface ActorApi {
  command(request: CommandRequest): Promise<ReturnType<ActorCore["command"]>>
  readState(query: StateQuery): Promise<ReturnType<ActorCore["readState"]>>
  readEvents(after: number, limit: number): Promise<ReturnType<ActorCore["readEvents"]>>
  verifyLog(): Promise<ReturnType<ActorCore["verify"]>>
}
