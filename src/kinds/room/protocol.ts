/** How the edge opens a room member socket: the member name goes to the room's object in this header. */
export const MEMBER_HEADER = "X-Emberlog-Member"
