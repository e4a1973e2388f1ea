import { createApp } from "./app.js"

export { CounterActor, DocumentActor } from "../actors/kinds.js"

export default createApp()
