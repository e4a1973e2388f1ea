/**
 * What the room kind's edge routes and its presence (in the actor) agree on: the member a
 * `/ws` join names travels to the room's object in this header, set by the edge only.
 */
export const MEMBER_HEADER = "X-Emberlog-Member"
