/**
 * A broadcast room: members join and leave, and posts go to every connected member.
 * Every message is an event, so a room's history is as auditable and replayable as
 * any other actor's. A post's own type is `messageType` here (`type` tags commands and
 * events); the room frames and `POST /broadcast` call it `type`, as clients expect.
 *
 * Direct messages: a post with `to` goes to that member only (and echoes to its sender, as every
 * post does). It is in the room's log like any post, recipient included: the log is the room's
 * audit record, and what a member's socket may see is decided when frames are sent (presence.ts).
 * A direct message to a name with no member in the room is refused: member sockets get no backlog,
 * so one kept for a member not there would reach no one.
 */
import { Effect, Schema } from "effect"
import { Entity, NonNegativeSafeInt, own, reject, tagged } from "../../index.js"
import { ACK_TYPE } from "../../index.js"

const MemberName = Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(64)))
const PostType = Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(64)))

export const RoomState = Schema.Struct({
  /** Connected members by name, with how many connections each has open. */
  members: Schema.Record(Schema.String, NonNegativeSafeInt),
  posts: NonNegativeSafeInt,
})
export type RoomState = typeof RoomState.Type

export const JoinRoom = tagged("Join", { name: MemberName })
export const LeaveRoom = tagged("Leave", { name: MemberName })
export const PostToRoom = tagged("Post", {
  messageType: PostType,
  payload: Schema.Unknown,
  sender: MemberName,
  to: Schema.optionalKey(MemberName),
})
export const RoomCommand = Schema.Union([JoinRoom, LeaveRoom, PostToRoom])
export type RoomCommand = typeof RoomCommand.Type

export const Joined = tagged("Joined", { name: Schema.String })
export const Left = tagged("Left", { name: Schema.String })
export const Posted = tagged("Posted", {
  messageType: Schema.String,
  payload: Schema.Unknown,
  sender: Schema.String,
  /** The one member a direct message is for (absent: every member). */
  to: Schema.optionalKey(Schema.String),
})
export const RoomEvent = Schema.Union([Joined, Left, Posted])
export type RoomEvent = typeof RoomEvent.Type

/** The sender of posts made through `POST /broadcast`, from outside the room. */
export const BROADCAST_SENDER = "broadcast"

/** What a connected member receives for a post (the classic broadcast-server frame; `to` on a direct message). */
export const postFrame = (event: RoomEvent, at: number) =>
  event.type === "Posted"
    ? {
        type: event.messageType,
        payload: event.payload,
        timestamp: at,
        sender: event.sender,
        ...(event.to === undefined ? {} : { to: event.to }),
      }
    : undefined

/**
 * The members a post's frame is for: undefined for a post to everyone; a direct message's
 * recipient and its sender (a post from outside, through `/broadcast`, has no member sending it).
 */
export const postAudience = (event: RoomEvent): ReadonlySet<string> | undefined => {
  if (event.type !== "Posted" || event.to === undefined) return undefined
  return new Set(event.sender === BROADCAST_SENDER ? [event.to] : [event.to, event.sender])
}

export const Room = Entity.make({
  kind: "room",
  state: RoomState,
  initial: { members: {}, posts: 0 },
  commands: RoomCommand,
  events: RoomEvent,
  decide: (state: RoomState, command: RoomCommand) => {
    switch (command.type) {
      case "Join":
        // Posts from outside carry this sender: a member of that name could not be told from them.
        return command.name === BROADCAST_SENDER
          ? reject(
              "reserved_name",
              `"${BROADCAST_SENDER}" is the sender of posts from outside: join under another name`,
            )
          : Effect.succeed([{ type: "Joined", name: command.name } as const])
      case "Leave":
        return (own(state.members, command.name) ?? 0) > 0
          ? Effect.succeed([{ type: "Left", name: command.name } as const])
          : reject("not_a_member", `${command.name} is not in the room`)
      case "Post":
        // A member's `{"type":"ack"}` frame confirms what it read, so no post can be of that type.
        if (command.messageType === ACK_TYPE) {
          const reserved = `"${ACK_TYPE}" is reserved (members send {"type":"${ACK_TYPE}"} to confirm what they read)`
          return reject("reserved_type", `${reserved}; post under another type`)
        }
        if (command.to !== undefined && (own(state.members, command.to) ?? 0) === 0) {
          return reject(
            "unknown_recipient",
            `${command.to} is not in the room: a direct message goes to a member who is connected`,
            // Not the member list: sending needs `write`, and who is in the room is for `read` to see.
            // (A writer does learn whether this one name is in: refusing is what tells it the message reached no one.)
            { to: command.to },
          )
        }
        return Effect.succeed([
          {
            type: "Posted",
            messageType: command.messageType,
            payload: command.payload,
            sender: command.sender,
            ...(command.to === undefined ? {} : { to: command.to }),
          } as const,
        ])
      default:
        return command satisfies never
    }
  },
  evolve: (state: RoomState, event: RoomEvent): RoomState => {
    switch (event.type) {
      case "Joined":
        // A computed key defines an own property, even for "__proto__".
        return { ...state, members: { ...state.members, [event.name]: (own(state.members, event.name) ?? 0) + 1 } }
      case "Left": {
        const count = own(state.members, event.name) ?? 0
        const { [event.name]: _left, ...others } = state.members
        return { ...state, members: count > 1 ? { ...others, [event.name]: count - 1 } : others }
      }
      case "Posted":
        return { ...state, posts: state.posts + 1 }
      default:
        return event satisfies never
    }
  },
})
