import { createApp } from "./app.js"

export { CounterActor, CounterTotals, DocumentActor, TopicLog } from "../actors/kinds.js"

export default createApp()
